#!/usr/bin/env bash
# The schema-evolution test (issue 13), run by .ci/run: in a scratch copy of
# the repository, apply a representative schema change (new tables, a new
# nullable column with a foreign-key action, triggers that write another
# table, a view, a SQL function) and queries with every annotation: :one
# :many :exec :execrows :execresult :copyfrom :batchexec :batchmany
# :batchone (and one generation must refuse, a batch with a TTL, without
# changing anything); regenerate, run `make verify`, the packages that mirror
# the schema, coherence checks of the new queries, the batches included (own
# writes, another instance, plain SQL), and the tests of the packages that
# hold expectations of evaldb's own schema (cachegen's, cachewrap's,
# schema's). The change lives in
# scripts/schema-evolution/testdata/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
data="$repo/scripts/schema-evolution/testdata"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/evaldb-evolution.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

echo "schema-evolution: copying the repository to $scratch"
cd "$repo"
git ls-files -z | xargs -0 cp --parents -t "$scratch"
cd "$scratch"
git init -q && git add -A && git -c user.email=ci@evaldb -c user.name=ci commit -qm base

echo "schema-evolution: applying the change"
cp "$data/00099_evolution.sql" schema/
cp "$data/evolution.sql" queries/
make generate
cp "$data/evolution_test.go" repo/evolution_test.go
git add -A && git -c user.email=ci@evaldb -c user.name=ci commit -qm evolution

echo "schema-evolution: a refused query changes no generated file"
cp "$data/evolution_refused.sql" queries/
if make generate > refused.log 2>&1; then
	echo "schema-evolution: make generate accepted a batch query with cache: ttl= (a batch is never cached)"; exit 1
fi
grep -q 'GetDatasetsCached is :batchone: a batch is never cached' refused.log || { cat refused.log; echo "schema-evolution: no error naming the refused query"; exit 1; }
rm queries/evolution_refused.sql refused.log
test -z "$(git status --porcelain)" || { git status --short; echo "schema-evolution: a failed make generate changed files"; exit 1; }

echo "schema-evolution: make verify"
make verify

echo "schema-evolution: tests"
go test -race -count=1 -p 1 -timeout 10m -v -run '^TestSchemaEvolution$' ./repo/ | grep -E '^(---|===|ok|FAIL|PASS)|_test.go'
# The packages whose tests hold expectations of evaldb's own schema: they
# must keep passing when a user's change adds to it.
go test -race -count=1 -p 1 -timeout 10m ./txn/ ./queries/ ./cachewrap/ ./schema/
(cd tools && go test -count=1 ./cachegen/)
echo "schema-evolution: passed"

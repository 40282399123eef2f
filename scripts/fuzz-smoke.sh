#!/usr/bin/env bash
# fuzz-smoke.sh runs every fuzz target of the module for a short time
# (FUZZTIME, default 5s), one target per `go test` invocation as Go
# requires, after its seed corpus in testdata/fuzz. CI runs it; a failing
# input is saved under testdata/fuzz/FuzzX/ by Go: commit it as a new seed
# once the bug is fixed.
#
#   scripts/fuzz-smoke.sh            # every target, 5 s each
#   FUZZTIME=60s scripts/fuzz-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5s}"
go="${GO:-go}"

# Targets: "package-dir FuzzName" for every func Fuzz… in a tracked _test.go
# file of this module (bench/ is a module of its own).
mapfile -t targets < <(git ls-files '*_test.go' ':!:bench/**' |
	xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*' |
	sed -E 's|^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)$|\1 \2|' | sort -u)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz-smoke: no fuzz targets found" >&2
	exit 1
fi
failed=0
for t in "${targets[@]}"; do
	dir="${t% *}" name="${t#* }"
	if [ ! -d "$dir/testdata/fuzz/$name" ]; then
		echo "fuzz-smoke: $name in ./$dir has no seed corpus in ./$dir/testdata/fuzz/$name" >&2
		failed=1
	fi
	echo "fuzz-smoke: $name in ./$dir for $fuzztime"
	if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir"; then
		failed=1
	fi
done
exit "$failed"

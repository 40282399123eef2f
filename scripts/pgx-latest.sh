#!/usr/bin/env bash
# pgx-latest.sh: build evaldb against the newest pgx/v5 release and run the
# tests of every package whose tests do not import pgxmock.
#
# go.mod pins pgx v5.11.0 only because pgxmock v5.2.0 does not compile
# against v5.12 or newer. evaldb's library code must not depend on that pin:
# a service whose other dependencies need a newer pgx must still build. This
# check runs in a scratch copy of the module, so go.mod and go.sum here are
# never changed. The pgxmock-based tests live in their own packages
# (repo/mocktest, txn/mocktest) so that repo's and txn's integration tests
# run here too.
#
# Usage: scripts/pgx-latest.sh [go test flags...]   (default: -count=1)
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The tracked files only: what CI's clean clone has.
git ls-files -z --cached --others --exclude-standard -- . ':!:bench' ':!:tools' | \
	xargs -0 cp --parents -t "$scratch" 2>/dev/null || true
cd "$scratch"

"$GO" get github.com/jackc/pgx/v5@latest
version="$("$GO" list -m -f '{{.Version}}' github.com/jackc/pgx/v5)"
echo "pgx-latest: building with github.com/jackc/pgx/v5 $version"
"$GO" build ./...

# Packages whose tests (in-package or external) import pgxmock cannot compile
# against this pgx; every other package's tests must pass.
mapfile -t pkgs < <("$GO" list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
	awk '!/pashagolub\/pgxmock/ {print $1}')
skipped="$("$GO" list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
	awk '/pashagolub\/pgxmock/ {print $1}' | tr '\n' ' ')"
echo "pgx-latest: not tested (their tests import pgxmock): ${skipped:-none}"
"$GO" vet "${pkgs[@]}"
if [ "$#" -eq 0 ]; then set -- -count=1; fi
"$GO" test "$@" "${pkgs[@]}"
echo "pgx-latest: ok with pgx $version"

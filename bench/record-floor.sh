#!/usr/bin/env bash
# The recording floor (issue 16, BENCHMARKS.md "The stored run summary", (4)):
# psql's \copy of 10,000 result rows into eval_results of a fresh run (its
# constraints and triggers as deployed) against txn.RecordEvalRun of 10,000
# results (the mean of 3, BenchmarkRecordEvalRun/auto/results=10000), in
# rounds whose order alternates. URL must name a database migrated by evaldb
# on the server under test; the txn benchmark runs on the same server (it is
# given URL as TEST_DATABASE_URL and clones its own database). Prints each
# round, the ratio, and the load average.
#
#	bench/record-floor.sh 'postgres://…/evaldb' [rounds]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${1:?usage: bench/record-floor.sh DATABASE_URL [rounds]}
rounds=${2:-10}
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/evaldb-record-floor.XXXXXX")
trap 'rm -rf "$work"' EXIT
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }
go test -c -o "$work/txn.test" ./txn/

# The rows and copy_once.
. "$here/copy-rows.sh"
make_rows
record_once() { # the milliseconds of one RecordEvalRun of 10,000 results (mean of 3)
	(cd txn && TEST_DATABASE_URL=$url "$work/txn.test" -test.run '^$' -test.bench 'RecordEvalRun/auto/results=10000$' -test.benchtime=3x) |
		awk '/ns\/op/ { printf "%.1f\n", $3 / 1e6 }'
}
copy_once > /dev/null # warm up both
record_once > /dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	if ((r % 2)); then c=$(copy_once); e=$(record_once); else e=$(record_once); c=$(copy_once); fi
	echo "round $r: floor ${c} ms, RecordEvalRun ${e} ms, ratio $(awk -v a="$e" -v b="$c" 'BEGIN { printf "%.2f", a / b }')"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

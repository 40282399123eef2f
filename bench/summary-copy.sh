#!/usr/bin/env bash
# The cost of the stored run summary's triggers on COPY (BENCHMARKS.md,
# "The stored run summary"): psql's \copy of the same 10,000 result rows
# into eval_results of a fresh run, with the transition-table triggers of
# migration 00005 as deployed and with them dropped, in interleaved rounds.
# It also prints the load average. The database must be migrated by evaldb
# and otherwise idle; the triggers are put back at the end (and on error).
#
#	bench/summary-copy.sh 'postgres://…/evaldb' [rounds]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${1:?usage: bench/summary-copy.sh DATABASE_URL [rounds]}
rounds=${2:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/evaldb-summary-copy.XXXXXX")
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }

# The triggers' definitions, to drop and recreate them.
psql -At -c "SELECT pg_get_triggerdef(oid) || ';' FROM pg_trigger
	WHERE tgrelid = 'eval_results'::regclass AND tgname LIKE 'eval_results_forget_summaries_%'" > "$work/triggers.sql"
test "$(wc -l < "$work/triggers.sql")" -eq 4 || { echo "summary-copy: expected 4 summary triggers on eval_results"; exit 1; }
restore() {
	psql -c "DROP TRIGGER IF EXISTS eval_results_forget_summaries_insert ON eval_results" \
		-c "DROP TRIGGER IF EXISTS eval_results_forget_summaries_update ON eval_results" \
		-c "DROP TRIGGER IF EXISTS eval_results_forget_summaries_delete ON eval_results" \
		-c "DROP TRIGGER IF EXISTS eval_results_forget_summaries_truncate ON eval_results" -f "$work/triggers.sql"
	rm -rf "$work"
}
trap restore EXIT

# The rows and copy_once.
. "$here/copy-rows.sh"
make_rows
drop_triggers() {
	for e in insert update delete truncate; do psql -c "DROP TRIGGER eval_results_forget_summaries_$e ON eval_results"; done
}

copy_once > /dev/null # warm up
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do # the order alternates between rounds
	if ((r % 2)); then
		with=$(copy_once)
		drop_triggers
		without=$(copy_once)
		psql -f "$work/triggers.sql"
	else
		drop_triggers
		without=$(copy_once)
		psql -f "$work/triggers.sql"
		with=$(copy_once)
	fi
	echo "round $r: with triggers ${with} ms, without ${without} ms"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

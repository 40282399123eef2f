# copy-rows.sh is sourced by summary-copy.sh and record-floor.sh: psql's
# \copy of the same 10,000 result rows (the shape of txn's makeRun in
# txn/bench_test.go) into eval_results of a fresh run. The sourcing script
# defines psql (with its URL) and $work (a scratch directory).

# make_rows writes the rows, run id to be filled in, to $work/rows.csv.
make_rows() {
	psql -c "\\copy (SELECT 'RUN_ID', format('case-%s', lpad(i::text, 6, '0')), format('question %s: ¿qué? 日本', i), '42', '42',
		(i % 100) / 100.0, i % 3 <> 0, i % 500, i % 50, i % 7,
		CASE i % 4 WHEN 1 THEN '' WHEN 2 THEN E'timeout after 30s\\nstack…' END
		FROM generate_series(0, 9999) i) TO '$work/rows.csv' CSV"
}

# copy_once prints the milliseconds of one \copy of the rows into a new run,
# then deletes the run.
copy_once() {
	local id
	id=$(psql -At -c "INSERT INTO eval_runs (id, name, model, dataset) VALUES (gen_random_uuid(), 'copy', 'm', 'd') RETURNING id")
	sed "s/^RUN_ID,/$id,/" "$work/rows.csv" > "$work/run.csv"
	psql -c '\timing on' -c "\\copy eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms, prompt_tokens, completion_tokens, error) FROM '$work/run.csv' CSV" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
	psql -c "DELETE FROM eval_runs WHERE id = '$id'"
}

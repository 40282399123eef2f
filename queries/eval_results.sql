-- ListEvalResults returns up to row_limit results of a run in case_id order.
-- It pages by keyset: pass the case_id of the last result of the previous
-- page as after_case_id, or '' for the first page (case ids are never empty).
-- name: ListEvalResults :many
SELECT * FROM eval_results
WHERE run_id = @run_id AND case_id > @after_case_id
ORDER BY case_id
LIMIT @row_limit;

-- ListFailedEvalResults is ListEvalResults restricted to the results that did
-- not pass, with the same keyset paging.
-- name: ListFailedEvalResults :many
SELECT * FROM eval_results
WHERE run_id = @run_id AND case_id > @after_case_id AND NOT passed
ORDER BY case_id
LIMIT @row_limit;

-- InsertEvalResults bulk-loads results with COPY, the fastest path for large
-- runs. pgx's CopyFrom is atomic only inside a transaction: use
-- txn.RecordEvalRun rather than calling this on a pool.
-- name: InsertEvalResults :copyfrom
INSERT INTO eval_results (
    run_id, case_id, input, expected, output, score, passed,
    latency_ms, prompt_tokens, completion_tokens, error
) VALUES (
    @run_id, @case_id, @input, @expected, @output, @score, @passed,
    @latency_ms, @prompt_tokens, @completion_tokens, @error
);

-- InsertEvalResultsUnnest inserts many results of one run in a single
-- statement from parallel arrays, zipped by unnest (one element per result; error_texts uses
-- NULL for "no error"). It is the small-run path of txn.RecordEvalRun: unlike
-- COPY it can be pipelined in one batch with the run and its metrics.
-- name: InsertEvalResultsUnnest :execrows
INSERT INTO eval_results (
    run_id, case_id, input, expected, output, score, passed,
    latency_ms, prompt_tokens, completion_tokens, error
)
SELECT @run_id,
       unnest(@case_ids::text[]), unnest(@inputs::text[]), unnest(@expecteds::text[]),
       unnest(@outputs::text[]), unnest(@scores::float8[]), unnest(@passeds::boolean[]),
       unnest(@latencies_ms::int4[]), unnest(@prompt_tokens::int4[]),
       unnest(@completion_tokens::int4[]), unnest(@error_texts::text[]);

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
-- statement from parallel arrays, zipped by unnest (one element per result).
-- error_texts[i] is stored only where has_errors[i] is true, else NULL: the
-- generated []string cannot hold a NULL element. It is the small-run path of
-- txn.RecordEvalRun: unlike COPY it can be pipelined in one batch with the
-- run and its metrics.
-- name: InsertEvalResultsUnnest :execrows
INSERT INTO eval_results (
    run_id, case_id, input, expected, output, score, passed,
    latency_ms, prompt_tokens, completion_tokens, error
)
SELECT @run_id, u.case_id, u.input, u.expected, u.output, u.score, u.passed,
       u.latency_ms, u.prompt_tokens, u.completion_tokens,
       CASE WHEN u.has_error THEN u.error_text END
FROM (
    SELECT unnest(@case_ids::text[]) AS case_id, unnest(@inputs::text[]) AS input,
           unnest(@expecteds::text[]) AS expected, unnest(@outputs::text[]) AS output,
           unnest(@scores::float8[]) AS score, unnest(@passeds::boolean[]) AS passed,
           unnest(@latencies_ms::int4[]) AS latency_ms, unnest(@prompt_tokens::int4[]) AS prompt_tokens,
           unnest(@completion_tokens::int4[]) AS completion_tokens,
           unnest(@has_errors::boolean[]) AS has_error, unnest(@error_texts::text[]) AS error_text
) u;

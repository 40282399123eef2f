-- ListEvalMetrics returns a run's summary metrics by name.
-- name: ListEvalMetrics :many
SELECT * FROM eval_metrics
WHERE run_id = @run_id
ORDER BY name;

-- InsertEvalMetrics bulk-loads metrics with COPY. Like InsertEvalResults it
-- belongs inside a transaction.
-- name: InsertEvalMetrics :copyfrom
INSERT INTO eval_metrics (run_id, name, value)
VALUES (@run_id, @name, @value);

-- InsertEvalMetricsUnnest inserts many metrics of one run in one statement
-- from parallel arrays, for pipelining in a batch.
-- name: InsertEvalMetricsUnnest :execrows
INSERT INTO eval_metrics (run_id, name, value)
SELECT @run_id, unnest(@names::text[]), unnest(@metric_values::float8[]);

-- ListEvalMetricsOfRuns returns the summary metrics of several runs (a
-- comparison of runs) in one round trip: each run id's callback gets that
-- run's metrics by name, empty for a run with none.
-- name: ListEvalMetricsOfRuns :batchmany
SELECT * FROM eval_metrics
WHERE run_id = @run_id
ORDER BY name;

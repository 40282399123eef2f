-- InsertEvalRun creates a run. The caller supplies the id (UUIDv7 from
-- txn.RecordEvalRun); finished_at must be set exactly when status is not
-- 'running'. A nil config is stored as {}.
-- name: InsertEvalRun :one
INSERT INTO eval_runs (id, name, model, dataset, status, config, started_at, finished_at)
VALUES (@id, @name, @model, @dataset, @status, coalesce(sqlc.narg(config)::jsonb, '{}'::jsonb),
        @started_at, sqlc.narg(finished_at))
RETURNING *;

-- GetEvalRun returns one run by id.
-- name: GetEvalRun :one
SELECT * FROM eval_runs
WHERE id = @id;

-- ListEvalRuns returns up to row_limit runs, newest first. It pages by keyset:
-- pass the created_at and id of the last run of the previous page as
-- before_created_at and before_id, or NULL for the first page. Unlike OFFSET,
-- every page costs the same however deep it is. model and status, when not
-- NULL, keep only the runs with that model or status; the filter walks the
-- same index, so a rare model costs as many index entries as it skips.
-- cache: ttl=10s
-- name: ListEvalRuns :many
SELECT * FROM eval_runs
WHERE (created_at, id) < (
    coalesce(sqlc.narg(before_created_at)::timestamptz, 'infinity'::timestamptz),
    coalesce(sqlc.narg(before_id)::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)
)
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model)::text)
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)::text)
ORDER BY created_at DESC, id DESC
LIMIT @row_limit;

-- EvalLeaderboard ranks models over the given runs: per model, how many runs
-- and results, the pass rate and mean score over all their results, the
-- median and 95th-percentile latency, and the tokens spent (prompt plus
-- completion). Best pass rate first; models without results are left out.
-- name: EvalLeaderboard :many
SELECT
    r.model,
    count(DISTINCT r.id)                                                AS runs,
    count(*)                                                            AS results,
    avg(CASE WHEN res.passed THEN 1.0 ELSE 0.0 END)::float8             AS pass_rate,
    avg(res.score)::float8                                              AS mean_score,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY res.latency_ms)::float8  AS p50_latency_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY res.latency_ms)::float8 AS p95_latency_ms,
    sum(res.prompt_tokens::int8 + res.completion_tokens::int8)::int8    AS tokens
FROM eval_runs r
JOIN eval_results res ON res.run_id = r.id
WHERE r.id = ANY(@run_ids::uuid[])
GROUP BY r.model
ORDER BY pass_rate DESC, r.model;

-- GetEvalRunSummary returns a run's headline figures: how many results it
-- has, how many passed, the pass rate, the mean score and the median and
-- 95th-percentile latency. For a run with no results the rate, mean and
-- percentiles are 0 (ResultCount says why), and a run that does not exist
-- is pgx.ErrNoRows. It reads the figures RecordEvalRun stored
-- (eval_run_summaries, a primary-key read) and, when none are stored (the
-- run was written some other way, or its results changed since, which
-- deletes the stored row), computes them from the results
-- (eval_run_summaries_live). The second branch runs only when the first
-- found nothing: PostgreSQL plans NOT EXISTS (SELECT FROM stored) as a
-- one-time filter, and leaves the aggregate unexecuted when a row is stored.
-- The second branch takes the id as (SELECT @id::uuid), which the planner
-- cannot see into: its estimates are then the same for every run, so the
-- plan cache settles on one generic plan. Given the id, the plan for a run
-- smaller than average looks cheaper than the generic one, and PostgreSQL
-- planned the whole query (the aggregate included) on every call: 0.5-1 ms,
-- ten times what reading the stored row costs (BENCHMARKS.md).
-- cache: ttl=1m swr=30s
-- name: GetEvalRunSummary :one
WITH stored AS (
    SELECT r.id, r.status, s.result_count, s.passed_count, s.pass_rate, s.mean_score,
           s.p50_latency_ms, s.p95_latency_ms
    FROM eval_runs r
    JOIN eval_run_summaries s ON s.run_id = r.id
    WHERE r.id = @id
)
SELECT id, status, result_count, passed_count, pass_rate, mean_score, p50_latency_ms, p95_latency_ms
FROM stored
UNION ALL
SELECT l.run_id, l.status, l.result_count, l.passed_count, l.pass_rate, l.mean_score,
       l.p50_latency_ms, l.p95_latency_ms
FROM eval_run_summaries_live l
WHERE l.run_id = (SELECT @id::uuid) AND NOT EXISTS (SELECT FROM stored);

-- InsertEvalRunSummary stores a run's figures, computed from its results
-- (eval_run_summaries_live), in eval_run_summaries, where GetEvalRunSummary
-- reads them. txn.RecordEvalRun runs it in the transaction that inserts the
-- run, after the results: no other transaction can change the results of a
-- run it cannot see yet, so the stored figures are those of the results
-- committed with them, and from then on the triggers of eval_results delete
-- them when the results change. Run it only in the transaction that inserted
-- the run and its results: for a run that other transactions can already
-- write, a concurrent change to its results committed while this statement
-- runs would not be counted, and its trigger would find no row to delete.
-- The id is (SELECT @run_id::uuid) for the reason GetEvalRunSummary's
-- fallback takes it so: one generic plan, not a plan per recording.
-- name: InsertEvalRunSummary :execrows
INSERT INTO eval_run_summaries (run_id, result_count, passed_count, pass_rate, mean_score, p50_latency_ms, p95_latency_ms)
SELECT l.run_id, l.result_count, l.passed_count, l.pass_rate, l.mean_score, l.p50_latency_ms, l.p95_latency_ms
FROM eval_run_summaries_live l
WHERE l.run_id = (SELECT @run_id::uuid);

-- UpdateEvalRunStatus moves a run to a new status and returns it. Leaving
-- 'running' stamps finished_at (now, unless given); going back to 'running'
-- clears it.
-- name: UpdateEvalRunStatus :one
UPDATE eval_runs
SET status = @status,
    finished_at = CASE
        WHEN @status::text = 'running' THEN NULL
        ELSE coalesce(sqlc.narg(finished_at)::timestamptz, finished_at, greatest(now(), started_at))
    END
WHERE id = @id
RETURNING *;

-- DeleteEvalRun deletes a run; its results and metrics go with it.
-- name: DeleteEvalRun :execrows
DELETE FROM eval_runs
WHERE id = @id;

-- GetEvalRuns looks up several runs by id in one round trip (a dashboard of
-- runs): each id's callback gets its run, or repo.ErrNotFound when there is
-- none. Never cached, like every batch.
-- name: GetEvalRuns :batchone
SELECT * FROM eval_runs
WHERE id = @id;

-- SetEvalRunStatuses moves several runs to new statuses in one round trip
-- (a scheduler finishing or cancelling a set of runs), each as
-- UpdateEvalRunStatus does: leaving 'running' stamps finished_at (now,
-- unless given); going back to 'running' clears it. An id with no run
-- updates nothing and is not an error.
-- name: SetEvalRunStatuses :batchexec
UPDATE eval_runs
SET status = @status,
    finished_at = CASE
        WHEN @status::text = 'running' THEN NULL
        ELSE coalesce(sqlc.narg(finished_at)::timestamptz, finished_at, greatest(now(), started_at))
    END
WHERE id = @id;

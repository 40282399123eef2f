-- +goose Up

-- eval_run_summaries_live is a run's status and its headline figures
-- computed from its results now: how many it has, how many passed, the pass
-- rate, the mean score and the median and 95th-percentile latency
-- (percentile_cont). A run with no results has one row of zeros. It is the
-- one definition of the figures: RecordEvalRun stores its row in
-- eval_run_summaries, and GetEvalRunSummary reads it when no row is stored.
-- A filter on run_id is pushed down to both tables' primary keys, so a run
-- costs what its results do, whatever the size of the tables.
--
-- The mean is avg(score) when every |score| < 1e100. avg(float8) also sums
-- the squares, and fails with "value out of range: overflow" once a score
-- passes 1.3e154, which would make a valid run (any finite score is one)
-- impossible to record. Otherwise it is the sum of the scores scaled by
-- 2^-64 (exact for a power of two; scores under 1e-200, which cannot move
-- such a mean, count as 0, since PostgreSQL refuses a product that
-- underflows), divided by their count and scaled back: no sum of finite
-- scores overflows. The FILTER keeps avg from seeing the large scores in
-- the branch it does not serve, since every aggregate runs on every row.
CREATE VIEW eval_run_summaries_live AS
SELECT
    r.id                                                                            AS run_id,
    r.status,
    count(res.case_id)                                                              AS result_count,
    count(res.case_id) FILTER (WHERE res.passed)                                    AS passed_count,
    coalesce(avg(CASE WHEN res.passed THEN 1.0 ELSE 0.0 END), 0)::float8            AS pass_rate,
    coalesce(CASE
        WHEN max(abs(res.score)) < 1e100 THEN avg(res.score) FILTER (WHERE abs(res.score) < 1e100)
        ELSE sum(CASE WHEN abs(res.score) < 1e-200 THEN 0 ELSE res.score * 2.0::float8 ^ -64 END)
             / count(res.score) * 2.0::float8 ^ 64
    END, 0)::float8                                                                 AS mean_score,
    coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY res.latency_ms), 0)::float8  AS p50_latency_ms,
    coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY res.latency_ms), 0)::float8 AS p95_latency_ms
FROM eval_runs r
LEFT JOIN eval_results res ON res.run_id = r.id
GROUP BY r.id;

-- eval_run_summaries holds eval_run_summaries_live's row of a run, computed
-- once when txn.RecordEvalRun records the run (in its transaction, after the
-- results): aggregating a 100,000-result run takes tens of milliseconds,
-- reading this row what a primary-key read does (BENCHMARKS.md). A row is
-- only ever true: the triggers below delete the row of every run whose
-- results any later statement changes, from any writer, in the writer's
-- transaction, and GetEvalRunSummary then computes the figures from the
-- results again. The status is not stored: it is read from eval_runs.
CREATE TABLE eval_run_summaries (
    run_id         uuid             PRIMARY KEY
        REFERENCES eval_runs (id) ON DELETE CASCADE ON UPDATE CASCADE,
    result_count   bigint           NOT NULL,
    passed_count   bigint           NOT NULL,
    pass_rate      double precision NOT NULL,
    mean_score     double precision NOT NULL,
    p50_latency_ms double precision NOT NULL,
    p95_latency_ms double precision NOT NULL
);

-- eval_results_forget_summaries deletes the stored summaries of the runs
-- whose results the triggering statement inserted, updated (old and new run
-- ids) or deleted, read from the statement's transition tables; TRUNCATE
-- forgets them all. It deletes only when there is something to delete, so
-- that a write to a run without a stored summary (the common case for other
-- writers) does not also notify caches of a change to eval_run_summaries.
-- It runs with its owner's rights, so a writer of eval_results (the
-- TypeScript service's role, say) needs no grant on eval_run_summaries.
-- +goose StatementBegin
CREATE FUNCTION eval_results_forget_summaries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM eval_run_summaries s WHERE s.run_id IN (SELECT run_id FROM new_rows)) THEN
            DELETE FROM eval_run_summaries s WHERE s.run_id IN (SELECT run_id FROM new_rows);
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF EXISTS (SELECT 1 FROM eval_run_summaries s
                   WHERE s.run_id IN (SELECT run_id FROM old_rows UNION SELECT run_id FROM new_rows)) THEN
            DELETE FROM eval_run_summaries s
            WHERE s.run_id IN (SELECT run_id FROM old_rows UNION SELECT run_id FROM new_rows);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM eval_run_summaries s WHERE s.run_id IN (SELECT run_id FROM old_rows)) THEN
            DELETE FROM eval_run_summaries s WHERE s.run_id IN (SELECT run_id FROM old_rows);
        END IF;
    ELSIF EXISTS (SELECT 1 FROM eval_run_summaries) THEN -- TRUNCATE
        DELETE FROM eval_run_summaries;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- PostgreSQL allows transition tables only on triggers of one event, so
-- there is one trigger per event. COPY fires the INSERT trigger, and an
-- INSERT … ON CONFLICT DO UPDATE both the INSERT and the UPDATE one.
CREATE TRIGGER eval_results_forget_summaries_insert
    AFTER INSERT ON eval_results REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION eval_results_forget_summaries();
CREATE TRIGGER eval_results_forget_summaries_update
    AFTER UPDATE ON eval_results REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION eval_results_forget_summaries();
CREATE TRIGGER eval_results_forget_summaries_delete
    AFTER DELETE ON eval_results REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION eval_results_forget_summaries();
CREATE TRIGGER eval_results_forget_summaries_truncate
    AFTER TRUNCATE ON eval_results
    FOR EACH STATEMENT EXECUTE FUNCTION eval_results_forget_summaries();

-- +goose Down
DROP TRIGGER eval_results_forget_summaries_truncate ON eval_results;
DROP TRIGGER eval_results_forget_summaries_delete ON eval_results;
DROP TRIGGER eval_results_forget_summaries_update ON eval_results;
DROP TRIGGER eval_results_forget_summaries_insert ON eval_results;
DROP FUNCTION eval_results_forget_summaries();
DROP TABLE eval_run_summaries;
DROP VIEW eval_run_summaries_live;

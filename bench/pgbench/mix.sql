-- Reads 1 to 3 of workload 5 for pgbench, the same SQL as raw pgx and
-- evaldb send (gen.GetEvalRun, gen.ListEvalResults, gen.GetStudentWithMetrics).
-- One pgbench transaction is three reads: reads/s = 3 × tps.
SELECT id, name, model, dataset, status, config, started_at, finished_at, created_at
FROM eval_runs WHERE id = '01900000-0000-7000-8000-000000000001';
SELECT run_id, case_id, input, expected, output, score, passed, latency_ms, prompt_tokens, completion_tokens, error
FROM eval_results WHERE run_id = '01900000-0000-7000-8000-000000000001' AND case_id > '' ORDER BY case_id LIMIT 100;
SELECT
    sp.id, sp.user_id, sp.student_id, sp.cohort, sp.created_at,
    m.names::text[]              AS metric_names,
    m.vals::float8[]             AS metric_values,
    m.recorded::timestamptz[]    AS metric_recorded_at
FROM student_profiles sp
CROSS JOIN LATERAL (
    SELECT
        coalesce(array_agg(pm.name ORDER BY pm.recorded_at, pm.id), '{}')        AS names,
        coalesce(array_agg(pm.value ORDER BY pm.recorded_at, pm.id), '{}')       AS vals,
        coalesce(array_agg(pm.recorded_at ORDER BY pm.recorded_at, pm.id), '{}') AS recorded
    FROM performance_metrics pm
    WHERE pm.student_profile_id = sp.id
) m
WHERE sp.student_id = 'S00042';

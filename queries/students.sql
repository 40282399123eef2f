-- CreateStudentProfile creates the student record of a user.
-- name: CreateStudentProfile :one
INSERT INTO student_profiles (user_id, student_id, cohort)
VALUES (@user_id, @student_id, sqlc.narg(cohort))
RETURNING *;

-- GetStudentWithMetrics returns a student profile, found by its external
-- student_id, together with all of its performance metrics in recorded_at
-- order, in one round trip: the metrics come back as parallel arrays (the
-- i-th name, value and recorded_at belong together), empty when the student
-- has none. This is Prisma's findMany({ include: { performanceMetrics } })
-- without a second query.
-- cache: ttl=30s swr=10s
-- name: GetStudentWithMetrics :one
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
WHERE sp.student_id = @student_id;

-- ListStudentMetricsInWindow returns a student's metrics recorded in
-- [recorded_from, recorded_until), oldest first, optionally only those named
-- metric_name.
-- name: ListStudentMetricsInWindow :many
SELECT pm.*
FROM performance_metrics pm
JOIN student_profiles sp ON sp.id = pm.student_profile_id
WHERE sp.student_id = @student_id
  AND pm.recorded_at >= @recorded_from
  AND pm.recorded_at < @recorded_until
  AND (sqlc.narg(metric_name)::text IS NULL OR pm.name = sqlc.narg(metric_name))
ORDER BY pm.recorded_at, pm.id;

-- RecordPerformanceMetric stores one measurement of a student.
-- name: RecordPerformanceMetric :one
INSERT INTO performance_metrics (student_profile_id, name, value, recorded_at)
VALUES (@student_profile_id, @name, @value, @recorded_at)
RETURNING *;

-- InsertPerformanceMetrics bulk-loads measurements with COPY.
-- name: InsertPerformanceMetrics :copyfrom
INSERT INTO performance_metrics (student_profile_id, name, value, recorded_at)
VALUES (@student_profile_id, @name, @value, @recorded_at);

package queries_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
)

// TestQueriesUseIndexes checks, with EXPLAIN, that each query is served by
// the index the schema made for it, and that the keyset-paginated ones need
// no Sort (the index order is the result order). Sequential scans are
// disabled so that the plan shows what the planner can use, not what is
// cheapest on a table this small.
func TestQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()

	// Enough rows for a deep page: 300 runs, one of them with results.
	var runs []gen.EvalRun
	for i := range 300 {
		runs = append(runs, mustInsertRun(t, q, fmt.Sprintf("run-%03d", i)))
	}
	run := runs[0]
	var rows []gen.InsertEvalResultsParams
	for i := range 200 {
		rows = append(rows, resultRow(run.ID, fmt.Sprintf("c-%04d", i), i%2 == 0))
	}
	mustInsertResults(t, q, rows)
	// 30 students with 50 metrics each, an hour apart.
	var sp gen.StudentProfile
	var metrics []gen.InsertPerformanceMetricsParams
	for i := range 30 {
		sp = mustStudent(t, q, fmt.Sprintf("STU-IDX-%02d", i), nil)
		for j := range 50 {
			metrics = append(metrics, gen.InsertPerformanceMetricsParams{
				StudentProfileID: sp.ID, Name: fmt.Sprintf("m%d", j%3), Value: float64(j), RecordedAt: t0.Add(time.Duration(j) * time.Hour),
			})
		}
	}
	if _, err := q.InsertPerformanceMetrics(ctx, metrics); err != nil {
		t.Fatalf("InsertPerformanceMetrics: %v", err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatalf("ANALYZE: %v", err)
	}
	deep := newestFirst(runs)[200]

	tests := []struct {
		name   string
		sql    string
		args   []any
		want   []string // plan must contain each
		noSort bool
	}{
		{"ListEvalRunsFirstPage", gen.ListEvalRuns, []any{nil, nil, nil, nil, int32(20)},
			[]string{"Index Scan using eval_runs_created_at_id_idx"}, true},
		{"ListEvalRunsDeepPage", gen.ListEvalRuns, []any{deep.CreatedAt, deep.ID, nil, nil, int32(20)},
			[]string{"Index Scan using eval_runs_created_at_id_idx"}, true},
		{"ListEvalRunsByModelAndStatus", gen.ListEvalRuns, []any{deep.CreatedAt, deep.ID, "gpt-test", "running", int32(20)},
			[]string{"Index Scan Backward using eval_runs_model_created_at_id_idx"}, true},
		{"ListEvalRunsByModel", gen.ListEvalRuns, []any{nil, nil, "gpt-test", nil, int32(20)},
			[]string{"Index Scan Backward using eval_runs_model_created_at_id_idx", "model = "}, true},
		{"GetEvalRun", gen.GetEvalRun, []any{run.ID}, []string{"eval_runs_pkey"}, false},
		{"UpdateEvalRunStatus", gen.UpdateEvalRunStatus, []any{"completed", nil, run.ID}, []string{"eval_runs_pkey"}, false},
		{"DeleteEvalRun", gen.DeleteEvalRun, []any{uuid.New()}, []string{"eval_runs_pkey"}, false},
		{"GetEvalRunSummary", gen.GetEvalRunSummary, []any{run.ID}, []string{"eval_runs_pkey", "eval_results_pkey"}, false},
		{"ListEvalResults", gen.ListEvalResults, []any{run.ID, "c-0100", int32(20)}, []string{"eval_results_pkey"}, true},
		{"ListFailedEvalResults", gen.ListFailedEvalResults, []any{run.ID, "c-0100", int32(20)}, []string{"eval_results_pkey"}, true},
		{"ListEvalMetrics", gen.ListEvalMetrics, []any{run.ID}, []string{"eval_metrics_pkey"}, true},
		{"GetUser", gen.GetUser, []any{sp.UserID}, []string{"users_pkey"}, false},
		{"GetUserByEmail", gen.GetUserByEmail, []any{sp.StudentID + "@school.example"}, []string{"users_email_key"}, false},
		{"GetStudentWithMetrics", gen.GetStudentWithMetrics, []any{sp.StudentID},
			[]string{"student_profiles_student_id_key", "performance_metrics_profile_recorded_idx"}, false},
		{"ListStudentMetricsInWindow", gen.ListStudentMetricsInWindow, []any{sp.StudentID, t0.Add(10 * time.Hour), t0.Add(20 * time.Hour), nil},
			// The join's output order is the outer side's, so a Sort of the
			// one student's window stays on top; the index bounds both columns.
			[]string{"student_profiles_student_id_key", "performance_metrics_profile_recorded_idx", "(student_profile_id = sp.id) AND (recorded_at >="}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := explain(t, pool, tt.sql, tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(plan, w) {
					t.Errorf("plan does not use %q:\n%s", w, plan)
				}
			}
			if tt.noSort && strings.Contains(plan, "Sort") {
				t.Errorf("plan sorts; the index should give the order:\n%s", plan)
			}
		})
	}
}

// explain returns the plan of sql with args, with sequential scans off, in
// a transaction that is rolled back (EXPLAIN of a DML statement does not run it).
func explain(t *testing.T, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatalf("SET enable_seqscan: %v", err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, args...)
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	return strings.Join(lines, "\n")
}

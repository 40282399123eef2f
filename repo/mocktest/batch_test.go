package mocktest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
)

// TestBatchQueriesWithPgxmock runs each batch annotation of Queries on a
// pgxmock pool, as a user's unit test would: the expectations (SQL,
// arguments per statement, columns and rows) all come from gen.
func TestBatchQueriesWithPgxmock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mock, r := setupMock(t)
	a, b := uuid.New(), uuid.New()

	// :batchone
	run := gen.EvalRun{ID: a, Name: "n", Model: "m", Dataset: "d", Status: "completed", Config: []byte("{}")}
	eb := mock.ExpectBatch()
	eb.ExpectQuery(gen.GetEvalRuns).WithArgs(gen.GetEvalRunsArgs(a)...).
		WillReturnRows(mock.NewRows(gen.GetEvalRunsColumns).AddRow(gen.GetEvalRunsValues(run)...))
	eb.ExpectQuery(gen.GetEvalRuns).WithArgs(gen.GetEvalRunsArgs(b)...).WillReturnRows(mock.NewRows(gen.GetEvalRunsColumns))
	var runs []gen.EvalRun
	var errs []error
	r.Queries().GetEvalRuns(ctx, []uuid.UUID{a, b}).QueryRow(func(_ int, got gen.EvalRun, err error) {
		runs, errs = append(runs, got), append(errs, err)
	})
	if diff := cmp.Diff([]gen.EvalRun{run, {}}, runs); diff != "" {
		t.Errorf("GetEvalRuns (-want +got):\n%s", diff)
	}
	if errs[0] != nil || !errors.Is(errs[1], repo.ErrNotFound) {
		t.Errorf("GetEvalRuns errors = %v, want nil and repo.ErrNotFound", errs)
	}

	// :batchmany
	m := gen.EvalMetric{RunID: a, Name: "acc", Value: 0.5}
	eb = mock.ExpectBatch()
	eb.ExpectQuery(gen.ListEvalMetricsOfRuns).WithArgs(gen.ListEvalMetricsOfRunsArgs(a)...).
		WillReturnRows(mock.NewRows(gen.ListEvalMetricsOfRunsColumns).AddRow(gen.ListEvalMetricsOfRunsValues(m)...))
	var metrics []gen.EvalMetric
	res := r.Queries().ListEvalMetricsOfRuns(ctx, []uuid.UUID{a})
	res.Query(func(_ int, ms []gen.EvalMetric, err error) {
		if err != nil {
			t.Error(err)
		}
		metrics = append(metrics, ms...)
	})
	if err := res.Close(); err != nil {
		t.Error(err)
	}
	if diff := cmp.Diff([]gen.EvalMetric{m}, metrics); diff != "" {
		t.Errorf("ListEvalMetricsOfRuns (-want +got):\n%s", diff)
	}

	// :batchexec, with a failure in the middle: its own callback gets it
	// translated, the next statement ErrBatchAborted, Close the failure.
	ps := []gen.SetEvalRunStatusesParams{{ID: a, Status: "failed"}, {ID: b, Status: "bogus"}, {ID: a, Status: "running"}}
	eb = mock.ExpectBatch()
	eb.ExpectExec(gen.SetEvalRunStatuses).WithArgs(gen.SetEvalRunStatusesArgs(ps[0])...).WillReturnResult(pgxmock.NewResult("UPDATE", 1))
	eb.ExpectExec(gen.SetEvalRunStatuses).WithArgs(gen.SetEvalRunStatusesArgs(ps[1])...).
		WillReturnError(&pgconn.PgError{Code: "23505", ConstraintName: "eval_runs_pkey", TableName: "eval_runs"})
	eb.ExpectExec(gen.SetEvalRunStatuses).WithArgs(gen.SetEvalRunStatusesArgs(ps[2])...).WillReturnResult(pgxmock.NewResult("UPDATE", 1))
	upd := r.Queries().SetEvalRunStatuses(ctx, ps)
	errs = nil
	upd.Exec(func(_ int, err error) { errs = append(errs, err) })
	var ce *repo.ConflictError
	if len(errs) != 3 || errs[0] != nil || !errors.As(errs[1], &ce) || ce.Constraint != "eval_runs_pkey" || !errors.Is(errs[2], repo.ErrBatchAborted) {
		t.Errorf("SetEvalRunStatuses callbacks = %v; want nil, a *repo.ConflictError, repo.ErrBatchAborted", errs)
	}
	if err := upd.Close(); !errors.As(err, &ce) {
		t.Errorf("Close = %v, want the *repo.ConflictError", err)
	}
}

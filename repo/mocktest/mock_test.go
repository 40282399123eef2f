package mocktest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
)

// A pgxmock pool stands in for the real one.
var _ repo.DBTX = pgxmock.PgxPoolIface(nil)

// notSent is an error pgconn.SafeToRetry accepts: the statement never left
// the process (as when a pooled connection died while idle).
type notSent struct{}

func (notSent) Error() string     { return "write failed: broken pipe" }
func (notSent) SafeToRetry() bool { return true }

func setupMock(t *testing.T) (pgxmock.PgxPoolIface, *repo.Repo) {
	t.Helper()
	mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("unmet pgxmock expectations: %v", err)
		}
		mock.Close()
	})
	r, err := repo.New(mock, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mock, r
}

func TestQueriesNotFound(t *testing.T) {
	t.Parallel()
	mock, r := setupMock(t)
	id := uuid.New()
	mock.ExpectQuery(gen.GetEvalRun).WithArgs(id).WillReturnRows(mock.NewRows(gen.GetEvalRunColumns))
	_, err := r.Queries().GetEvalRun(context.Background(), id)
	if !errors.Is(err, repo.ErrNotFound) || !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("GetEvalRun(missing) = %v, want repo.ErrNotFound wrapping pgx.ErrNoRows", err)
	}
}

func TestQueriesConflict(t *testing.T) {
	t.Parallel()
	mock, r := setupMock(t)
	pgErr := &pgconn.PgError{Code: "23505", ConstraintName: "users_email_key", TableName: "users", Detail: "Key (lower(email))=(a@b.c) already exists."}
	mock.ExpectQuery(gen.CreateUser).WithArgs("a@b.c", "A").WillReturnError(pgErr)
	_, err := r.Queries().CreateUser(context.Background(), gen.CreateUserParams{Email: "a@b.c", Name: "A"})
	var ce *repo.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("CreateUser(duplicate) = %v, want a *repo.ConflictError", err)
	}
	if diff := cmp.Diff("users_email_key", ce.Constraint); diff != "" {
		t.Errorf("Constraint mismatch (-want +got):\n%s", diff)
	}
}

func TestQueriesErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"AdminShutdownIsConnClosed", &pgconn.PgError{Code: "57P01"}, repo.ErrConnClosed},
		{"EOFIsConnClosed", io.ErrUnexpectedEOF, repo.ErrConnClosed},
		{"ConnectErrorIsUnreachable", &pgconn.ConnectError{}, repo.ErrUnreachable},
		{"DeadlineStays", context.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mock, r := setupMock(t)
			id := uuid.New()
			mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillReturnError(tt.err)
			_, err := r.Queries().DeleteEvalRun(context.Background(), id)
			if !errors.Is(err, tt.want) {
				t.Errorf("DeleteEvalRun error = %v, want errors.Is %v", err, tt.want)
			}
		})
	}
}

func TestRetryNeverSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id := uuid.New()
	t.Run("Exec", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillReturnError(notSent{})
		mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillReturnResult(pgxmock.NewResult("DELETE", 1))
		n, err := r.Queries().DeleteEvalRun(ctx, id)
		if err != nil || n != 1 {
			t.Errorf("DeleteEvalRun = %d, %v; want 1, nil after one retry", n, err)
		}
	})
	t.Run("Query", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		mock.ExpectQuery(gen.ListEvalMetrics).WithArgs(id).WillReturnError(notSent{})
		mock.ExpectQuery(gen.ListEvalMetrics).WithArgs(id).WillReturnRows(mock.NewRows(gen.ListEvalMetricsColumns).AddRow(gen.ListEvalMetricsValues(gen.EvalMetric{RunID: id, Name: "accuracy", Value: 0.5})...))
		got, err := r.Queries().ListEvalMetrics(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]gen.EvalMetric{{RunID: id, Name: "accuracy", Value: 0.5}}, got); diff != "" {
			t.Errorf("ListEvalMetrics mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("QueryRow", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		mock.ExpectQuery(gen.GetEvalRun).WithArgs(id).WillReturnError(notSent{})
		mock.ExpectQuery(gen.GetEvalRun).WithArgs(id).WillReturnRows(mock.NewRows(gen.GetEvalRunColumns).
			AddRow(gen.GetEvalRunValues(gen.EvalRun{ID: id, Name: "r", Model: "m", Dataset: "d", Status: "running",
				Config: []byte(`{}`), StartedAt: now, CreatedAt: now})...))
		got, err := r.Queries().GetEvalRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != id || got.Status != "running" {
			t.Errorf("GetEvalRun = %+v, want run %s running", got, id)
		}
	})
	t.Run("OnlyOnce", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillReturnError(notSent{})
		mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillReturnError(notSent{})
		if _, err := r.Queries().DeleteEvalRun(ctx, id); !errors.Is(err, repo.ErrConnClosed) {
			t.Errorf("DeleteEvalRun after two failures = %v, want repo.ErrConnClosed", err)
		}
	})
	t.Run("NotWhenMaybeSent", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		// An EOF while reading the reply: the DELETE may have run. A retry
		// would hit no expectation and fail differently.
		mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillReturnError(io.ErrUnexpectedEOF)
		if _, err := r.Queries().DeleteEvalRun(ctx, id); !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, repo.ErrConnClosed) {
			t.Errorf("DeleteEvalRun = %v, want the EOF as repo.ErrConnClosed, not retried", err)
		}
	})
	t.Run("ReadOnlyWhenConnectionDied", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		// The same EOF on a query that only reads: running it again cannot
		// change anything, so it is retried on a fresh connection.
		mock.ExpectQuery(gen.ListEvalMetrics).WithArgs(id).WillReturnError(io.ErrUnexpectedEOF)
		mock.ExpectQuery(gen.ListEvalMetrics).WithArgs(id).WillReturnRows(mock.NewRows(gen.ListEvalMetricsColumns).AddRow(gen.ListEvalMetricsValues(gen.EvalMetric{RunID: id, Name: "accuracy", Value: 0.5})...))
		got, err := r.Queries().ListEvalMetrics(ctx, id)
		if err != nil || len(got) != 1 {
			t.Errorf("ListEvalMetrics after a dead connection = %v, %v; want one metric after a retry", got, err)
		}
	})
	t.Run("NotReadOnlyOnQueryError", func(t *testing.T) {
		t.Parallel()
		mock, r := setupMock(t)
		// A read that fails for another reason than a dead connection is
		// not retried.
		mock.ExpectQuery(gen.ListEvalMetrics).WithArgs(id).WillReturnError(&pgconn.PgError{Code: "42P01", Message: "relation does not exist"})
		if _, err := r.Queries().ListEvalMetrics(ctx, id); err == nil || errors.Is(err, repo.ErrConnClosed) {
			t.Errorf("ListEvalMetrics = %v, want the server's error, not retried", err)
		}
	})
}

func TestQueryTimeoutBoundsStatement(t *testing.T) {
	t.Parallel()
	mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	r, err := repo.New(mock, &repo.Config{QueryTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	// pgxmock honours the context: a reply delayed beyond the deadline
	// fails with the context's error.
	mock.ExpectExec(gen.DeleteEvalRun).WithArgs(id).WillDelayFor(time.Minute).WillReturnResult(pgxmock.NewResult("DELETE", 1))
	if _, err := r.Queries().DeleteEvalRun(context.Background(), id); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DeleteEvalRun past QueryTimeout = %v, want context.DeadlineExceeded", err)
	}
}

func TestStatsWithMock(t *testing.T) {
	t.Parallel()
	mock, r := setupMock(t)
	mock.ExpectQuery(gen.CountConnectionsByState).WillReturnRows(mock.NewRows(gen.CountConnectionsByStateColumns).
		AddRow(gen.CountConnectionsByStateValues(gen.CountConnectionsByStateRow{State: "active", Connections: 2})...).
		AddRow(gen.CountConnectionsByStateValues(gen.CountConnectionsByStateRow{State: "idle", Connections: 3})...))
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"active": 2, "idle": 3}, st.Connections); diff != "" {
		t.Errorf("Stats().Connections mismatch (-want +got):\n%s", diff)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := repo.New(nil, nil); err == nil {
		t.Error("repo.New(nil, nil) succeeded, want an error")
	}
	mock, _ := pgxmock.NewPool()
	defer mock.Close()
	if _, err := repo.New(mock, &repo.Config{Env: "staging"}); err == nil {
		t.Error(`repo.New(Env "staging") succeeded, want an error`)
	}
	if _, err := repo.New(mock, &repo.Config{QueryTimeout: -time.Second}); err == nil {
		t.Error("repo.New(QueryTimeout -1s) succeeded, want an error")
	}
	if _, err := repo.Open(context.Background(), &repo.Config{}); err == nil {
		t.Error("repo.Open(no URL) succeeded, want an error")
	}
}

// TestQueryCanceledIsContextError: a statement the server cancelled
// (57014) reports the caller's context error when that context is done,
// and stays the server's error otherwise, also after the executor released
// its own per-statement deadline.
func TestQueryCanceledIsContextError(t *testing.T) {
	t.Parallel()
	qc := &pgconn.PgError{Code: "57014", Message: "canceling statement due to user request"}
	t.Run("CanceledCtx", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		r, err := repo.New(cancelingExec{cancel: cancel, err: qc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.DB().Exec(ctx, "SELECT pg_sleep(60)")
		var pgErr *pgconn.PgError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Errorf("Exec = %v, want context.Canceled wrapping the 57014 PgError", err)
		}
	})
	t.Run("LiveCtxRowsAfterDeadlineReleased", func(t *testing.T) {
		t.Parallel()
		mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherEqual))
		if err != nil {
			t.Fatal(err)
		}
		defer mock.Close()
		r, err := repo.New(mock, &repo.Config{QueryTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		mock.ExpectQuery("SELECT 1").WillReturnRows(mock.NewRows([]string{"x"}).AddRow(1).CloseError(qc))
		rows, err := r.DB().Query(context.Background(), "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, qc) {
			t.Errorf("Rows.Err = %v, want the 57014 PgError alone (statement_timeout, not the caller)", err)
		}
	})
}

// cancelingExec's Exec cancels the caller's context and then fails with
// err, as a statement answered by the server's cancellation does.
type cancelingExec struct {
	repo.DBTX
	cancel context.CancelFunc
	err    error
}

func (c cancelingExec) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	c.cancel()
	return pgconn.CommandTag{}, c.err
}

// TestBatchRowsErrTranslated checks that a failure reported by a batched
// query's rows comes back translated, as from any other statement.
func TestBatchRowsErrTranslated(t *testing.T) {
	t.Parallel()
	mock, r := setupMock(t)
	id := uuid.New()
	b := mock.ExpectBatch()
	b.ExpectQuery(gen.ListEvalMetrics).WithArgs(id).WillReturnRows(
		mock.NewRows(gen.ListEvalMetricsColumns).AddRow(gen.ListEvalMetricsValues(gen.EvalMetric{RunID: id, Name: "accuracy", Value: 0.5})...).
			RowError(0, &pgconn.PgError{Code: "23505", ConstraintName: "eval_metrics_pkey"}))
	batch := &pgx.Batch{}
	batch.Queue(gen.ListEvalMetrics, id)
	br := r.DB().SendBatch(context.Background(), batch)
	rows, err := br.Query()
	if err != nil {
		t.Fatalf("Query() error = %v", err)
	}
	// pgxmock reports a row's error while that row is current.
	rows.Next()
	var conflict *repo.ConflictError
	if err := rows.Err(); !errors.As(err, &conflict) || conflict.Constraint != "eval_metrics_pkey" {
		t.Errorf("rows.Err() = %v, want a *repo.ConflictError naming eval_metrics_pkey", err)
	}
	rows.Close()
	_ = br.Close()
}

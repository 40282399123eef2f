package mocktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/txn"
)

// newMock returns a pgxmock pool matching SQL exactly, checked at cleanup.
func newMock(t *testing.T) pgxmock.PgxPoolIface {
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
	return mock
}

// fastRetries keeps unit tests quick.
var fastRetries = &txn.Options{BaseBackoff: time.Microsecond, MaxBackoff: time.Microsecond}

func pgErr(code string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "test error " + code}
}

var runID = uuid.MustParse("01920000-0000-7000-8000-000000000001")

// deleteRun is a fn that runs one statement through the typed queries.
func deleteRun(attempts *[]int) func(ctx context.Context, tx *txn.Tx) error {
	return func(ctx context.Context, tx *txn.Tx) error {
		*attempts = append(*attempts, tx.Attempt())
		_, err := tx.DeleteEvalRun(ctx, runID)
		return err
	}
}

func TestDoCommits(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
	mock.ExpectCommit()

	var attempts []int
	if err := txn.Do(t.Context(), mock, nil, deleteRun(&attempts)); err != nil {
		t.Fatalf("Do() = %v", err)
	}
	if diff := cmp.Diff([]int{1}, attempts); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
}

func TestDoRollsBackOnFnError(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectRollback()
	myErr := errors.New("nope")

	err := txn.Do(t.Context(), mock, fastRetries, func(ctx context.Context, tx *txn.Tx) error { return myErr })
	if !errors.Is(err, myErr) {
		t.Fatalf("Do() = %v, want %v", err, myErr)
	}
}

func TestDoRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"SerializationFailure", pgErr("40001")},
		{"DeadlockDetected", pgErr("40P01")},
		{"ConnectionLostBeforeCommit", io.ErrUnexpectedEOF},
		{"AdminShutdownBeforeCommit", pgErr("57P01")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mock := newMock(t)
			mock.ExpectBegin()
			mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnError(tc.err)
			mock.ExpectRollback()
			mock.ExpectBegin()
			mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
			mock.ExpectCommit()

			var attempts []int
			if err := txn.Do(t.Context(), mock, fastRetries, deleteRun(&attempts)); err != nil {
				t.Fatalf("Do() = %v", err)
			}
			if diff := cmp.Diff([]int{1, 2}, attempts); diff != "" {
				t.Errorf("attempts mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDoRetriesBeginConnectionFailure(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin().WillReturnError(io.ErrUnexpectedEOF)
	mock.ExpectBegin()
	mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
	mock.ExpectCommit()

	var attempts []int
	if err := txn.Do(t.Context(), mock, fastRetries, deleteRun(&attempts)); err != nil {
		t.Fatalf("Do() = %v", err)
	}
	if diff := cmp.Diff([]int{2}, attempts); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
}

func TestDoRetriesSerializationFailureAtCommit(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBeginTx(pgx.TxOptions{IsoLevel: pgx.Serializable})
	mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
	mock.ExpectCommit().WillReturnError(pgErr("40001"))
	mock.ExpectRollback() // pgx answers ErrTxClosed; Do ignores it
	mock.ExpectBeginTx(pgx.TxOptions{IsoLevel: pgx.Serializable})
	mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
	mock.ExpectCommit()

	var attempts []int
	opts := *fastRetries
	opts.Isolation = pgx.Serializable
	if err := txn.Do(t.Context(), mock, &opts, deleteRun(&attempts)); err != nil {
		t.Fatalf("Do() = %v", err)
	}
	if diff := cmp.Diff([]int{1, 2}, attempts); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
}

func TestDoGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	for range 3 {
		mock.ExpectBegin()
		mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnError(pgErr("40P01"))
		mock.ExpectRollback()
	}
	opts := *fastRetries
	opts.MaxAttempts = 3
	var attempts []int
	err := txn.Do(t.Context(), mock, &opts, deleteRun(&attempts))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "40P01" {
		t.Fatalf("Do() = %v, want the 40P01 error", err)
	}
	if diff := cmp.Diff([]int{1, 2, 3}, attempts); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
}

func TestDoDoesNotRetryOtherErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"UniqueViolation", &pgconn.PgError{Code: "23505", ConstraintName: "eval_runs_pkey", TableName: "eval_runs"},
			func(err error) bool {
				var c *dberr.ConflictError
				return errors.As(err, &c) && c.Constraint == "eval_runs_pkey"
			}},
		{"NoRows", pgx.ErrNoRows, func(err error) bool { return errors.Is(err, dberr.ErrNotFound) }},
		{"CheckViolation", pgErr("23514"), func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "23514"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mock := newMock(t)
			mock.ExpectBegin()
			mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnError(tc.err)
			mock.ExpectRollback()
			var attempts []int
			err := txn.Do(t.Context(), mock, fastRetries, deleteRun(&attempts))
			if !tc.check(err) {
				t.Errorf("Do() = %v: not translated as expected", err)
			}
			if diff := cmp.Diff([]int{1}, attempts); diff != "" {
				t.Errorf("attempts mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDoCommitOutcomeUnknownIsNotRetried(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
	mock.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF)

	var attempts []int
	err := txn.Do(t.Context(), mock, fastRetries, deleteRun(&attempts))
	if !errors.Is(err, txn.ErrCommitUnknown) || !errors.Is(err, dberr.ErrConnClosed) {
		t.Fatalf("Do() = %v, want ErrCommitUnknown and ErrConnClosed", err)
	}
	if diff := cmp.Diff([]int{1}, attempts); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
}

func TestDoMaxWait(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin().WillDelayFor(time.Minute)
	opts := *fastRetries
	opts.MaxWait = 10 * time.Millisecond
	err := txn.Do(t.Context(), mock, &opts, func(ctx context.Context, tx *txn.Tx) error {
		t.Error("fn ran although BEGIN never finished")
		return nil
	})
	if !errors.Is(err, dberr.ErrPoolTimeout) {
		t.Fatalf("Do() = %v, want ErrPoolTimeout", err)
	}
}

func TestDoTimeout(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectRollback()
	opts := *fastRetries
	opts.Timeout = 10 * time.Millisecond
	err := txn.Do(t.Context(), mock, &opts, func(ctx context.Context, tx *txn.Tx) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, txn.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do() = %v, want ErrTimeout and DeadlineExceeded", err)
	}
}

func TestDoCancelledContextIsNotRetried(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectRollback()
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := txn.Do(ctx, mock, fastRetries, func(ctx context.Context, tx *txn.Tx) error {
		calls++
		cancel()
		return fmt.Errorf("query: %w", io.ErrUnexpectedEOF) // would be retried if ctx were alive
	})
	if err == nil || calls != 1 {
		t.Fatalf("Do() = %v after %d calls, want an error after 1", err, calls)
	}
}

func TestDoRollsBackOnPanic(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectRollback()
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recover() = %v, want boom", r)
		}
	}()
	_ = txn.Do(t.Context(), mock, nil, func(ctx context.Context, tx *txn.Tx) error { panic("boom") })
	t.Error("Do returned instead of panicking")
}

func TestDoRejectsBadOptions(t *testing.T) {
	t.Parallel()
	mock := newMock(t) // no expectations: nothing may be sent
	for _, opts := range []txn.Options{
		{MaxWait: -1}, {Timeout: -time.Second}, {MaxAttempts: -1}, {BaseBackoff: -1}, {MaxBackoff: -1}, {CopyThreshold: -2},
	} {
		err := txn.Do(t.Context(), mock, &opts, func(ctx context.Context, tx *txn.Tx) error { return nil })
		if err == nil {
			t.Errorf("Do(%+v) = nil, want an error", opts)
		}
	}
}

// events is a concurrency-safe log shared by the fakes below.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) { e.mu.Lock(); e.log = append(e.log, s); e.mu.Unlock() }
func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// fakeCache records what Do tells it.
type fakeCache struct{ ev *events }

func (c fakeCache) Tx(q gen.Querier) (gen.Querier, func()) {
	c.ev.add("cache.Tx")
	return recordingQuerier{Querier: q, ev: c.ev}, func() { c.ev.add("cache.commit") }
}

func (c fakeCache) Invalidate(tables ...string) { c.ev.add(fmt.Sprint("cache.Invalidate", tables)) }

type recordingQuerier struct {
	gen.Querier
	ev *events
}

func (q recordingQuerier) DeleteEvalRun(ctx context.Context, id uuid.UUID) (int64, error) {
	q.ev.add("DeleteEvalRun")
	return q.Querier.DeleteEvalRun(ctx, id)
}

// loggingBeginner logs COMMIT and ROLLBACK of the transactions it begins.
type loggingBeginner struct {
	db txn.Beginner
	ev *events
}

func (b loggingBeginner) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := b.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return loggingTx{Tx: tx, ev: b.ev}, nil
}

type loggingTx struct {
	pgx.Tx
	ev *events
}

func (t loggingTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.ev.add(fmt.Sprintf("COMMIT err=%v", err))
	return err
}

func (t loggingTx) Rollback(ctx context.Context) error {
	t.ev.add("ROLLBACK")
	return t.Tx.Rollback(ctx)
}

func TestDoTellsCacheAfterCommitNeverBefore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		setup     func(pgxmock.PgxPoolIface)
		fnErr     error
		wantErr   error
		wantEvent []string
	}{
		{
			name: "Committed",
			setup: func(m pgxmock.PgxPoolIface) {
				m.ExpectBegin()
				m.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
				m.ExpectCommit()
			},
			wantEvent: []string{"cache.Tx", "DeleteEvalRun", "touch", "COMMIT err=<nil>", "cache.commit", "cache.Invalidate[eval_results]"},
		},
		{
			name: "RolledBack",
			setup: func(m pgxmock.PgxPoolIface) {
				m.ExpectBegin()
				m.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
				m.ExpectRollback()
			},
			fnErr:     errors.New("changed my mind"),
			wantErr:   errors.New("changed my mind"),
			wantEvent: []string{"cache.Tx", "DeleteEvalRun", "touch", "ROLLBACK"},
		},
		{
			name: "CommitRejected",
			setup: func(m pgxmock.PgxPoolIface) {
				m.ExpectBegin()
				m.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
				m.ExpectCommit().WillReturnError(pgErr("23503"))
				m.ExpectRollback()
			},
			wantErr:   pgErr("23503"),
			wantEvent: []string{"cache.Tx", "DeleteEvalRun", "touch", "COMMIT err=ERROR: test error 23503 (SQLSTATE 23503)", "ROLLBACK"},
		},
		{
			// The commit may have happened: invalidate, but only after it.
			name: "CommitOutcomeUnknown",
			setup: func(m pgxmock.PgxPoolIface) {
				m.ExpectBegin()
				m.ExpectExec(gen.DeleteEvalRun).WithArgs(runID).WillReturnResult(pgxmock.NewResult("DELETE", 1))
				m.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF)
			},
			wantErr:   txn.ErrCommitUnknown,
			wantEvent: []string{"cache.Tx", "DeleteEvalRun", "touch", "COMMIT err=unexpected EOF", "cache.commit", "cache.Invalidate[eval_results]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mock := newMock(t)
			tc.setup(mock)
			ev := &events{}
			opts := *fastRetries
			opts.Cache = fakeCache{ev: ev}
			opts.MaxAttempts = 1
			err := txn.Do(t.Context(), loggingBeginner{db: mock, ev: ev}, &opts, func(ctx context.Context, tx *txn.Tx) error {
				if _, err := tx.DeleteEvalRun(ctx, runID); err != nil {
					return err
				}
				tx.Touch("eval_results")
				ev.add("touch")
				return tc.fnErr
			})
			if (err == nil) != (tc.wantErr == nil) || (err != nil && !errors.Is(err, tc.wantErr) && err.Error() != tc.wantErr.Error() && !containsMsg(err, tc.wantErr)) {
				t.Errorf("Do() = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantEvent, ev.get()); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func containsMsg(err, want error) bool {
	var pe, wpe *pgconn.PgError
	return errors.As(err, &pe) && errors.As(want, &wpe) && pe.Code == wpe.Code
}

package mocktest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/dberr"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/querymeta"
	"github.com/aah/evaldb/txn"
)

// obsLog records what an Observer is told, in order.
type obsLog struct {
	mu  sync.Mutex
	log []string
}

func (e *obsLog) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *obsLog) StartStatement(ctx context.Context, s *observe.Statement) (context.Context, func(*observe.StatementEnd)) {
	e.add("start " + s.Name)
	return ctx, func(end *observe.StatementEnd) {
		if end.Err != nil {
			e.add("end " + s.Name + ": " + end.Err.Error())
		} else {
			e.add("end " + s.Name)
		}
	}
}

func (e *obsLog) StartTx(ctx context.Context, _ *observe.Tx) (context.Context, observe.TxSpan) {
	return ctx, txSpan{}
}

func (e *obsLog) StartRecord(ctx context.Context, _ *observe.Record) (context.Context, func(*observe.RecordEnd)) {
	return ctx, func(*observe.RecordEnd) {}
}

type txSpan struct{}

func (txSpan) Retry(int, error) {}
func (txSpan) End(error)        {}

// tables records what a txn.Cache is told, in order, around the
// transaction's own obsLog.
type tables struct{ ev *obsLog }

func (c tables) Tx(q gen.Querier) (gen.Querier, func()) {
	return recording{Querier: q, ev: c.ev}, func() { c.ev.add("commit callback") }
}

func (c tables) Invalidate(ts ...string) {}

type recording struct {
	gen.Querier
	ev *obsLog
}

func (r recording) SetEvalRunStatuses(ctx context.Context, arg []gen.SetEvalRunStatusesParams) *gen.SetEvalRunStatusesBatchResults {
	r.ev.add("cache records " + querymeta.Queries[querymeta.SetEvalRunStatuses].Name)
	return r.Querier.SetEvalRunStatuses(ctx, arg)
}

// TestBatchInTransaction runs a :batchexec query through a transaction's
// typed queries on pgxmock: its arguments per statement come from gen, its
// statement reaches the Observer and ends at the batch's Close (not when
// it is sent), and its writes reach the cache only through the
// transaction's after-commit callback.
func TestBatchInTransaction(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	ps := []gen.SetEvalRunStatusesParams{{ID: runID, Status: "failed"}, {ID: runID, Status: "completed"}}
	mock.ExpectBegin()
	eb := mock.ExpectBatch()
	for _, p := range ps {
		eb.ExpectExec(gen.SetEvalRunStatuses).WithArgs(gen.SetEvalRunStatusesArgs(p)...).WillReturnResult(pgxmock.NewResult("UPDATE", 1))
	}
	mock.ExpectCommit()
	ev := &obsLog{}
	err := txn.Do(t.Context(), mock, &txn.Options{Observer: ev, Cache: tables{ev}}, func(ctx context.Context, tx *txn.Tx) error {
		res := tx.SetEvalRunStatuses(ctx, ps)
		ev.add("sent")
		res.Exec(func(i int, err error) {
			if err != nil {
				t.Errorf("SetEvalRunStatuses[%d]: %v", i, err)
			}
		})
		ev.add("read")
		return res.Close()
	})
	if err != nil {
		t.Fatalf("Do = %v", err)
	}
	want := []string{"cache records SetEvalRunStatuses", "start SetEvalRunStatuses", "sent", "end SetEvalRunStatuses", "read", "commit callback"}
	if diff := cmp.Diff(want, ev.log); diff != "" {
		t.Errorf("obsLog (-want +got):\n%s", diff)
	}
}

// TestBatchFailureInTransaction checks that a failed statement of a batch
// in a transaction reaches its callback and the Observer, that the
// transaction rolls back, and that the cache is not told.
func TestBatchFailureInTransaction(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	ps := []gen.SetEvalRunStatusesParams{{ID: runID, Status: "bogus"}}
	mock.ExpectBegin()
	mock.ExpectBatch().ExpectExec(gen.SetEvalRunStatuses).WithArgs(gen.SetEvalRunStatusesArgs(ps[0])...).WillReturnError(pgErr("23514"))
	mock.ExpectRollback()
	ev := &obsLog{}
	var cbErr error
	err := txn.Do(t.Context(), mock, &txn.Options{Observer: ev, Cache: tables{ev}}, func(ctx context.Context, tx *txn.Tx) error {
		res := tx.SetEvalRunStatuses(ctx, ps)
		res.Exec(func(_ int, err error) { cbErr = err })
		return res.Close()
	})
	if err == nil || cbErr == nil {
		t.Fatalf("Do = %v, callback error %v; want both the 23514", err, cbErr)
	}
	var pe interface{ SQLState() string }
	if !errors.As(err, &pe) || pe.SQLState() != "23514" || errors.Is(err, dberr.ErrBatchAborted) {
		t.Errorf("Do = %v, want the server's 23514", err)
	}
	want := []string{"cache records SetEvalRunStatuses", "start SetEvalRunStatuses", "end SetEvalRunStatuses: " + err.Error()}
	if diff := cmp.Diff(want, ev.log); diff != "" {
		t.Errorf("obsLog (-want +got):\n%s", diff)
	}
}

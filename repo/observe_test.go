package repo

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/txn"
)

// recorder is an observe.Observer that records what it is told.
type recorder struct {
	mu    sync.Mutex
	stmts []string // "name cache replica=… err=…"
	txs   []string
}

type ctxKey struct{}

func (o *recorder) StartStatement(ctx context.Context, s *observe.Statement) (context.Context, func(*observe.StatementEnd)) {
	name := s.Name
	return context.WithValue(ctx, ctxKey{}, name), func(e *observe.StatementEnd) {
		o.mu.Lock()
		defer o.mu.Unlock()
		ev := name + " " + s.Operation + " cache=" + string(e.Cache)
		if e.Err != nil {
			ev += " err"
		}
		o.stmts = append(o.stmts, ev)
	}
}

type txSpan struct {
	o *recorder
}

func (t txSpan) Retry(attempt int, err error) {}
func (t txSpan) End(err error) {
	t.o.mu.Lock()
	defer t.o.mu.Unlock()
	t.o.txs = append(t.o.txs, "end")
}

func (o *recorder) StartTx(ctx context.Context, t *observe.Tx) (context.Context, observe.TxSpan) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.txs = append(o.txs, "start "+t.Server.Database)
	return ctx, txSpan{o}
}

func (o *recorder) StartRecord(ctx context.Context, r *observe.Record) (context.Context, func(*observe.RecordEnd)) {
	return ctx, func(*observe.RecordEnd) {}
}

func (o *recorder) take() (stmts, txs []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	stmts, txs = o.stmts, o.txs
	o.stmts, o.txs = nil, nil
	return stmts, txs
}

// Every statement, a cache hit included, and every transaction reach the
// Observer, with the cache's outcome and the error.
func TestObserverSeesStatementsAndTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	obs := &recorder{}
	r := open(t, &Config{URL: testURL(t, ""), Env: Test, Observer: obs, DisableListen: true})
	q := r.Queries()
	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "observed@example.com", Name: "O"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := q.GetUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		r.Cache().Wait()
	}
	if _, err := q.GetUser(ctx, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetUser(-1) = %v, want ErrNotFound", err)
	}
	if _, err := r.DB().Exec(ctx, "-- name: Touch\nSELECT 1"); err != nil {
		t.Fatal(err)
	}
	stmts, _ := obs.take()
	want := []string{
		"CreateUser INSERT cache=",
		"GetUser SELECT cache=miss",
		"GetUser SELECT cache=hit",
		"GetUser SELECT cache=miss err",
		"Touch SELECT cache=",
	}
	if diff := cmp.Diff(want, stmts); diff != "" {
		t.Errorf("statements observed mismatch (-want +got):\n%s", diff)
	}

	err = r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
		_, err := tx.GetUser(ctx, u.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, txs := obs.take()
	if diff := cmp.Diff([]string{"start " + r.Settings().Pool.ConnConfig.Database, "end"}, txs); diff != "" {
		t.Errorf("transactions observed mismatch (-want +got):\n%s", diff)
	}
}

// A batch's statement reaches the Observer once, when the batch is closed
// (not when it is sent), with the batch's first error.
func TestObserverSeesBatchAtClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	obs := &recorder{}
	r := open(t, &Config{URL: testURL(t, ""), Env: Test, Observer: obs, DisableListen: true})
	q := r.Queries()
	if _, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "taken@example.com", Name: "T"}); err != nil {
		t.Fatal(err)
	}
	obs.take()
	res := q.CreateUsers(ctx, []gen.CreateUsersParams{{Email: "new@example.com", Name: "N"}, {Email: "taken@example.com", Name: "T"}})
	if stmts, _ := obs.take(); len(stmts) != 0 {
		t.Errorf("observed before the batch was read: %v", stmts)
	}
	res.QueryRow(nil)
	_ = res.Close()
	stmts, _ := obs.take()
	if diff := cmp.Diff([]string{"CreateUsers INSERT cache= err"}, stmts); diff != "" {
		t.Errorf("statements observed mismatch (-want +got):\n%s", diff)
	}
}

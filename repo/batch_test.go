package repo

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/txn"
)

// recordRuns records n running runs, each with the metrics named in
// metrics, and returns them.
func recordRuns(t *testing.T, r *Repo, n int, metrics ...string) []gen.EvalRun {
	t.Helper()
	var runs []gen.EvalRun
	for i := range n {
		run := txn.Run{Name: "batch", Model: "m", Dataset: "d", Status: "running"}
		for _, m := range metrics {
			run.Metrics = append(run.Metrics, txn.Metric{Name: m, Value: float64(i)})
		}
		rec, err := r.RecordEvalRun(context.Background(), run, nil)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, rec.Run)
	}
	return runs
}

// idle fails unless every connection of r's pool is back in the pool: a
// batch holds its connection until Close.
func idle(t *testing.T, r *Repo) {
	t.Helper()
	if n := r.primary.pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections still acquired after the batch was closed, want 0", n)
	}
}

// status reads a run's status through the cache.
func status(t *testing.T, q gen.Querier, id uuid.UUID) string {
	t.Helper()
	run, err := q.GetEvalRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return run.Status
}

// TestBatchQueries runs the three batch annotations on a real server
// through Queries: each statement's result reaches its own callback, a
// batch write invalidates the cached read of the table it writes (at
// Close, before Close returns), and every connection is back in the pool
// afterwards.
func TestBatchQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// No listener: the invalidation seen is the batch's own.
	r := open(t, &Config{URL: testURL(t, ""), Env: Test, DisableListen: true})
	q := r.Queries()
	runs := recordRuns(t, r, 2, "acc", "f1")
	missing := uuid.New()

	// :batchone: a run per id, ErrNotFound for the one that does not exist.
	var got []string
	var errs []error
	q.GetEvalRuns(ctx, []uuid.UUID{runs[0].ID, missing, runs[1].ID}).QueryRow(func(i int, run gen.EvalRun, err error) {
		got = append(got, run.ID.String())
		errs = append(errs, err)
	})
	if diff := cmp.Diff([]string{runs[0].ID.String(), uuid.Nil.String(), runs[1].ID.String()}, got); diff != "" {
		t.Errorf("GetEvalRuns ids (-want +got):\n%s", diff)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrNotFound) || errs[2] != nil {
		t.Errorf("GetEvalRuns errors = %v, want nil, ErrNotFound, nil", errs)
	}
	idle(t, r)

	// :batchmany: each run's metrics by name.
	var names [][]string
	res := q.ListEvalMetricsOfRuns(ctx, []uuid.UUID{runs[1].ID, missing})
	res.Query(func(i int, ms []gen.EvalMetric, err error) {
		if err != nil {
			t.Errorf("ListEvalMetricsOfRuns[%d]: %v", i, err)
		}
		var ns []string
		for _, m := range ms {
			ns = append(ns, m.Name)
			if m.RunID != runs[1].ID || m.Value != 1 {
				t.Errorf("ListEvalMetricsOfRuns[%d] = %+v, want run %s's metric of value 1", i, m, runs[1].ID)
			}
		}
		names = append(names, ns)
	})
	if err := res.Close(); err != nil {
		t.Errorf("Close after Query = %v, want nil", err)
	}
	if diff := cmp.Diff([][]string{{"acc", "f1"}, nil}, names); diff != "" {
		t.Errorf("ListEvalMetricsOfRuns names (-want +got):\n%s", diff)
	}
	idle(t, r)

	// :batchexec, own writes: the cached status is invalidated.
	if s := status(t, q, runs[0].ID); s != "running" {
		t.Fatalf("status = %q, want running", s)
	}
	r.Cache().Wait()
	hits := r.Cache().Stats().Hits
	status(t, q, runs[0].ID)
	if r.Cache().Stats().Hits == hits {
		t.Fatal("the second GetEvalRun was not a cache hit: the test cannot see an invalidation")
	}
	upd := q.SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{
		{ID: runs[0].ID, Status: "failed"}, {ID: runs[1].ID, Status: "completed"}, {ID: missing, Status: "failed"}})
	n := 0
	upd.Exec(func(i int, err error) {
		n++
		if err != nil {
			t.Errorf("SetEvalRunStatuses[%d]: %v", i, err)
		}
	})
	if err := upd.Close(); n != 3 || err != nil {
		t.Errorf("SetEvalRunStatuses: %d callbacks, Close = %v; want 3 and nil", n, err)
	}
	if s := status(t, q, runs[0].ID); s != "failed" {
		t.Errorf("status after SetEvalRunStatuses = %q, want failed (the batch did not invalidate the cached read)", s)
	}
	if s := status(t, q, runs[1].ID); s != "completed" {
		t.Errorf("status of the second run = %q, want completed", s)
	}
	idle(t, r)

	// An empty batch sends nothing and holds no connection.
	empty := q.SetEvalRunStatuses(ctx, nil)
	empty.Exec(func(int, error) { t.Error("a callback for an empty batch") })
	if err := empty.Close(); err != nil {
		t.Errorf("empty batch Close = %v", err)
	}
}

// TestBatchWriteReachesAnotherInstance checks that a batch write through
// one Repo reaches another Repo's cached read of the table it writes (the
// generated triggers), and that it invalidates its own cache before Close
// returns even when it hears nothing from the database (DisableListen).
func TestBatchWriteReachesAnotherInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testURL(t, "")
	a := open(t, &Config{URL: url, Env: Test, DisableListen: true})
	b := open(t, &Config{URL: url, Env: Test})
	runs := recordRuns(t, a, 1)
	id := runs[0].ID
	for _, q := range []gen.Querier{a.Queries(), b.Queries()} {
		if s := status(t, q, id); s != "running" {
			t.Fatalf("status = %q, want running", s)
		}
	}
	res := a.Queries().SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{{ID: id, Status: "failed"}})
	res.Exec(func(_ int, err error) {
		if err != nil {
			t.Error(err)
		}
	})
	if s := status(t, a.Queries(), id); s != "failed" {
		t.Errorf("own read after the batch = %q, want failed", s)
	}
	deadline := time.Now().Add(15 * time.Second)
	for status(t, b.Queries(), id) != "failed" {
		if time.Now().After(deadline) {
			t.Fatal("another instance never saw the batch's write")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBatchFailureReachesItsCallback checks that a unique violation in the
// middle of a batch reaches that statement's callback as a *ConflictError,
// the statements after it ErrBatchAborted, Close the conflict; that the
// batch, one implicit transaction, created nothing; and that it still
// invalidated the cache (a failed write may have reached the server).
func TestBatchFailureReachesItsCallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test})
	q := r.Queries()
	if _, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "taken@example.com", Name: "t"}); err != nil {
		t.Fatal(err)
	}
	res := q.CreateUsers(ctx, []gen.CreateUsersParams{
		{Email: "first@example.com", Name: "a"}, {Email: "TAKEN@example.com", Name: "b"}, {Email: "third@example.com", Name: "c"}})
	errs := make([]error, 3)
	res.QueryRow(func(i int, _ gen.User, err error) { errs[i] = err })
	var ce *ConflictError
	if errs[0] != nil || !errors.As(errs[1], &ce) || !errors.Is(errs[2], ErrBatchAborted) || errors.As(errs[2], &ce) {
		t.Fatalf("CreateUsers callbacks = %v; want nil, a *ConflictError, ErrBatchAborted (and no conflict)", errs)
	}
	if ce.Table != "users" {
		t.Errorf("ConflictError.Table = %q, want users", ce.Table)
	}
	if err := res.Close(); !errors.As(err, &ce) {
		t.Errorf("Close = %v, want the *ConflictError", err)
	}
	idle(t, r)
	if _, err := q.GetUserByEmail(ctx, "first@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUserByEmail(first) after the failed batch = %v, want ErrNotFound: the batch is one transaction", err)
	}
}

// TestBatchPoolTimeout checks that a batch that cannot get a connection
// within the pool timeout reports the translated *PoolTimeoutError to
// every callback and to Close, leaks no connection and sends nothing; and
// that a closed pool is an error too, not a panic.
func TestBatchPoolTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, "connection_limit=1&pool_timeout=1"), Env: Test})
	tx, err := r.DB().Begin(ctx) // holds the one connection
	if err != nil {
		t.Fatal(err)
	}
	res := r.Queries().GetEvalRuns(ctx, []uuid.UUID{uuid.New(), uuid.New()})
	n := 0
	res.QueryRow(func(i int, _ gen.EvalRun, err error) {
		n++
		var pte *PoolTimeoutError
		if !errors.As(err, &pte) || pte.MaxConns != 1 {
			t.Errorf("GetEvalRuns[%d] with the pool busy = %v, want a *PoolTimeoutError", i, err)
		}
	})
	if err := res.Close(); n != 2 || !errors.Is(err, ErrPoolTimeout) {
		t.Errorf("%d callbacks, Close = %v; want 2 and ErrPoolTimeout", n, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	idle(t, r)
	ok := r.Queries().GetEvalRuns(ctx, []uuid.UUID{uuid.New()})
	ok.QueryRow(func(_ int, _ gen.EvalRun, err error) {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("GetEvalRuns after the timeout = %v, want ErrNotFound (the connection is usable)", err)
		}
	})

	pool, err := pgxpool.New(ctx, dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	nr, err := New(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	closed := nr.Queries().SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{{ID: uuid.New(), Status: "failed"}})
	closed.Exec(func(_ int, err error) {
		if err == nil {
			t.Error("a batch on a closed pool succeeded")
		}
	})
	if err := closed.Close(); err == nil {
		t.Error("Close of a batch on a closed pool = nil, want the error")
	}
}

// TestBatchCanceledMidway checks a context canceled while a batch runs:
// the second statement waits for a row lock held elsewhere when the
// context ends (the first has run), so it reports context.Canceled, the third ErrBatchAborted,
// Close the cancellation; nothing of the batch took effect, and the
// connection is back in the pool and usable.
func TestBatchCanceledMidway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, "connection_limit=2"), Env: Test})
	runs := recordRuns(t, r, 2)
	lock, err := r.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "SELECT 1 FROM eval_runs WHERE id = $1 FOR UPDATE", runs[1].ID); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := r.Queries().SetEvalRunStatuses(cctx, []gen.SetEvalRunStatusesParams{
		{ID: runs[0].ID, Status: "failed"}, {ID: runs[1].ID, Status: "failed"}, {ID: runs[0].ID, Status: "completed"}})
	// The server sends a pipeline's results when it reaches its end, so
	// the cancel comes from here, once the second statement waits for the
	// lock.
	waited := make(chan error, 1)
	go func() {
		defer cancel()
		for {
			var n int
			err := lock.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n)
			if err != nil || n > 0 {
				waited <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	errs := make([]error, 3)
	res.Exec(func(i int, err error) { errs[i] = err })
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], context.Canceled) || !errors.Is(errs[2], ErrBatchAborted) {
		t.Errorf("callbacks = %v; want nil, context.Canceled, ErrBatchAborted", errs)
	}
	if err := res.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	idle(t, r)
	if s := status(t, r.Queries(), runs[0].ID); s != "running" {
		t.Errorf("status of the first run = %q, want running: the canceled batch is one transaction", s)
	}
}

// TestBatchNeverInSimpleProtocol checks every path a batch can take on a
// pool configured for the simple protocol refuses it, unsent, with
// ErrSimpleProtocolBatch: Queries of New(pool), DB().SendBatch, a
// transaction's typed queries (txn.Do on the pool, and Repo.Tx), and Open
// with ConfigurePool switching the mode.
func TestBatchNeverInSimpleProtocol(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	methods := &recordMethods{}
	r, err := New(pool, &Config{Observer: methods})
	if err != nil {
		t.Fatal(err)
	}
	opened := open(t, &Config{URL: testURL(t, ""), Env: Test, Observer: methods, ConfigurePool: func(c *pgxpool.Config) error {
		c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		return nil
	}})
	batch := func(q gen.Querier) error {
		res := q.SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{{ID: uuid.New(), Status: "failed"}})
		res.Exec(func(_ int, err error) {
			if !errors.Is(err, ErrSimpleProtocolBatch) {
				t.Errorf("callback = %v, want ErrSimpleProtocolBatch", err)
			}
		})
		return res.Close()
	}
	for name, fn := range map[string]func() error{
		"New":  func() error { return batch(r.Queries()) },
		"Open": func() error { return batch(opened.Queries()) },
		"DB": func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			return r.DB().SendBatch(ctx, b).Close()
		},
		"txn.Do": func() error {
			return txn.Do(ctx, pool, nil, func(ctx context.Context, tx *txn.Tx) error { return batch(tx) })
		},
		"Tx": func() error {
			return r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error { return batch(tx) })
		},
	} {
		if err := fn(); !errors.Is(err, ErrSimpleProtocolBatch) {
			t.Errorf("%s: %v, want ErrSimpleProtocolBatch", name, err)
		}
	}
	if n := pool.Stat().AcquireCount(); n != 2 {
		t.Errorf("the pool's connections were acquired %d times, want 2 (the two transactions'): a refused batch takes none", n)
	}

	// RecordEvalRun, whose small runs go in one batch, uses COPY instead.
	for _, rr := range []*Repo{r, opened} {
		run := txn.Run{Name: "simple", Model: "m", Dataset: "d", Results: []txn.Result{{CaseID: "a"}}, Metrics: []txn.Metric{{Name: "acc", Value: 1}}}
		if _, err := rr.RecordEvalRun(ctx, run, nil); err != nil {
			t.Errorf("RecordEvalRun in the simple protocol: %v", err)
		}
	}
	if diff := cmp.Diff([]observe.Method{observe.MethodCopy, observe.MethodCopy}, methods.take()); diff != "" {
		t.Errorf("RecordEvalRun's methods in the simple protocol (-want +got):\n%s", diff)
	}
}

// recordMethods is an Observer that records how each RecordEvalRun sent
// its results.
type recordMethods struct {
	recorder
	mu      sync.Mutex
	methods []observe.Method
}

func (o *recordMethods) StartRecord(ctx context.Context, _ *observe.Record) (context.Context, func(*observe.RecordEnd)) {
	return ctx, func(e *observe.RecordEnd) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.methods = append(o.methods, e.Method)
	}
}

func (o *recordMethods) take() []observe.Method {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.methods
	o.methods = nil
	return m
}

// TestBatchInTransaction checks a batch run through a transaction's typed
// queries: its write reaches the cache through the transaction's
// after-commit list (invalidated after COMMIT, not at send), and nothing
// after a rollback.
func TestBatchInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test, DisableListen: true})
	q := r.Queries()
	runs := recordRuns(t, r, 1)
	id := runs[0].ID
	status(t, q, id)
	r.Cache().Wait()
	// tx runs the batch in a transaction whose fn then returns end. The
	// read outside the transaction before COMMIT caches the old status: an
	// invalidation at send instead of after COMMIT would keep it.
	tx := func(end error) error {
		return r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
			res := tx.SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{{ID: id, Status: "failed"}})
			res.Exec(nil)
			if err := res.Close(); err != nil {
				return err
			}
			if s := status(t, q, id); s != "running" {
				t.Errorf("status outside the transaction before COMMIT = %q, want running", s)
			}
			return end
		})
	}
	boom := errors.New("boom")
	if err := tx(boom); !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	if s := status(t, q, id); s != "running" {
		t.Errorf("status after a rolled-back batch = %q, want running", s)
	}
	r.Cache().Wait()
	err := tx(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := status(t, q, id); s != "failed" {
		t.Errorf("status after the transaction's batch committed = %q, want failed (not invalidated after COMMIT)", s)
	}
	idle(t, r)
}

// TestDBBatchFailure checks a hand-written batch through DB() reports a
// failure as Queries' batches do: the failed statement gets the
// translated error, the next ErrBatchAborted (pgx repeats the failure for
// it), Close the failure; and its connection goes back to the pool.
func TestDBBatchFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test})
	if _, err := r.Queries().CreateUser(ctx, gen.CreateUserParams{Email: "db@example.com", Name: "D"}); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.Queue("INSERT INTO users (email, name) VALUES ('db@example.com', 'again')")
	b.Queue("SELECT 1")
	res := r.DB().SendBatch(ctx, b)
	_, err1 := res.Exec()
	_, err2 := res.Exec()
	var ce *ConflictError
	if !errors.As(err1, &ce) || !errors.Is(err2, ErrBatchAborted) || errors.As(err2, &ce) {
		t.Errorf("DB batch results = %v, %v; want a *ConflictError, then ErrBatchAborted", err1, err2)
	}
	if err := res.Close(); !errors.As(err, &ce) {
		t.Errorf("Close = %v, want the *ConflictError", err)
	}
	idle(t, r)
}

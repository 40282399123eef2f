package txn_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

// fastRetries keeps the tests quick.
var fastRetries = &txn.Options{BaseBackoff: time.Microsecond, MaxBackoff: time.Microsecond}

func TestMain(m *testing.M) { dbtest.Main(m) }

// setup returns two pools on a fresh database: one for the code under test
// and one for the test's own checks and fault injection.
func setup(t *testing.T) (db, admin *pgxpool.Pool) {
	t.Helper()
	url := dbtest.URL(t)
	open := func() *pgxpool.Pool {
		p, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatalf("open pool: %v", err)
		}
		t.Cleanup(p.Close)
		return p
	}
	return open(), open()
}

// makeRun builds a valid run with n results and m metrics.
func makeRun(id uuid.UUID, n, m int) txn.Run {
	r := txn.Run{ID: id, Name: "run-" + id.String()[:8], Model: "model-ü", Dataset: "ds", Status: txn.StatusCompleted,
		Config: []byte(`{"temperature": 0.2, "tags": ["a", "b"]}`)}
	for i := range n {
		res := txn.Result{
			CaseID: fmt.Sprintf("case-%06d", i), Input: fmt.Sprintf("question %d: ¿qué? 日本", i), Expected: "42",
			Output: "42", Score: float64(i%100) / 100, Passed: i%3 != 0, LatencyMs: int32(i % 500),
			PromptTokens: int32(i % 50), CompletionTokens: int32(i % 7),
		}
		switch i % 4 {
		case 1:
			res.Error = ptr("")
		case 2:
			res.Error = ptr("timeout after 30s\nstack…")
		}
		r.Results = append(r.Results, res)
	}
	for i := range m {
		r.Metrics = append(r.Metrics, txn.Metric{Name: fmt.Sprintf("metric_%03d", i), Value: math.Pi * float64(i)})
	}
	return r
}

type tableCounts struct{ Runs, Results, Metrics, Summaries int }

// countAll counts every row of the three tables and of the stored
// summaries, so that a duplicate run under another id, or a summary left by
// a rolled-back recording, would show.
func countAll(t *testing.T, admin *pgxpool.Pool) tableCounts {
	t.Helper()
	var c tableCounts
	err := admin.QueryRow(context.WithoutCancel(t.Context()),
		`SELECT (SELECT count(*) FROM eval_runs), (SELECT count(*) FROM eval_results), (SELECT count(*) FROM eval_metrics),
			(SELECT count(*) FROM eval_run_summaries)`).
		Scan(&c.Runs, &c.Results, &c.Metrics, &c.Summaries)
	if err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return c
}

func wantCounts(t *testing.T, admin *pgxpool.Pool, want tableCounts) {
	t.Helper()
	if diff := cmp.Diff(want, countAll(t, admin)); diff != "" {
		t.Errorf("rows in eval_runs/eval_results/eval_metrics/eval_run_summaries mismatch (-want +got):\n%s", diff)
	}
}

// readBack loads a stored run's results and metrics in the input's shape.
func readBack(t *testing.T, admin *pgxpool.Pool, id uuid.UUID) ([]txn.Result, []txn.Metric) {
	t.Helper()
	q := gen.New(admin)
	rows, err := q.ListEvalResults(t.Context(), gen.ListEvalResultsParams{RunID: id, RowLimit: math.MaxInt32})
	if err != nil {
		t.Fatalf("ListEvalResults: %v", err)
	}
	var results []txn.Result
	for _, r := range rows {
		results = append(results, txn.Result{CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Error: r.Error})
	}
	ms, err := q.ListEvalMetrics(t.Context(), id)
	if err != nil {
		t.Fatalf("ListEvalMetrics: %v", err)
	}
	var metrics []txn.Metric
	for _, m := range ms {
		metrics = append(metrics, txn.Metric{Name: m.Name, Value: m.Value})
	}
	return results, metrics
}

func TestIntegrationRecordEvalRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		n         int
		threshold int
	}{
		{"Batch", 50, -1},
		{"Copy", 3000, 1},
		{"NoResults", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, admin := setup(t)
			run := makeRun(uuid.Nil, tc.n, 3) // id generated
			opts := &txn.Options{CopyThreshold: tc.threshold}
			rec, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, opts)
			if err != nil {
				t.Fatalf("RecordEvalRun() = %v", err)
			}
			if rec.Run.ID.Version() != 7 || rec.Results != tc.n || rec.Metrics != 3 || rec.AlreadyRecorded {
				t.Errorf("RecordEvalRun() = %+v, want a UUIDv7 run with %d results, 3 metrics, new", rec, tc.n)
			}
			if rec.Run.FinishedAt == nil || rec.Run.FinishedAt.Before(rec.Run.StartedAt) {
				t.Errorf("completed run got started_at %v, finished_at %v", rec.Run.StartedAt, rec.Run.FinishedAt)
			}
			results, metrics := readBack(t, admin, rec.Run.ID)
			if diff := cmp.Diff(run.Results, results); diff != "" {
				t.Errorf("stored results mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(run.Metrics, metrics); diff != "" {
				t.Errorf("stored metrics mismatch (-want +got):\n%s", diff)
			}

			// Recording it again (defaults left to default) finds it.
			run.ID = rec.Run.ID
			again, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, opts)
			if err != nil || !again.AlreadyRecorded || again.Run.ID != rec.Run.ID || again.Results != tc.n {
				t.Errorf("second RecordEvalRun() = %+v, %v; want the same run, AlreadyRecorded", again, err)
			}
			// Different content under the same id is an error.
			run.Metrics[2].Value++
			if _, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, opts); !errors.Is(err, txn.ErrRunConflict) {
				t.Errorf("RecordEvalRun(changed metric) = %v, want ErrRunConflict", err)
			}
			wantCounts(t, admin, tableCounts{1, tc.n, 3, 1})
		})
	}
}

func TestIntegrationRunningStatus(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	run := makeRun(uuid.Nil, 2, 0)
	run.Status = txn.StatusRunning
	rec, err := txn.RecordEvalRun(t.Context(), db, run)
	if err != nil || rec.Run.FinishedAt != nil || rec.Run.Status != txn.StatusRunning {
		t.Fatalf("RecordEvalRun(running) = %+v, %v; want a running run without finished_at", rec, err)
	}
}

// faultDB wraps a pool; its transactions report their backend pid and let a
// test act on COPY rows and on COMMIT.
type faultDB struct {
	*pgxpool.Pool
	// onRow, if set, is called before COPY row i is sent, with the backend pid.
	onRow func(ctx context.Context, pid uint32, i int)
	// commit, if set, replaces Commit.
	commit func(ctx context.Context, tx pgx.Tx) error
	begins atomic.Int32
}

func (f *faultDB) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := f.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	f.begins.Add(1)
	return &faultTx{Tx: tx, f: f}, nil
}

type faultTx struct {
	pgx.Tx
	f *faultDB
}

func (t *faultTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if t.f.onRow == nil {
		return t.Tx.CopyFrom(ctx, table, cols, src)
	}
	pid := t.Tx.Conn().PgConn().PID()
	return t.Tx.CopyFrom(ctx, table, cols, &hookedSource{CopyFromSource: src, hook: func(i int) { t.f.onRow(ctx, pid, i) }})
}

func (t *faultTx) Commit(ctx context.Context) error {
	if t.f.commit != nil {
		return t.f.commit(ctx, t.Tx)
	}
	return t.Tx.Commit(ctx)
}

type hookedSource struct {
	pgx.CopyFromSource
	hook func(i int)
	i    int
}

func (s *hookedSource) Next() bool {
	if !s.CopyFromSource.Next() {
		return false
	}
	s.hook(s.i)
	s.i++
	return true
}

// terminate kills a backend from another connection and waits until it is gone.
func terminate(t *testing.T, admin *pgxpool.Pool, pid uint32) {
	ctx := context.WithoutCancel(t.Context())
	var ok bool
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", int32(pid)).Scan(&ok); err != nil || !ok {
		t.Errorf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
}

func TestIntegrationBackendTerminatedMidCopy(t *testing.T) {
	t.Parallel()
	const n = 20_000
	for _, tc := range []struct {
		name     string
		attempts int
		want     tableCounts
	}{
		{"RetriedRecordsOnce", 3, tableCounts{1, n, 2, 1}},
		{"NotRetriedLeavesNothing", 1, tableCounts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, admin := setup(t)
			var killed atomic.Bool
			db := &faultDB{Pool: pool, onRow: func(ctx context.Context, pid uint32, i int) {
				if i == n/2 && killed.CompareAndSwap(false, true) {
					terminate(t, admin, pid)
				}
			}}
			run := makeRun(uuid.Nil, n, 2)
			opts := *fastRetries
			opts.MaxAttempts, opts.CopyThreshold = tc.attempts, 1
			_, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, &opts)
			if tc.attempts == 1 && err == nil {
				t.Errorf("RecordEvalRun() = nil, want the connection error")
			}
			if tc.attempts > 1 && err != nil {
				t.Errorf("RecordEvalRun() = %v, want success on retry", err)
			}
			if !killed.Load() {
				t.Fatal("the backend was never terminated")
			}
			wantCounts(t, admin, tc.want)
		})
	}
}

// TestIntegrationBackendTerminatedInDo kills the backend between two
// statements of fn: Do retries and fn's second run writes everything once.
func TestIntegrationBackendTerminatedInDo(t *testing.T) {
	t.Parallel()
	db, admin := setup(t)
	id := uuid.Must(uuid.NewV7())
	var calls int
	err := txn.Do(t.Context(), db, fastRetries, func(ctx context.Context, tx *txn.Tx) error {
		calls++
		if _, err := tx.InsertEvalRun(ctx, gen.InsertEvalRunParams{ID: id, Name: "n", Model: "m", Dataset: "d",
			Status: txn.StatusRunning, Config: []byte("{}"), StartedAt: time.Now()}); err != nil {
			return err
		}
		for chunk := range 4 {
			if chunk == 2 && calls == 1 {
				terminate(t, admin, tx.Raw().Conn().PgConn().PID())
			}
			p := gen.InsertEvalResultsUnnestParams{RunID: id}
			for i := range 100 {
				p.CaseIds = append(p.CaseIds, fmt.Sprintf("c%d-%d", chunk, i))
				p.Inputs, p.Expecteds, p.Outputs = append(p.Inputs, ""), append(p.Expecteds, ""), append(p.Outputs, "")
				p.Scores, p.Passeds = append(p.Scores, 1), append(p.Passeds, true)
				p.LatenciesMs, p.PromptTokens, p.CompletionTokens = append(p.LatenciesMs, 1), append(p.PromptTokens, 1), append(p.CompletionTokens, 1)
				p.ErrorTexts = append(p.ErrorTexts, "")
			}
			if _, err := tx.InsertEvalResultsUnnest(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Do() = %v after %d calls, want success after 2", err, calls)
	}
	wantCounts(t, admin, tableCounts{1, 400, 0, 0}) // written by Do, not RecordEvalRun: no summary
}

func TestIntegrationConstraintFailsOnLastMetric(t *testing.T) {
	t.Parallel()
	for _, threshold := range []int{-1, 1} {
		t.Run(fmt.Sprintf("CopyThreshold=%d", threshold), func(t *testing.T) {
			t.Parallel()
			db, admin := setup(t)
			// A rule validation cannot know about, so the database rejects the last metric.
			if _, err := admin.Exec(t.Context(), `ALTER TABLE eval_metrics ADD CONSTRAINT test_no_poison CHECK (name <> 'poison')`); err != nil {
				t.Fatal(err)
			}
			run := makeRun(uuid.Nil, 500, 5)
			run.Metrics = append(run.Metrics, txn.Metric{Name: "poison", Value: 1})
			_, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, &txn.Options{CopyThreshold: threshold})
			if err == nil || !strings.Contains(err.Error(), "test_no_poison") {
				t.Errorf("RecordEvalRun() = %v, want the check violation", err)
			}
			wantCounts(t, admin, tableCounts{})
		})
	}
}

func TestIntegrationContextCancelledHalfway(t *testing.T) {
	t.Parallel()
	pool, admin := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	db := &faultDB{Pool: pool, onRow: func(_ context.Context, _ uint32, i int) {
		if i == 5000 {
			cancel()
			time.Sleep(20 * time.Millisecond) // let pgx notice while COPY is still streaming
		}
	}}
	_, err := txn.RecordEvalRunWithOptions(ctx, db, makeRun(uuid.Nil, 10_000, 2), &txn.Options{CopyThreshold: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RecordEvalRun() = %v, want context.Canceled", err)
	}
	if n := db.begins.Load(); n != 1 {
		t.Errorf("%d transactions begun, want 1 (no retry after cancellation)", n)
	}
	wantCounts(t, admin, tableCounts{})
}

// lostCommit is a Commit that loses the connection's answer: after the real
// COMMIT when committed is true, instead of it otherwise.
func lostCommit(committed bool, calls *atomic.Int32) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		if calls.Add(1) > 1 {
			return tx.Commit(ctx)
		}
		if committed {
			if err := tx.Commit(ctx); err != nil {
				return err
			}
		} else if err := tx.Rollback(ctx); err != nil {
			return err
		}
		return &net.OpError{Op: "read", Net: "unix", Err: syscall.ECONNRESET}
	}
}

func TestIntegrationConnectionLostDuringCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		committed   bool
		n           int
		wantAlready bool
	}{
		{"CommittedBatch", true, 100, true},
		{"CommittedCopy", true, 5000, true},
		{"NotCommitted", false, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, admin := setup(t)
			var commits atomic.Int32
			db := &faultDB{Pool: pool, commit: lostCommit(tc.committed, &commits)}
			run := makeRun(uuid.Nil, tc.n, 4) // id left to RecordEvalRun: it must reuse it on retry
			rec, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, fastRetries)
			if err != nil {
				t.Fatalf("RecordEvalRun() = %v", err)
			}
			if rec.AlreadyRecorded != tc.wantAlready || rec.Results != tc.n || rec.Metrics != 4 {
				t.Errorf("RecordEvalRun() = %+v, want AlreadyRecorded=%v with %d results and 4 metrics", rec, tc.wantAlready, tc.n)
			}
			wantCounts(t, admin, tableCounts{1, tc.n, 4, 1})
		})
	}
}

func TestIntegrationDoDoesNotRetryUnknownCommit(t *testing.T) {
	t.Parallel()
	pool, admin := setup(t)
	var commits atomic.Int32
	db := &faultDB{Pool: pool, commit: lostCommit(true, &commits)}
	calls := 0
	err := txn.Do(t.Context(), db, fastRetries, func(ctx context.Context, tx *txn.Tx) error {
		calls++
		_, err := tx.InsertEvalRun(ctx, gen.InsertEvalRunParams{ID: uuid.Must(uuid.NewV7()), Name: "n", Model: "m",
			Dataset: "d", Status: txn.StatusRunning, Config: []byte("{}"), StartedAt: time.Now()})
		return err
	})
	if !errors.Is(err, txn.ErrCommitUnknown) || calls != 1 {
		t.Errorf("Do() = %v after %d calls, want ErrCommitUnknown after 1", err, calls)
	}
	wantCounts(t, admin, tableCounts{1, 0, 0, 0})
}

func TestIntegrationConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers = 8
	t.Run("DifferentRuns", func(t *testing.T) {
		t.Parallel()
		db, admin := setup(t)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				_, errs[w] = txn.RecordEvalRunWithOptions(t.Context(), db, makeRun(uuid.Nil, 300, 3), &txn.Options{CopyThreshold: 1 + 200*(w%2)})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("RecordEvalRun(): %v", err)
		}
		wantCounts(t, admin, tableCounts{writers, writers * 300, writers * 3, writers})
	})
	t.Run("SameRun", func(t *testing.T) {
		t.Parallel()
		db, admin := setup(t)
		run := makeRun(uuid.Must(uuid.NewV7()), 300, 3)
		var fresh, already atomic.Int32
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				rec, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, &txn.Options{CopyThreshold: 1 + 200*(w%2)})
				errs[w] = err
				if err == nil && rec.AlreadyRecorded {
					already.Add(1)
				} else if err == nil {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("RecordEvalRun(): %v", err)
		}
		if fresh.Load() != 1 || already.Load() != writers-1 {
			t.Errorf("%d writers recorded the run and %d found it, want 1 and %d", fresh.Load(), already.Load(), writers-1)
		}
		wantCounts(t, admin, tableCounts{1, 300, 3, 1})
	})
	t.Run("SameRunDifferentContent", func(t *testing.T) {
		t.Parallel()
		db, admin := setup(t)
		id := uuid.Must(uuid.NewV7())
		var conflicts atomic.Int32
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				run := makeRun(id, 200, 2)
				run.Metrics[1].Value = float64(w % 2)
				_, err := txn.RecordEvalRun(t.Context(), db, run)
				if errors.Is(err, txn.ErrRunConflict) {
					conflicts.Add(1)
					err = nil
				}
				errs[w] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("RecordEvalRun(): %v", err)
		}
		if conflicts.Load() != writers/2 {
			t.Errorf("%d writers got ErrRunConflict, want %d (those whose content differs from the winner's)", conflicts.Load(), writers/2)
		}
		wantCounts(t, admin, tableCounts{1, 200, 2, 1})
	})
}

// TestIntegrationSerializationFailureRetried runs two serializable
// transactions that read what the other writes; one must fail with 40001
// and be retried.
func TestIntegrationSerializationFailureRetried(t *testing.T) {
	t.Parallel()
	db, admin := setup(t)
	id := uuid.Must(uuid.NewV7())
	if _, err := gen.New(admin).InsertEvalRun(t.Context(), gen.InsertEvalRunParams{ID: id, Name: "n", Model: "m", Dataset: "d",
		Status: txn.StatusRunning, Config: []byte("{}"), StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var maxAttempt atomic.Int32
	ready := make(chan struct{}, 2)
	proceed := make(chan struct{})
	opts := *fastRetries
	opts.Isolation = pgx.Serializable
	writeSkew := func(mine, other string) error {
		return txn.Do(t.Context(), db, &opts, func(ctx context.Context, tx *txn.Tx) error {
			maxAttempt.Store(max(maxAttempt.Load(), int32(tx.Attempt())))
			var n int
			if err := tx.Raw().QueryRow(ctx, `SELECT count(*) FROM eval_metrics WHERE run_id = $1 AND name = $2`, id, other).Scan(&n); err != nil {
				return err
			}
			if tx.Attempt() == 1 {
				ready <- struct{}{}
				<-proceed
			}
			if n == 0 {
				_, err := tx.Raw().Exec(ctx, `INSERT INTO eval_metrics (run_id, name, value) VALUES ($1, $2, 1)`, id, mine)
				return err
			}
			return nil
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = writeSkew("a", "b") })
	wg.Go(func() { errs[1] = writeSkew("b", "a") })
	<-ready
	<-ready
	close(proceed)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Do(): %v", err)
	}
	if maxAttempt.Load() < 2 {
		t.Errorf("no transaction was retried; want one retried after a serialization failure")
	}
	wantCounts(t, admin, tableCounts{1, 0, 1, 0}) // the retry saw the other's row and wrote nothing
}

func TestIntegrationNestedDoIsSavepoint(t *testing.T) {
	t.Parallel()
	db, admin := setup(t)
	err := txn.Do(t.Context(), db, nil, func(ctx context.Context, outer *txn.Tx) error {
		_, err := txn.RecordEvalRun(ctx, outer.Raw(), makeRun(uuid.Nil, 3, 1))
		if err != nil {
			return err
		}
		inner := txn.Do(ctx, outer.Raw(), nil, func(ctx context.Context, tx *txn.Tx) error {
			if _, err := txn.RecordEvalRun(ctx, tx.Raw(), makeRun(uuid.Nil, 5, 1)); err != nil {
				return err
			}
			return errors.New("discard the inner run")
		})
		if inner == nil {
			return errors.New("inner Do succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do() = %v", err)
	}
	wantCounts(t, admin, tableCounts{1, 3, 1, 1}) // the inner run and its summary rolled back
}

func TestIntegrationTimeoutAndMaxWait(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// Timeout: a statement that outlives it is cancelled and rolled back.
	opts := &txn.Options{Timeout: 100 * time.Millisecond}
	err = txn.Do(t.Context(), pool, opts, func(ctx context.Context, tx *txn.Tx) error {
		_, err := tx.Raw().Exec(ctx, "SELECT pg_sleep(10)")
		return err
	})
	if !errors.Is(err, txn.ErrTimeout) {
		t.Errorf("Do(pg_sleep(10)) = %v, want ErrTimeout", err)
	}

	// MaxWait: the only connection is busy for longer than MaxWait.
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = txn.Do(t.Context(), pool, &txn.Options{MaxWait: 50 * time.Millisecond}, func(ctx context.Context, tx *txn.Tx) error {
		t.Error("fn ran without a connection")
		return nil
	})
	conn.Release()
	if !errors.Is(err, dberr.ErrPoolTimeout) {
		t.Errorf("Do(no free connection) = %v, want ErrPoolTimeout", err)
	}

	// The pool is usable afterwards.
	if _, err := txn.RecordEvalRun(t.Context(), pool, makeRun(uuid.Nil, 5, 1)); err != nil {
		t.Errorf("RecordEvalRun() after the timeouts = %v", err)
	}
}

// TestIntegrationExecModes records runs under every exec mode evaldb allows
// (repo uses QueryExecModeExec behind PgBouncer): the batch's argument types
// must be unambiguous without a Describe.
func TestIntegrationExecModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnConfig.DefaultQueryExecMode = mode
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			for _, threshold := range []int{-1, 1} {
				run := makeRun(uuid.Nil, 20, 2)
				rec, err := txn.RecordEvalRunWithOptions(t.Context(), pool, run, &txn.Options{CopyThreshold: threshold})
				if err != nil {
					t.Fatalf("RecordEvalRun(CopyThreshold=%d) = %v", threshold, err)
				}
				run.ID = rec.Run.ID
				again, err := txn.RecordEvalRunWithOptions(t.Context(), pool, run, &txn.Options{CopyThreshold: threshold})
				if err != nil || !again.AlreadyRecorded {
					t.Errorf("second RecordEvalRun(CopyThreshold=%d) = %+v, %v; want AlreadyRecorded", threshold, again, err)
				}
				results, _ := readBack(t, pool, rec.Run.ID)
				if diff := cmp.Diff(run.Results, results); diff != "" {
					t.Errorf("stored results mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

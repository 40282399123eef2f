package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/schema"
	"github.com/aah/evaldb/txn"
)

// TestServerRestartMidLoad restarts a private PostgreSQL (fast shutdown,
// like `pg_ctl restart -m fast`) while writers record runs and readers
// query: the pool recovers by itself, each run is wholly present or
// absent, every acknowledged run is present, and a retry of each failed
// call with the same run id records it exactly once.
func TestServerRestartMidLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatalf("start a private cluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	plain := c.URL("postgres")
	if _, err := schema.Migrate(ctx, plain); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var l leaks
	r := openRepo(t, ctx, withPassword(t, plain, "connection_limit=10&pool_timeout=5&connect_timeout=2"), &l)
	q := r.Queries()

	writers, readers := pick(30, 100), pick(10, 50)
	restarts := pick(1, 5)
	type outcome struct {
		run txn.Run
		err error
	}
	var (
		mu        sync.Mutex
		outcomes  []outcome
		classes   = map[string]int{}
		afterOK   atomic.Int64 // successes after the last restart finished
		stop      atomic.Bool
		restarted atomic.Bool
	)
	classify := func(err error) string {
		switch {
		case errors.Is(err, txn.ErrCommitUnknown):
			return "ErrCommitUnknown"
		case errors.Is(err, dberr.ErrPoolTimeout):
			return "ErrPoolTimeout"
		case errors.Is(err, dberr.ErrUnreachable):
			return "ErrUnreachable"
		case errors.Is(err, dberr.ErrConnClosed):
			return "ErrConnClosed"
		default:
			return "other: " + err.Error()
		}
	}
	note := func(err error) {
		l.scanErr("error during restart", err)
		if err != nil {
			mu.Lock()
			classes[classify(err)]++
			mu.Unlock()
		} else if restarted.Load() {
			afterOK.Add(1)
		}
	}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				run := makeRun(uuid.New(), 1+i%40*5)
				_, err := r.RecordEvalRun(ctx, run, &txn.Options{MaxAttempts: 1})
				note(err)
				mu.Lock()
				outcomes = append(outcomes, outcome{run, err})
				mu.Unlock()
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for !stop.Load() {
				_, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 5})
				r.Cache().InvalidateAll()
				note(err)
			}
		})
	}
	for i := range restarts {
		time.Sleep(500 * time.Millisecond)
		if err := c.Restart(ctx); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("restart %d: %v", i, err)
		}
	}
	restarted.Store(true)
	// The pool recovers by itself: successes come back without any action.
	recovered := waitFor(60*time.Second, func() bool { return afterOK.Load() >= int64(writers) })
	stop.Store(true)
	wg.Wait()
	if !recovered {
		t.Fatalf("after the restart only %d calls succeeded within 60 s: the pool did not recover", afterOK.Load())
	}

	check := plainPool(t, plain)
	var acked, failed, lost int
	for _, o := range outcomes {
		got, err := storedRun(ctx, check, o.run.ID)
		if err != nil {
			t.Fatal(err)
		}
		full := stored{1, len(o.run.Results), len(o.run.Metrics)}
		switch {
		case got != full && got != (stored{}):
			t.Errorf("run %s is partly stored: %+v, want %+v or nothing", o.run.ID, got, full)
		case o.err == nil && got != full:
			t.Errorf("run %s was acknowledged but is not stored (%+v)", o.run.ID, got)
		}
		if o.err == nil {
			acked++
			continue
		}
		failed++
		if got == (stored{}) {
			lost++
		}
		// Retry with the same id: recorded exactly once.
		if _, err := r.RecordEvalRun(ctx, o.run, nil); err != nil {
			t.Errorf("retry of run %s: %v", o.run.ID, err)
		}
	}
	want := stored{}
	for _, o := range outcomes {
		want.Runs, want.Results, want.Metrics = want.Runs+1, want.Results+len(o.run.Results), want.Metrics+len(o.run.Metrics)
		if got, _ := storedRun(ctx, check, o.run.ID); got != (stored{1, len(o.run.Results), len(o.run.Metrics)}) {
			t.Errorf("after the retries run %s is stored as %+v", o.run.ID, got)
		}
	}
	if got, err := storedAll(ctx, check); err != nil || got != want {
		t.Errorf("tables hold %+v (%v), want every run exactly once: %+v", got, err, want)
	}
	if acked == 0 || failed == 0 {
		t.Errorf("%d runs acknowledged and %d failed: the restart did not land in the middle of the load", acked, failed)
	}
	keys := make([]string, 0, len(classes))
	for k := range classes {
		keys = append(keys, fmt.Sprintf("%s=%d", k, classes[k]))
	}
	sort.Strings(keys)
	scanMetrics(t, r, &l)
	t.Logf("FIGURE restart: %d restarts under %d writers + %d readers: %d runs, %d acknowledged, %d failed (%d of them absent, %d committed although the caller got an error), "+
		"all retried exactly once; errors by class: %v", restarts, writers, readers, len(outcomes), acked, failed, lost, failed-lost, keys)
	l.check(t)
}

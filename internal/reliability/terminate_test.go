package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
)

// TestTerminateAllConnections kills every application connection at once
// with pg_terminate_backend (what an administrator or a failover does):
// the pool recovers by itself. Once the dead connections have been idle
// past pgxpool's one-second ping threshold, every next statement succeeds;
// before that, at most one statement per killed connection fails, with
// repo.ErrConnClosed, and the burst after that succeeds entirely.
func TestTerminateAllConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	db := dbName(t, base)
	admin := adminPool(t, dbtest.GetServer(t).AdminURL)
	const limit = 10
	r := openRepo(t, ctx, withPassword(t, base, fmt.Sprintf("connection_limit=%d&pool_timeout=20", limit)), &l)
	q := r.Queries()

	seed := uuid.New()
	if _, err := r.RecordEvalRun(ctx, makeRun(seed, 20), nil); err != nil {
		t.Fatalf("seed run: %v", err)
	}
	fill := func() {
		t.Helper()
		var wg sync.WaitGroup
		for range limit {
			wg.Go(func() {
				if _, err := r.DB().Exec(ctx, "SELECT pg_sleep($1)", 0.2); err != nil {
					t.Errorf("fill the pool: %v", err)
				}
			})
		}
		wg.Wait()
	}
	// burst runs 2×limit mixed statements at once and returns how many
	// failed, in all and among the uncached statements; every failure must
	// be ErrConnClosed. (Cached reads of the same key share one load, so
	// one dead connection can fail several of them.)
	burst := func(t *testing.T, round int, idle time.Duration, which string) (int, int) {
		var wg sync.WaitGroup
		var failed, uncached, readsFailed atomic.Int64
		defer func() { t.Logf("round %d %s burst: %d reads failed", round, which, readsFailed.Load()) }()
		for i := range 2 * limit {
			wg.Go(func() {
				var err error
				switch i % 4 {
				case 0:
					_, err = q.GetEvalRun(ctx, seed)
				case 1:
					_, err = q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: seed, RowLimit: 10})
				case 2:
					_, err = r.RecordEvalRun(ctx, makeRun(uuid.New(), 5), nil)
				case 3:
					_, err = r.DB().Exec(ctx, "SELECT pg_sleep($1)", 0.01)
				}
				l.scanErr("query after terminate", err)
				if err != nil {
					failed.Add(1)
					if i%4 >= 2 {
						uncached.Add(1)
					} else {
						readsFailed.Add(1)
					}
					if !errors.Is(err, repo.ErrConnClosed) {
						t.Errorf("round %d (%s burst, dead connections idle %s): query %d: %v, want nil or repo.ErrConnClosed", round, which, idle, i, err)
					}
				}
			})
		}
		wg.Wait()
		r.Cache().InvalidateAll() // reads must reach the server every time
		return int(failed.Load()), int(uncached.Load())
	}
	var figures []string
	for round, idle := range pick([]time.Duration{0, 1500 * time.Millisecond},
		[]time.Duration{0, 0, 100 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second}) {
		fill()
		var killed int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, db).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed < limit {
			t.Fatalf("round %d: terminated %d backends, want the pool's %d", round, killed, limit)
		}
		time.Sleep(idle) // how long the dead connections sit idle in the pool
		failed, uncachedFailed := burst(t, round, idle, "first")
		// pgxpool pings a connection idle for more than a second before
		// handing it out; a younger one is handed out dead, and the first
		// statement on it fails with ErrConnClosed (not retried: it may be
		// a write). That is a known gap (RELIABILITY.md); what must hold is
		// that only those fail, at most one per killed connection.
		if idle > time.Second && failed > 0 {
			t.Errorf("round %d: %d queries failed although the dead connections sat idle %s (pgxpool pings them)", round, failed, idle)
		}
		if uncachedFailed > killed {
			t.Errorf("round %d: %d uncached statements failed, more than the %d killed connections", round, uncachedFailed, killed)
		}
		figures = append(figures, fmt.Sprintf("idle %s: %d of %d failed", idle, failed, 2*limit))
		if again, _ := burst(t, round, idle, "second"); again > 0 {
			t.Errorf("round %d: %d queries of the second burst failed; the pool should hold only fresh connections by now", round, again)
		}
	}
	t.Logf("FIGURE first statements after pg_terminate_backend of every connection: %s", strings.Join(figures, "; "))
	l.check(t)
}

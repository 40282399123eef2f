package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// maxSampler samples the server's backends on a database and the pool's
// total every 10 ms until stopped, and keeps the maxima.
type maxSampler struct {
	server, pool atomic.Int64
	samples      atomic.Int64
	detail       atomic.Pointer[string]
	stop         chan struct{}
	done         chan struct{}
}

func sample(ctx context.Context, t *testing.T, admin interface{}, db string, r *repo.Repo) *maxSampler {
	t.Helper()
	s := &maxSampler{stop: make(chan struct{}), done: make(chan struct{})}
	ap := adminPool(t, dbtest.GetServer(t).AdminURL)
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if total, _, err := backends(ctx, ap, db); err == nil {
				s.samples.Add(1)
				if total > int(r.PoolStats().MaxConns) && s.detail.Load() == nil {
					rows, _ := ap.Query(ctx, `SELECT pid, coalesce(application_name,''), state, backend_start, left(query, 60) FROM pg_stat_activity WHERE datname = $1`, db)
					var out []string
					for rows.Next() {
						v, _ := rows.Values()
						out = append(out, fmt.Sprint(v))
					}
					rows.Close()
					d := strings.Join(out, "\n")
					s.detail.Store(&d)
				}
				if int64(total) > s.server.Load() {
					s.server.Store(int64(total))
				}
			}
			if n := int64(r.PoolStats().TotalConns); n > s.pool.Load() {
				s.pool.Store(n)
			}
		}
	}()
	return s
}

func (s *maxSampler) finish() { close(s.stop); <-s.done }

// TestLoad runs many more goroutines than connections (hundreds on a pool
// of 10) through a mixed workload of the real queries and RecordEvalRun
// for a bounded time, with a pool timeout long enough for every waiter:
// nothing fails, every acknowledged run is present and complete, nothing
// else was written, and pg_stat_activity never shows more connections
// than the limit.
func TestLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	db := dbName(t, base)
	const limit = 10
	r := openRepo(t, ctx, withPassword(t, base, fmt.Sprintf("connection_limit=%d&pool_timeout=60", limit)), &l)
	q := r.Queries()
	seed := uuid.New()
	if _, err := r.RecordEvalRun(ctx, makeRun(seed, 100), nil); err != nil {
		t.Fatal(err)
	}
	workers, runFor := pick(200, 500), pick(2*time.Second, 60*time.Second)

	type ack struct {
		id uuid.UUID
		n  int
	}
	var (
		mu    sync.Mutex
		acked = []ack{{seed, 100}}
		ops   atomic.Int64
		fails atomic.Int64
	)
	s := sample(ctx, t, nil, db, r)
	deadline := time.Now().Add(runFor)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 8))
			for time.Now().Before(deadline) {
				var err error
				switch k := rng.IntN(10); {
				case k < 3:
					id, n := uuid.New(), 1+rng.IntN(60)
					// txn's MaxWait (default 2 s, Prisma's maxWait) bounds
					// the wait for BEGIN separately from pool_timeout; match it.
					_, err = r.RecordEvalRun(ctx, makeRun(id, n), &txn.Options{MaxWait: time.Minute})
					if err == nil {
						mu.Lock()
						acked = append(acked, ack{id, n})
						mu.Unlock()
					}
				case k < 5:
					_, err = q.GetEvalRunSummary(ctx, seed)
				case k < 7:
					_, err = q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: seed, AfterCaseID: fmt.Sprintf("case-%05d", rng.IntN(90)), RowLimit: 10})
				case k < 8:
					_, err = q.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 20})
				default:
					// Uncached: always a round trip.
					_, err = r.DB().Exec(ctx, "SELECT count(*) FROM eval_results WHERE run_id = $1", seed)
				}
				ops.Add(1)
				l.scanErr("load error", err)
				if err != nil {
					if fails.Add(1) <= 5 {
						t.Errorf("with a 60 s pool timeout nothing may fail, got: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	s.finish()

	check := plainPool(t, base)
	want := stored{}
	for _, a := range acked {
		got, err := storedRun(ctx, check, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if got != (stored{1, a.n, 3}) {
			t.Errorf("acknowledged run %s: stored %+v, want {1 %d 3}", a.id, got, a.n)
		}
		want.Runs, want.Results, want.Metrics = want.Runs+1, want.Results+a.n, want.Metrics+3
	}
	if got, err := storedAll(ctx, check); err != nil || got != want {
		t.Errorf("tables hold %+v (%v), want exactly the acknowledged runs %+v", got, err, want)
	}
	if m := s.server.Load(); m > limit {
		t.Errorf("pg_stat_activity showed %d connections on the database, over the limit of %d", m, limit)
	}
	if m := s.pool.Load(); m > limit {
		t.Errorf("the pool held %d connections, over its limit of %d", m, limit)
	}
	if d := s.detail.Load(); d != nil {
		t.Logf("over the limit:\n%s", *d)
	}
	if s.samples.Load() == 0 {
		t.Error("pg_stat_activity was never sampled")
	}
	ps := r.PoolStats()
	scanMetrics(t, r, &l)
	t.Logf("FIGURE load: %d goroutines on %d connections for %s: %d operations (%.0f/s), %d runs recorded, %d failures; "+
		"max connections seen in pg_stat_activity %d over %d samples, pool max %d; acquires that waited %d of %d, mean wait %s",
		workers, limit, runFor, ops.Load(), float64(ops.Load())/runFor.Seconds(), len(acked)-1, fails.Load(),
		s.server.Load(), s.samples.Load(), s.pool.Load(), ps.EmptyAcquireCount, ps.AcquireCount,
		(ps.EmptyAcquireWaitTime / time.Duration(max(1, ps.EmptyAcquireCount))).Round(time.Microsecond))
	l.check(t)
}

// TestLoadPoolTimeout makes waiting impossible: ten holders keep all ten
// connections for three pool timeouts while hundreds of goroutines query
// and record runs. The only errors are repo.ErrPoolTimeout, none arrives
// before the pool timeout, no run that failed left a trace, and every
// acknowledged run is complete. How late the timeouts arrive is logged as
// a figure (no timing assertion beyond "not sooner").
func TestLoadPoolTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	db := dbName(t, base)
	const limit = 10
	poolTimeout := 500 * time.Millisecond
	r := openRepo(t, ctx, withPassword(t, base, fmt.Sprintf("connection_limit=%d&pool_timeout=0.5", limit)), &l)
	q := r.Queries()
	workers := pick(100, 400)
	rounds := pick(1, 10)
	hold := 3 * poolTimeout

	var (
		mu       sync.Mutex
		lateness []time.Duration // elapsed - pool timeout, per ErrPoolTimeout
		shared   []time.Duration // the same for cached reads
		acked    = map[uuid.UUID]int{}
		refused  = map[uuid.UUID]bool{}
		other    atomic.Int64
		okOps    atomic.Int64
	)
	s := sample(ctx, t, nil, db, r)
	for round := range rounds {
		// Holders take every connection and keep it for `hold`.
		var holders sync.WaitGroup
		release := make(chan struct{})
		for range limit {
			tx, err := r.DB().Begin(ctx)
			if err != nil {
				t.Fatalf("round %d: holder: %v", round, err)
			}
			holders.Go(func() {
				<-release
				_ = tx.Rollback(context.WithoutCancel(ctx))
			})
		}
		timer := time.AfterFunc(hold, func() { close(release) })
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				start := time.Now()
				var err error
				var id uuid.UUID
				switch w % 3 {
				case 0:
					id = uuid.New()
					_, err = r.RecordEvalRun(ctx, makeRun(id, 10), nil)
				case 1:
					_, err = q.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 5})
					r.Cache().InvalidateAll()
				default:
					_, err = r.DB().Exec(ctx, "SELECT $1::int", w)
				}
				elapsed := time.Since(start)
				l.scanErr("pool timeout error", err)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					okOps.Add(1)
					if id != uuid.Nil {
						acked[id] = 10
					}
				case errors.Is(err, repo.ErrPoolTimeout) && w%3 == 1:
					// A cached read may join another caller's load
					// (singleflight) and share its pool timeout, which
					// began before this call.
					shared = append(shared, elapsed-poolTimeout)
				case errors.Is(err, repo.ErrPoolTimeout):
					lateness = append(lateness, elapsed-poolTimeout)
					if elapsed < poolTimeout {
						t.Errorf("ErrPoolTimeout after %s, sooner than the pool timeout %s", elapsed, poolTimeout)
					}
					if id != uuid.Nil {
						refused[id] = true
					}
				default:
					if other.Add(1) <= 5 {
						t.Errorf("error other than ErrPoolTimeout: %v", err)
					}
				}
			})
		}
		wg.Wait()
		timer.Stop()
		select {
		case <-release:
		default:
			close(release)
		}
		holders.Wait()
	}
	s.finish()
	if len(lateness) == 0 {
		t.Fatal("no query ran into the pool timeout although every connection was held for 3 pool timeouts")
	}
	check := plainPool(t, base)
	for id, n := range acked {
		if got, _ := storedRun(ctx, check, id); got != (stored{1, n, 3}) {
			t.Errorf("acknowledged run %s: stored %+v, want {1 %d 3}", id, got, n)
		}
	}
	for id := range refused {
		if got, _ := storedRun(ctx, check, id); got != (stored{}) {
			t.Errorf("run %s failed with ErrPoolTimeout but left %+v", id, got)
		}
	}
	if m := s.server.Load(); m > limit {
		t.Errorf("pg_stat_activity showed %d connections, over the limit of %d", m, limit)
	}
	scanMetrics(t, r, &l)
	t.Logf("FIGURE pool timeout %s, %d goroutines × %d rounds on %d held connections: %d ErrPoolTimeout, %d succeeded after waiting; "+
		"arrival after the pool timeout (uncached statements and RecordEvalRun): %s; cached reads (%d, may share a load begun earlier): %s; max connections seen %d",
		poolTimeout, workers, rounds, limit, len(lateness)+len(shared), okOps.Load(), durations(lateness), len(shared), durations(shared), s.server.Load())
	l.check(t)
}

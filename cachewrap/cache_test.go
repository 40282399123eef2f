package cachewrap

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/gen"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func setup(t *testing.T, opts *Options) (*Cache, *fakeQuerier, *clock) {
	t.Helper()
	f := newFake()
	clk := &clock{}
	clk.ns.Store(fakeTime.UnixNano())
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Now = clk.now
	c, err := New(f, &o)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(c.Close)
	return c, f, clk
}

// callZero calls method name of q with a background context and zero
// arguments.
func callZero(q gen.Querier, name string) (any, error) {
	m := reflect.ValueOf(q).MethodByName(name)
	args := []reflect.Value{reflect.ValueOf(context.Background())}
	for i := 1; i < m.Type().NumIn(); i++ {
		args = append(args, reflect.Zero(m.Type().In(i)))
	}
	out := m.Call(args)
	if len(out) == 1 {
		if b, ok := out[0].Interface().(interface{ Close() error }); ok { // a batch: it is over at Close
			return b, b.Close()
		}
	}
	err, _ := out[len(out)-1].Interface().(error)
	if len(out) == 1 { // :exec
		return nil, err
	}
	return out[0].Interface(), err
}

func querierMethods() []string {
	t := reflect.TypeFor[gen.Querier]()
	var names []string
	for i := range t.NumMethod() {
		names = append(names, t.Method(i).Name)
	}
	return names
}

// wantTables lists, by hand from reading queries/*.sql and schema/*.sql as
// of v0.1 and migration 00005 (the stored run summaries), the tables each of evaldb's own queries reads (cached queries
// only) and writes. It is the independent expectation the generator's
// analysis is checked against. A user's schema change may add to what a
// query touches (a trigger, a foreign key with an action, a rule): the
// analysis must find at least these tables and, of the tables listed here,
// no others; tables and queries this list does not know are the generator's
// to derive (tools/cachegen's tests, and TestEveryWriteInvalidatesItsReads
// for the cache honouring them).
var wantTables = map[string]struct{ reads, writes []string }{
	"CountConnectionsByState":    {},
	"CreateStudentProfile":       {writes: []string{"student_profiles"}},
	"CreateUser":                 {writes: []string{"users"}},
	"CreateUsers":                {writes: []string{"users"}},
	"DeleteEvalRun":              {writes: []string{"eval_metrics", "eval_results", "eval_run_summaries", "eval_runs"}}, // ON DELETE CASCADE
	"EvalLeaderboard":            {reads: []string{"eval_results", "eval_runs"}},
	"GetEvalRun":                 {reads: []string{"eval_runs"}},
	"GetEvalRunSummary":          {reads: []string{"eval_results", "eval_run_summaries", "eval_runs"}}, // stored, else live
	"GetEvalRuns":                {},                                                                   // a batch: never cached
	"GetStudentWithMetrics":      {reads: []string{"performance_metrics", "student_profiles"}},
	"GetUser":                    {reads: []string{"users"}},
	"GetUserByEmail":             {reads: []string{"users"}},
	"InsertEvalMetrics":          {writes: []string{"eval_metrics"}},
	"InsertEvalMetricsUnnest":    {writes: []string{"eval_metrics"}},
	"InsertEvalResults":          {writes: []string{"eval_results", "eval_run_summaries"}}, // the trigger forgets summaries
	"InsertEvalResultsUnnest":    {writes: []string{"eval_results", "eval_run_summaries"}},
	"InsertEvalRun":              {writes: []string{"eval_runs"}},
	"InsertEvalRunSummary":       {writes: []string{"eval_run_summaries"}},
	"InsertPerformanceMetrics":   {writes: []string{"performance_metrics"}},
	"ListEvalMetrics":            {reads: []string{"eval_metrics"}},
	"ListEvalMetricsOfRuns":      {}, // a batch: never cached
	"ListEvalResults":            {reads: []string{"eval_results"}},
	"ListEvalRuns":               {reads: []string{"eval_runs"}},
	"ListFailedEvalResults":      {reads: []string{"eval_results"}},
	"ListStudentMetricsInWindow": {reads: []string{"performance_metrics", "student_profiles"}},
	"RecordPerformanceMetric":    {writes: []string{"performance_metrics"}},
	"SetEvalRunStatuses":         {writes: []string{"eval_run_summaries", "eval_runs"}}, // ON UPDATE CASCADE
	"UpdateEvalRunStatus":        {writes: []string{"eval_run_summaries", "eval_runs"}}, // ON UPDATE CASCADE
}

// knownTables are the tables wantTables knows.
func knownTables() map[string]bool {
	m := map[string]bool{}
	for _, w := range wantTables {
		for _, t := range append(append([]string(nil), w.reads...), w.writes...) {
			m[t] = true
		}
	}
	return m
}

// checkTables reports what the generator's tables got lack of want, and
// which of got are tables of known that want does not list.
func checkTables(t *testing.T, what string, want, got []string, known map[string]bool) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s = %v: lacks %s", what, got, w)
		}
	}
	for _, g := range got {
		if known[g] && !slices.Contains(want, g) {
			t.Errorf("%s = %v: has %s, which it does not touch", what, got, g)
		}
	}
}

func TestQueryTables(t *testing.T) {
	t.Parallel()
	known := knownTables()
	checked := 0
	for _, name := range querierMethods() {
		reads, writes, cached, ok := QueryTables(name)
		if !ok {
			t.Fatalf("QueryTables(%q) not found", name)
		}
		want, ok := wantTables[name]
		if !ok {
			continue // a query added after v0.1: see wantTables
		}
		checked++
		if !cached {
			reads = nil // reads of uncached queries do not matter
		}
		checkTables(t, "QueryTables("+name+") reads", want.reads, reads, known)
		checkTables(t, "QueryTables("+name+") writes", want.writes, writes, known)
	}
	if checked == 0 {
		t.Fatal("no query of wantTables is in gen.Querier")
	}
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// TestEveryWriteInvalidatesItsReads proves, for every pair of a write query
// and a cached read, that running the write (directly, or in a transaction
// and then committing) makes the read a miss exactly when the write touches
// a table the read reads: by the generated tables, which TestQueryTables
// checks against the hand-written wantTables.
func TestEveryWriteInvalidatesItsReads(t *testing.T) {
	t.Parallel()
	var reads, writes []string
	for _, name := range querierMethods() {
		_, w, cached, _ := QueryTables(name)
		if cached {
			reads = append(reads, name)
		}
		if len(w) > 0 {
			writes = append(writes, name)
		}
	}
	if len(reads) == 0 || len(writes) == 0 {
		t.Fatalf("found %d reads and %d writes", len(reads), len(writes))
	}
	for _, viaTx := range []bool{false, true} {
		for _, w := range writes {
			c, f, _ := setup(t, nil)
			for _, r := range reads {
				if _, err := callZero(c, r); err != nil {
					t.Fatalf("%s: %v", r, err)
				}
			}
			c.Wait()
			if viaTx {
				txq, commit := c.Tx(f)
				if _, err := callZero(txq, w); err != nil {
					t.Fatalf("%s: %v", w, err)
				}
				for _, r := range reads { // not invalidated before commit
					before := f.count(r)
					if _, err := callZero(c, r); err != nil {
						t.Fatal(err)
					}
					if got := f.count(r) - before; got != 0 {
						t.Errorf("Tx %s before commit: %s ran %d times, want 0 (cached)", w, r, got)
					}
				}
				commit()
			} else if _, err := callZero(c, w); err != nil {
				t.Fatalf("%s: %v", w, err)
			}
			for _, r := range reads {
				before := f.count(r)
				if _, err := callZero(c, r); err != nil {
					t.Fatal(err)
				}
				got := f.count(r) - before
				want := 0
				_, ww, _, _ := QueryTables(w)
				if rr, _, _, _ := QueryTables(r); intersects(ww, rr) {
					want = 1
				}
				if got != want {
					t.Errorf("after %s (tx=%v): %s ran %d times, want %d", w, viaTx, r, got, want)
				}
			}
		}
	}
}

func TestHitReturnsPrivateCopy(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	ctx := context.Background()
	want := studentRow("s1", 0, 3)
	got, err := c.GetStudentWithMetrics(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	// Mutate everything the miss returned.
	got.MetricNames[0], got.MetricValues[0], *got.Cohort = "x", 99, "x"
	got.MetricRecordedAt[0] = time.Time{}
	c.Wait()
	for i := range 2 {
		got, err = c.GetStudentWithMetrics(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("GetStudentWithMetrics() hit %d mismatch (-want +got):\n%s", i, diff)
		}
		got.MetricNames[1], *got.Cohort = "y", "y"
		got.MetricValues = append(got.MetricValues[:0], 7)
	}
	if n := f.count("GetStudentWithMetrics"); n != 1 {
		t.Errorf("query ran %d times, want 1", n)
	}

	// Nested pointers and byte slices in list elements too.
	runs, err := c.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	wantRuns := slices.Clone(runs)
	for i := range wantRuns {
		wantRuns[i] = copyEvalRun(&runs[i])
	}
	runs[0].Config[0] = 'X'
	*runs[0].FinishedAt = time.Time{}
	c.Wait()
	again, err := c.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantRuns, again); diff != "" {
		t.Errorf("ListEvalRuns() after mutation mismatch (-want +got):\n%s", diff)
	}
	if n := f.count("ListEvalRuns"); n != 1 {
		t.Errorf("ListEvalRuns ran %d times, want 1", n)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	boom := errors.New("boom")
	f.setErr(boom)
	if _, err := c.GetUser(context.Background(), 1); !errors.Is(err, boom) {
		t.Fatalf("GetUser() error = %v, want %v", err, boom)
	}
	c.Wait()
	f.setErr(nil)
	u, err := c.GetUser(context.Background(), 1)
	if err != nil {
		t.Fatalf("GetUser() after failure error = %v", err)
	}
	if diff := cmp.Diff(gen.User{ID: 1, Name: "user-0"}, u); diff != "" {
		t.Errorf("GetUser() mismatch (-want +got):\n%s", diff)
	}
	if n := f.count("GetUser"); n != 2 {
		t.Errorf("GetUser ran %d times, want 2", n)
	}
}

func TestDistinctArgumentsDistinctEntries(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "", "a"} {
		r, err := c.GetStudentWithMetrics(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.StudentID != id {
			t.Errorf("GetStudentWithMetrics(%q).StudentID = %q", id, r.StudentID)
		}
		c.Wait()
	}
	if n := f.count("GetStudentWithMetrics"); n != 3 {
		t.Errorf("query ran %d times, want 3 (a, b, empty; a again is a hit)", n)
	}
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("TTLExpires", func(t *testing.T) {
		t.Parallel()
		c, f, clk := setup(t, &Options{TTL: time.Hour})
		c.GetUser(ctx, 1)
		c.Wait()
		clk.advance(59 * time.Minute)
		c.GetUser(ctx, 1)
		if n := f.count("GetUser"); n != 1 {
			t.Errorf("within TTL: ran %d times, want 1", n)
		}
		clk.advance(2 * time.Minute)
		c.GetUser(ctx, 1)
		if n := f.count("GetUser"); n != 2 {
			t.Errorf("after TTL: ran %d times, want 2", n)
		}
	})

	t.Run("StaleWhileRevalidate", func(t *testing.T) {
		t.Parallel()
		// GetStudentWithMetrics has "cache: ttl=30s swr=10s" in queries/.
		c, f, clk := setup(t, &Options{TTL: time.Hour})
		first, _ := c.GetStudentWithMetrics(ctx, "s")
		c.Wait()
		f.bumpVersion() // the database changed behind our back
		clk.advance(35 * time.Second)
		stale, err := c.GetStudentWithMetrics(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, stale); diff != "" {
			t.Errorf("stale serve mismatch (-want +got):\n%s", diff)
		}
		c.Wait() // background refresh done and stored
		fresh, _ := c.GetStudentWithMetrics(ctx, "s")
		if fresh.ID != 1 {
			t.Errorf("after revalidation ID = %d, want 1", fresh.ID)
		}
		if got := c.Stats().Queries["GetStudentWithMetrics"]; got.StaleServes != 1 || got.Hits != 1 {
			t.Errorf("stats = %+v, want 1 stale serve and 1 hit", got)
		}
		clk.advance(time.Minute) // beyond ttl+swr: a plain miss
		f.bumpVersion()
		r, _ := c.GetStudentWithMetrics(ctx, "s")
		if r.ID != 2 {
			t.Errorf("after ttl+swr ID = %d, want 2", r.ID)
		}
	})

	t.Run("OffInComment", func(t *testing.T) {
		t.Parallel()
		c, f, _ := setup(t, nil)
		c.CountConnectionsByState(ctx)
		c.Wait()
		c.CountConnectionsByState(ctx)
		if n := f.count("CountConnectionsByState"); n != 2 {
			t.Errorf("ran %d times, want 2 (never cached)", n)
		}
	})

	t.Run("OffInOptions", func(t *testing.T) {
		t.Parallel()
		c, f, _ := setup(t, &Options{Off: []string{"GetUser"}})
		c.GetUser(ctx, 1)
		c.Wait()
		c.GetUser(ctx, 1)
		if n := f.count("GetUser"); n != 2 {
			t.Errorf("ran %d times, want 2 (Options.Off)", n)
		}
	})
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name              string
		invalidate        func(*Cache)
		wantUser, wantRun int
	}{
		{"Table", func(c *Cache) { c.Invalidate("users") }, 2, 1},
		{"SchemaQualified", func(c *Cache) { c.Invalidate("public.eval_runs") }, 1, 2},
		{"All", func(c *Cache) { c.InvalidateAll() }, 2, 2},
		{"UnknownMeansAll", func(c *Cache) { c.Invalidate("no_such_table") }, 2, 2},
		{"Nothing", func(c *Cache) { c.Invalidate() }, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, f, _ := setup(t, nil)
			c.GetUser(ctx, 1)
			c.GetEvalRun(ctx, [16]byte{})
			c.Wait()
			tc.invalidate(c)
			c.GetUser(ctx, 1)
			c.GetEvalRun(ctx, [16]byte{})
			if got := [2]int{f.count("GetUser"), f.count("GetEvalRun")}; got != [2]int{tc.wantUser, tc.wantRun} {
				t.Errorf("calls (GetUser, GetEvalRun) = %v, want %v", got, [2]int{tc.wantUser, tc.wantRun})
			}
		})
	}
}

func TestTxReadsBypassCache(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	ctx := context.Background()
	c.GetUser(ctx, 1)
	c.Wait()
	txq, commit := c.Tx(f)
	txq.GetUser(ctx, 1)
	txq.GetUser(ctx, 1)
	if n := f.count("GetUser"); n != 3 {
		t.Errorf("GetUser ran %d times, want 3 (tx reads bypass the cache)", n)
	}
	commit() // no writes: nothing invalidated
	c.GetUser(ctx, 1)
	if n := f.count("GetUser"); n != 3 {
		t.Errorf("GetUser ran %d times after empty commit, want 3", n)
	}
}

// waitSharers returns when n callers wait for a shared load.
func waitSharers(c *Cache, n int64) {
	for c.waiting.Load() < n {
		runtime.Gosched()
	}
}

func TestConcurrentMissesRunOnce(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	f.block = make(chan struct{})
	const n = 8
	var wg sync.WaitGroup
	results := make([]gen.GetStudentWithMetricsRow, n)
	for i := range n {
		wg.Go(func() {
			r, err := c.GetStudentWithMetrics(context.Background(), "s")
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	waitSharers(c, n) // one load runs the query, all n wait for it
	close(f.block)
	wg.Wait()
	if got := f.count("GetStudentWithMetrics"); got != 1 {
		t.Errorf("query ran %d times for %d concurrent misses, want 1", got, n)
	}
	for i := 1; i < n; i++ {
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Errorf("result %d mismatch (-want +got):\n%s", i, diff)
		}
		if &results[0].MetricNames[0] == &results[i].MetricNames[0] {
			t.Errorf("results 0 and %d share a slice", i)
		}
	}
}

// A shared load that fails with a deadline of its own (the per-statement
// socket_timeout on a stalled server, here LoadTimeout) fails every caller
// that waited for it: the query runs once, not once per waiter.
func TestConcurrentMissesOfSlowQueryRunOnce(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, &Options{LoadTimeout: 50 * time.Millisecond})
	f.hang = true
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Each caller's own deadline is later than the load's, and
			// later than the previous caller's.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second+time.Duration(i)*10*time.Millisecond)
			defer cancel()
			_, errs[i] = c.GetStudentWithMetrics(ctx, "s")
		})
	}
	wg.Wait()
	if got := f.count("GetStudentWithMetrics"); got != 1 {
		t.Errorf("query ran %d times for %d concurrent misses that timed out, want 1", got, n)
	}
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("caller %d: err = %v, want the shared load's deadline", i, err)
		}
	}
}

// The caller that started a shared load giving up neither cancels the load
// nor fails the callers still waiting: they get its value, and each caller
// stops waiting on its own ctx.
func TestSharedLoadOutlivesFirstCaller(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	f.block = make(chan struct{})
	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.GetStudentWithMetrics(first, "s")
		firstErr <- err
	}()
	waitSharers(c, 1)
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = c.GetStudentWithMetrics(context.Background(), "s") })
	}
	waitSharers(c, n+1)
	cancel()
	select {
	case err := <-firstErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("first caller: err = %v, want its own context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("first caller still waits for the shared load after its ctx was cancelled")
	}
	close(f.block)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("waiter %d: err = %v, want the shared load's value", i, err)
		}
	}
	if got := f.count("GetStudentWithMetrics"); got != 1 {
		t.Errorf("query ran %d times, want 1", got)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		q    gen.Querier
		o    *Options
		want string
	}{
		{"NilQuerier", nil, nil, "needs a gen.Querier"},
		{"NegativeMaxBytes", newFake(), &Options{MaxBytes: -1}, "MaxBytes must be > 0 (got -1)"},
		{"NegativeTTL", newFake(), &Options{TTL: -time.Second}, "TTL must be > 0"},
		{"UnknownOff", newFake(), &Options{Off: []string{"GetNothing"}}, `no query named "GetNothing"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.q, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New() error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t, nil)
	ctx := context.Background()
	c.GetUser(ctx, 1)
	c.Wait()
	c.GetUser(ctx, 1)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"evaldb_cache_hits_total{GetUser}":         1,
		"evaldb_cache_misses_total{GetUser}":       1,
		"evaldb_cache_stale_serves_total{GetUser}": 0,
		"evaldb_cache_evictions_total":             0,
		"evaldb_cache_rejected_sets_total":         0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Errorf("Stats() = %+v, want 1 hit and 1 miss", s.QueryStats)
	}
}

package cachewrap

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recordingInvalidator records what a Poller or Listener told it.
type recordingInvalidator struct {
	mu     sync.Mutex
	tables []string // "*" for InvalidateAll
}

func (r *recordingInvalidator) Invalidate(tables ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tables = append(r.tables, tables...)
}

func (r *recordingInvalidator) InvalidateAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tables = append(r.tables, "*")
}

func (r *recordingInvalidator) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tables
	r.tables = nil
	slices.Sort(t)
	return t
}

// fakeCounters is a Look over sums that the test sets, on a clock the test
// moves.
type fakeCounters struct {
	mu    sync.Mutex
	sums  map[string]int64
	err   error
	calls atomic.Int64
	gate  chan struct{} // when non-nil, each Look waits for a receive
	now   time.Time
}

func (f *fakeCounters) look(ctx context.Context) (map[string]int64, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]int64{}
	for k, v := range f.sums {
		out[k] = v
	}
	return out, nil
}

func (f *fakeCounters) set(table string, v int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sums[table] = v
}

func (f *fakeCounters) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeCounters) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func newFakePoller(t *testing.T, bound time.Duration) (*Poller, *fakeCounters, *recordingInvalidator) {
	t.Helper()
	f := &fakeCounters{sums: map[string]int64{"eval_runs": 1, "users": 1}, now: time.Unix(1e9, 0)}
	inv := &recordingInvalidator{}
	p, err := NewPoller(inv, &PollerOptions{Look: f.look, MaxStaleness: bound, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	return p, f, inv
}

func TestPollerLooksOnlyWhenTheBoundHasPassed(t *testing.T) {
	ctx := context.Background()
	p, f, inv := newFakePoller(t, 50*time.Millisecond)
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"*"}, inv.take()); diff != "" {
		t.Errorf("first look must invalidate everything (-want +got):\n%s", diff)
	}
	f.set("eval_runs", 2)
	f.advance(50 * time.Millisecond) // exactly the bound: still fresh
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("within the bound: %d looks, want 1", n)
	}
	if got := inv.take(); len(got) != 0 {
		t.Errorf("within the bound nothing is invalidated, got %v", got)
	}
	f.advance(time.Millisecond)
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("past the bound: %d looks, want 2", n)
	}
	if diff := cmp.Diff([]string{"eval_runs"}, inv.take()); diff != "" {
		t.Errorf("only the table whose counter moved is invalidated (-want +got):\n%s", diff)
	}
	// A table seen for the first time (its first write) counts as changed.
	f.set("datasets", 1)
	f.advance(time.Second)
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"datasets"}, inv.take()); diff != "" {
		t.Errorf("new table (-want +got):\n%s", diff)
	}
	// Counters that went away (reset by hand) invalidate everything.
	f.mu.Lock()
	delete(f.sums, "users")
	f.mu.Unlock()
	f.advance(time.Second)
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"*"}, inv.take()); diff != "" {
		t.Errorf("reset counters (-want +got):\n%s", diff)
	}
	if s := p.Stats(); s.Looks != 4 || s.Invalidations != 2 {
		t.Errorf("Stats = %+v, want 4 looks and 2 invalidations", s)
	}
}

func TestPollerFailedLookRefusesTheCache(t *testing.T) {
	ctx := context.Background()
	p, f, inv := newFakePoller(t, 10*time.Millisecond)
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	inv.take()
	down := errors.New("connection refused")
	f.mu.Lock()
	f.err = down
	f.mu.Unlock()
	f.advance(20 * time.Millisecond)
	if err := p.Fresh(ctx); !errors.Is(err, down) {
		t.Fatalf("Fresh after a failed look = %v, want it to wrap %v", err, down)
	}
	// Still failing: every read keeps going to the database, none is
	// served from a cache older than the bound.
	if err := p.Fresh(ctx); !errors.Is(err, down) {
		t.Fatalf("second Fresh = %v, want %v", err, down)
	}
	f.mu.Lock()
	f.err = nil
	f.mu.Unlock()
	f.set("users", 5)
	if err := p.Fresh(ctx); err != nil {
		t.Fatalf("Fresh once the database is back: %v", err)
	}
	if diff := cmp.Diff([]string{"users"}, inv.take()); diff != "" {
		t.Errorf("after recovery (-want +got):\n%s", diff)
	}
	if s := p.Stats(); s.Failures != 2 {
		t.Errorf("Failures = %d, want 2", s.Failures)
	}
}

func TestPollerConcurrentReadersShareOneLook(t *testing.T) {
	p, f, _ := newFakePoller(t, 10*time.Millisecond)
	f.gate = make(chan struct{})
	const readers = 20
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Fresh(context.Background())
		}()
	}
	// Let the readers pile up on the one look, then release it.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d concurrent readers ran %d looks, want 1", readers, n)
	}
}

func TestPollerWaiterGivesUpOnItsOwnContext(t *testing.T) {
	p, f, _ := newFakePoller(t, 10*time.Millisecond)
	f.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Fresh(ctx) }()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Fresh with a cancelled ctx = %v, want context.Canceled", err)
	}
	// The look goes on for the others: a reader arriving now shares it.
	other := make(chan error, 1)
	go func() { other <- p.Fresh(context.Background()) }()
	close(f.gate)
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("looks = %d, want 1 (the cancelled reader's look served the next one)", n)
	}
}

func TestNewPollerRefusesBadOptions(t *testing.T) {
	inv := &recordingInvalidator{}
	look := func(context.Context) (map[string]int64, error) { return nil, nil }
	for name, tc := range map[string]struct {
		target Invalidator
		opts   *PollerOptions
	}{
		"nil target":         {nil, &PollerOptions{Look: look}},
		"nil options":        {inv, nil},
		"no Look":            {inv, &PollerOptions{}},
		"negative staleness": {inv, &PollerOptions{Look: look, MaxStaleness: -time.Second}},
	} {
		if _, err := NewPoller(tc.target, tc.opts); err == nil {
			t.Errorf("%s: NewPoller accepted it", name)
		}
	}
	p, err := NewPoller(inv, &PollerOptions{Look: look})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.MaxStaleness(); got != 100*time.Millisecond {
		t.Errorf("default MaxStaleness = %s, want 100ms", got)
	}
}

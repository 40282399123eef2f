package cachewrap

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/schema"
)

// events records what a Listener told its Invalidator, in order; "" is an
// InvalidateAll. Tests wait on it instead of sleeping.
type events struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{})} }

func (e *events) add(table string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, table)
	close(e.ch)
	e.ch = make(chan struct{})
}

func (e *events) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

// waitFor waits (at most 30 s) until the events after the first from hold
// want, in order, and returns the index after the match.
func (e *events) waitFor(t *testing.T, from int, want ...string) int {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		e.mu.Lock()
		got, ch := append([]string(nil), e.got...), e.ch
		e.mu.Unlock()
		i, j := from, 0
		for ; i < len(got) && j < len(want); i++ {
			if got[i] == want[j] {
				j++
			}
		}
		if j == len(want) {
			return i
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("listener events after #%d = %q, want %q among them in order", from, got[from:], want)
		}
	}
}

// startListener runs a Listener for c on dbURL until the test ends. While
// the test holds gate's write lock the Listener cannot connect.
func startListener(t *testing.T, c Invalidator, dbURL string, ev *events, gate *sync.RWMutex) *Listener {
	t.Helper()
	l, err := NewListener(c, &ListenerOptions{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			gate.RLock() // a test holds the write lock to keep the listener from reconnecting
			defer gate.RUnlock()
			return pgx.Connect(ctx, dbURL)
		},
		MinBackoff:   20 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
		OnInvalidate: ev.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := l.WaitListening(wctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// closeGate keeps the listener from connecting until the returned function
// is called (or the test ends, so that it can stop).
func closeGate(t *testing.T, gate *sync.RWMutex) (reopen func()) {
	gate.Lock()
	var once sync.Once
	reopen = func() { once.Do(gate.Unlock) }
	t.Cleanup(reopen)
	return reopen
}

// waitNotListening waits (at most 30 s) until l has noticed that its
// connection is gone.
func waitNotListening(t *testing.T, l *Listener) {
	t.Helper()
	for i := 0; l.Stats().Listening; i++ {
		if i == 3000 {
			t.Fatal("listener still listening 30s after its connection was closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// barrier sends a notification naming a table the test does not read and
// waits until the listener applied it. Notifications arrive in commit
// order, so every earlier commit's has been applied too: when the write
// under test committed after the listener reconnected, its notification
// (rather than the reconnection's InvalidateAll) is then applied as well,
// and the read that follows cannot race with it.
func barrier(t *testing.T, dbURL string, ev *events, from int) {
	t.Helper()
	execSQL(t, dbURL, "SELECT pg_notify('evaldb_invalidate', 'eval_metrics')")
	ev.waitFor(t, from, "eval_metrics")
}

// poolCache returns a Cache (TTL one hour, so that only invalidation can
// refresh a value) over a pool on dbURL.
func poolCache(t *testing.T, dbURL string) (*Cache, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c, err := New(gen.New(pool), &Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, pool
}

func execSQL(t *testing.T, dbURL, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// cachedName reads user id through c twice and checks that the second read
// was a hit, so that what follows tests invalidation, not a pass-through.
func cachedName(t *testing.T, c *Cache, id int64) string {
	t.Helper()
	ctx := context.Background()
	if _, err := c.GetUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	before := c.Stats().Queries["GetUser"].Hits
	u, err := c.GetUser(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if hits := c.Stats().Queries["GetUser"].Hits; hits != before+1 {
		t.Fatalf("second GetUser was not a cache hit (hits %d → %d)", before, hits)
	}
	return u.Name
}

func readName(t *testing.T, c *Cache, id int64) string {
	t.Helper()
	u, err := c.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.Name
}

// TestListenerPlainSQLInvalidates checks that a write made outside evaldb
// (plain SQL on a connection of its own, as psql would) invalidates the
// cached reads of the table it changed, and only those.
func TestListenerPlainSQLInvalidates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	c, _ := poolCache(t, dbURL)
	u, err := c.CreateUser(ctx, gen.CreateUserParams{Email: "ada@example.com", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	startListener(t, c, dbURL, ev, &sync.RWMutex{})
	n := ev.waitFor(t, 0, "")

	if got := cachedName(t, c, u.ID); got != "Ada" {
		t.Fatalf("GetUser name = %q, want Ada", got)
	}
	// A write to another table leaves the cached user alone.
	execSQL(t, dbURL, "INSERT INTO eval_runs (id, name, model, dataset) VALUES (gen_random_uuid(), 'r', 'm', 'd')")
	n = ev.waitFor(t, n, "eval_runs")
	before := c.Stats().Queries["GetUser"].Hits
	if got := readName(t, c, u.ID); got != "Ada" {
		t.Fatalf("GetUser name = %q, want Ada", got)
	}
	if hits := c.Stats().Queries["GetUser"].Hits; hits != before+1 {
		t.Errorf("after a write to eval_runs, GetUser was not a hit (hits %d → %d): invalidation too broad", before, hits)
	}

	execSQL(t, dbURL, "UPDATE users SET name = 'Ada Lovelace' WHERE id = $1", u.ID)
	ev.waitFor(t, n, "users")
	if got := readName(t, c, u.ID); got != "Ada Lovelace" {
		t.Errorf("after an UPDATE by plain SQL was notified, GetUser name = %q, want %q", got, "Ada Lovelace")
	}
	if s := c.Stats(); s.Queries["GetUser"].Misses < 2 {
		t.Errorf("GetUser misses = %d, want >= 2", s.Queries["GetUser"].Misses)
	}
}

// listenerPID finds the backend of the Listener (the session whose last
// statement was LISTEN) on the server.
func listenerPID(t *testing.T, adminURL, dbName string) int32 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pids []int32
	rows, _ := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'`, dbName)
	pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 {
		t.Fatalf("listener backends in %s = %v, want exactly one", dbName, pids)
	}
	return pids[0]
}

// TestListenerSurvivesTerminate kills the Listener's backend with
// pg_terminate_backend: it reconnects by itself, invalidates everything
// (a write made during the gap was never notified), and applies
// notifications again.
func TestListenerSurvivesTerminate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	cfg, _ := pgx.ParseConfig(dbURL)
	c, _ := poolCache(t, dbURL)
	u, err := c.CreateUser(ctx, gen.CreateUserParams{Email: "bob@example.com", Name: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	var gate sync.RWMutex
	l := startListener(t, c, dbURL, ev, &gate)
	n := ev.waitFor(t, 0, "")
	if got := cachedName(t, c, u.ID); got != "Bob" {
		t.Fatalf("GetUser name = %q, want Bob", got)
	}

	// Terminate the listener and, while it cannot reconnect, change the
	// user: no notification of that can reach it; only the InvalidateAll
	// after reconnecting can.
	reopen := closeGate(t, &gate)
	execSQL(t, dbURL, "SELECT pg_terminate_backend($1::int, 10000)", listenerPID(t, dbtest.GetServer(t).AdminURL, cfg.Database))
	waitNotListening(t, l)
	execSQL(t, dbURL, "UPDATE users SET name = 'Robert' WHERE id = $1", u.ID)
	reopen()
	n = ev.waitFor(t, n, "")
	barrier(t, dbURL, ev, n)
	if got := readName(t, c, u.ID); got != "Robert" {
		t.Errorf("after reconnecting, GetUser name = %q, want Robert (the gap must invalidate everything)", got)
	}
	s := l.Stats()
	if s.Reconnects != 1 || s.ConnectionErrors < 1 || !s.Listening {
		t.Errorf("Stats() = %+v, want 1 reconnect, >= 1 connection error, listening", s)
	}

	// And notifications flow again on the new connection.
	n = ev.len()
	_ = cachedName(t, c, u.ID)
	execSQL(t, dbURL, "UPDATE users SET name = 'Bobby' WHERE id = $1", u.ID)
	ev.waitFor(t, n, "users")
	if got := readName(t, c, u.ID); got != "Bobby" {
		t.Errorf("after a notified update on the new connection, GetUser name = %q, want Bobby", got)
	}
}

// TestListenerSurvivesServerRestart restarts PostgreSQL under a Listener.
// It uses a private cluster: restarting the shared one would break the
// other tests of this binary.
func TestListenerSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); !ci && errors.Is(err, pgcluster.ErrNoBinaries) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	dbURL := cl.URL("postgres")
	if _, err := schema.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	c, pool := poolCache(t, dbURL)
	u, err := c.CreateUser(ctx, gen.CreateUserParams{Email: "cy@example.com", Name: "Cy"})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	var gate sync.RWMutex
	l := startListener(t, c, dbURL, ev, &gate)
	n := ev.waitFor(t, 0, "")
	if got := cachedName(t, c, u.ID); got != "Cy" {
		t.Fatalf("GetUser name = %q, want Cy", got)
	}
	// Restart, and write before the listener is back: the write must be
	// seen all the same.
	reopen := closeGate(t, &gate)
	if err := cl.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // its connections died with the server
	waitNotListening(t, l)
	execSQL(t, dbURL, "UPDATE users SET name = 'Cyrus' WHERE id = $1", u.ID)
	reopen()
	n = ev.waitFor(t, n, "")
	barrier(t, dbURL, ev, n)
	if got := readName(t, c, u.ID); got != "Cyrus" {
		t.Errorf("after the restart, GetUser name = %q, want Cyrus", got)
	}
	if s := l.Stats(); s.Reconnects < 1 || !s.Listening {
		t.Errorf("Stats() = %+v, want >= 1 reconnect and listening", s)
	}
}

func TestNewListenerValidates(t *testing.T) {
	t.Parallel()
	connect := func(context.Context) (*pgx.Conn, error) { return nil, errors.New("unused") }
	c, err := New(newFake(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tests := []struct {
		name   string
		target Invalidator
		opts   *ListenerOptions
		want   string
	}{
		{"NilTarget", nil, &ListenerOptions{Connect: connect}, "Invalidator"},
		{"NilOptions", c, nil, "Connect is required"},
		{"NoConnect", c, &ListenerOptions{}, "Connect is required"},
		{"NegativeMinBackoff", c, &ListenerOptions{Connect: connect, MinBackoff: -1}, "MinBackoff must be >= 0"},
		{"NegativeMaxBackoff", c, &ListenerOptions{Connect: connect, MaxBackoff: -1}, "MaxBackoff must be >= 0"},
		{"NegativePingInterval", c, &ListenerOptions{Connect: connect, PingInterval: -1}, "PingInterval must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewListener(tt.target, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewListener() error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	l, err := NewListener(c, &ListenerOptions{Connect: connect})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ListenerStats{}, l.Stats()); diff != "" {
		t.Errorf("Stats() of a new Listener (-want +got):\n%s", diff)
	}
}

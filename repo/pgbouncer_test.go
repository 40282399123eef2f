package repo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

// bouncedURLs returns a fresh database's URL through the shared PgBouncer
// with pgbouncer=true and extra params, and its direct URL (for DirectURL).
func bouncedURLs(t *testing.T, params string) (pooled, direct string) {
	t.Helper()
	direct = dbtest.URL(t)
	pooled = dbtest.PgBouncerURL(t, direct) + "&pgbouncer=true"
	if params != "" {
		pooled += "&" + params
	}
	return pooled, direct
}

// bouncerPool is one row of PgBouncer's SHOW POOLS.
type bouncerPool struct {
	ClientActive, ClientWaiting, ServerActive, ServerIdle, ServerUsed int
}

// showPool reads PgBouncer's figures for database db from its admin
// console (which speaks only the simple protocol).
func showPool(t *testing.T, db string) bouncerPool {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dbtest.PgBouncer(t).URL("pgbouncer"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to PgBouncer's admin console: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SHOW POOLS")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	num := func(v any) int {
		n, _ := strconv.Atoi(fmt.Sprint(v))
		return n
	}
	for _, m := range maps {
		if m["database"] == db {
			return bouncerPool{
				ClientActive: num(m["cl_active"]), ClientWaiting: num(m["cl_waiting"]),
				ServerActive: num(m["sv_active"]), ServerIdle: num(m["sv_idle"]), ServerUsed: num(m["sv_used"]),
			}
		}
	}
	return bouncerPool{}
}

func dbName(t *testing.T, rawURL string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// TestThroughPgBouncer runs the repo's paths through PgBouncer in
// transaction pooling mode with pgbouncer=true: cached and uncached reads,
// writes, COPY inside and outside a transaction, txn.Do and RecordEvalRun on both of
// its write paths (batch and COPY). PgBouncer 1.18 keeps no prepared
// statements across transactions, so any statement that pgx prepared would
// fail here.
func TestThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pooled, direct := bouncedURLs(t, "")
	r := open(t, &Config{URL: pooled, DirectURL: direct, Env: Test})
	if s := r.Settings(); !s.PgBouncer || s.ExecMode != pgx.QueryExecModeExec {
		t.Fatalf("Settings() PgBouncer = %v, ExecMode = %v, want true and exec", s.PgBouncer, s.ExecMode)
	}
	if r.Listener() == nil {
		t.Fatal("Listener() = nil, want a listener on DirectURL")
	}
	if err := r.Listener().WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	q := r.Queries()

	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "ada@example.com", Name: "Ada"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	sp, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: "S1"})
	if err != nil {
		t.Fatalf("CreateStudentProfile: %v", err)
	}
	for i := range 3 { // the same statement many times: no prepared statement may linger
		if _, err := q.RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{
			StudentProfileID: sp.ID, Name: "score", Value: float64(i), RecordedAt: time.Now()}); err != nil {
			t.Fatalf("RecordPerformanceMetric %d: %v", i, err)
		}
	}
	got, err := q.GetStudentWithMetrics(ctx, "S1")
	if err != nil {
		t.Fatalf("GetStudentWithMetrics: %v", err)
	}
	if diff := cmp.Diff([]float64{0, 1, 2}, got.MetricValues); diff != "" {
		t.Errorf("metric values (-want +got):\n%s", diff)
	}
	if _, err := q.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if _, err := q.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("GetUser again: %v", err)
	}

	// COPY inside a transaction, and reads and writes in txn.Do.
	run := uuid.Must(uuid.NewV7())
	err = r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
		if _, err := tx.InsertEvalRun(ctx, gen.InsertEvalRunParams{ID: run, Name: "r", Model: "m", Dataset: "d",
			Status: "running", Config: []byte(`{"k":1}`), StartedAt: time.Now()}); err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		params := make([]gen.InsertEvalResultsParams, 50)
		for i := range params {
			params[i] = gen.InsertEvalResultsParams{RunID: run, CaseID: fmt.Sprintf("c%02d", i), Input: "i", Expected: "e",
				Output: "o", Score: 0.5, Passed: i%2 == 0, LatencyMs: 3}
		}
		if n, err := tx.InsertEvalResults(ctx, params); err != nil || n != 50 {
			return fmt.Errorf("COPY eval results: %d, %w", n, err)
		}
		if _, err := tx.GetEvalRun(ctx, run); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Tx through PgBouncer: %v", err)
	}
	// COPY outside a transaction: pgx describes the columns (an unnamed
	// statement, one round trip) and then copies, and PgBouncer may run the
	// two on different server connections; nothing of the first is needed
	// by the second.
	for i := range 5 {
		if n, err := q.InsertEvalMetrics(ctx, []gen.InsertEvalMetricsParams{{RunID: run, Name: fmt.Sprint("m", i), Value: 1}}); err != nil || n != 1 {
			t.Fatalf("COPY outside a transaction through PgBouncer: %d rows, %v", n, err)
		}
	}
	results, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run, RowLimit: 100})
	if err != nil {
		t.Fatalf("ListEvalResults: %v", err)
	}
	if len(results) != 50 {
		t.Errorf("ListEvalResults after the transaction: %d rows, want 50", len(results))
	}

	// RecordEvalRun on both paths.
	for _, tc := range []struct {
		name      string
		threshold int
	}{{"Batch", -1}, {"Copy", 1}} {
		rr := txn.Run{Name: "run-" + tc.name, Model: "m", Dataset: "d",
			Results: []txn.Result{{CaseID: "a", Score: 1, Passed: true}, {CaseID: "b", Score: 0}},
			Metrics: []txn.Metric{{Name: "acc", Value: 0.5}}}
		rec, err := r.RecordEvalRun(ctx, rr, &txn.Options{CopyThreshold: tc.threshold})
		if err != nil {
			t.Fatalf("RecordEvalRun (%s) through PgBouncer: %v", tc.name, err)
		}
		if rec.Results != 2 || rec.Metrics != 1 {
			t.Errorf("RecordEvalRun (%s) = %d results, %d metrics, want 2 and 1", tc.name, rec.Results, rec.Metrics)
		}
		ms, err := q.ListEvalMetrics(ctx, rec.Run.ID)
		if err != nil || len(ms) != 1 {
			t.Errorf("ListEvalMetrics (%s) = %v, %v, want one metric", tc.name, ms, err)
		}
	}

	// It all went through PgBouncer, which used at most its pool size.
	p := showPool(t, dbName(t, direct))
	if n := p.ServerActive + p.ServerIdle + p.ServerUsed; n == 0 || n > dbtest.PgBouncerPoolSize {
		t.Errorf("PgBouncer server connections for the database = %d (%+v), want 1..%d", n, p, dbtest.PgBouncerPoolSize)
	}
}

// TestPgBouncerWithoutDirectURLPolls checks that with only a
// pgbouncer=true URL, Open does not LISTEN through PgBouncer (the
// notifications would reach whichever client next got that server
// connection) but keeps the cache coherent by polling, and says why; and
// that asking for LISTEN there is refused with what to do.
func TestPgBouncerWithoutDirectURLPolls(t *testing.T) {
	t.Parallel()
	pooled, _ := bouncedURLs(t, "")
	for _, cfg := range []*Config{
		{URL: pooled, Env: Test},
		{URL: pooled, DirectURL: pooled, Env: Test},
	} {
		r := open(t, cfg)
		if r.Listener() != nil {
			t.Error("Listener() != nil, want no listener through PgBouncer")
		}
		if mode, why := r.Coherence(); mode != CoherencePoll || !strings.Contains(why, "pgbouncer=true") {
			t.Errorf("Coherence() = %q, %q; want poll, because of pgbouncer=true", mode, why)
		}
		if r.Poller() == nil {
			t.Error("Poller() = nil, want the session-free coherence check")
		}
	}
	_, err := Open(context.Background(), &Config{URL: pooled, Env: Test, Coherence: CoherenceListen})
	if err == nil || !strings.Contains(err.Error(), "LISTEN needs a session") || !strings.Contains(err.Error(), string(CoherencePoll)) {
		t.Errorf("Open with Coherence listen through PgBouncer: err = %v, want a refusal that says LISTEN needs a session and names poll", err)
	}
}

// helperEnv selects a helper mode of this test binary run as a
// subprocess; see TestHelperProcess.
const helperEnv = "EVALDB_REPO_HELPER"

// helper is a running subprocess of this test binary, driven by commands
// on its stdin, each answered by one line on stdout starting with "> ".
type helper struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

// startHelper runs TestHelperProcess in a new process, opening a Repo on
// url (and direct as DirectURL, unless empty); env adds variables (such as
// EVALDB_HELPER_COHERENCE).
func startHelper(t testing.TB, url, direct string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.bench=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"=1", "EVALDB_HELPER_URL="+url, "EVALDB_HELPER_DIRECT="+direct), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	h.out.Buffer(make([]byte, 64<<10), 64<<20) // readloop answers in one long line
	t.Cleanup(func() {
		_ = in.Close() // EOF: the helper exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("helper process: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("helper process did not exit within 30s of EOF")
		}
	})
	h.read() // "ready"
	return h
}

// read returns the next answer line, without its "> " prefix.
func (h *helper) read() string {
	h.t.Helper()
	for h.out.Scan() {
		if line, ok := strings.CutPrefix(h.out.Text(), "> "); ok {
			if msg, failed := strings.CutPrefix(line, "error "); failed {
				h.t.Fatalf("helper: %s", msg)
			}
			return line
		}
	}
	h.t.Fatalf("helper exited: %v", h.out.Err())
	return ""
}

// do sends a command and returns its answer.
func (h *helper) do(cmd string) string {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		h.t.Fatalf("send %q to helper: %v", cmd, err)
	}
	return h.read()
}

// TestPgBouncerManyProcesses runs four processes, each with its own pool of
// five connections through the one PgBouncer, all busy at once: the
// clients hold 20 connections to PgBouncer while the server sees no more
// than PgBouncer's pool size.
func TestPgBouncerManyProcesses(t *testing.T) {
	t.Parallel()
	const procs, conns = 4, 5
	pooled, direct := bouncedURLs(t, fmt.Sprintf("connection_limit=%d&pool_timeout=0", conns))
	db := dbName(t, direct)
	var hs []*helper
	for range procs {
		hs = append(hs, startHelper(t, pooled, ""))
	}
	for _, h := range hs {
		if got := h.do(fmt.Sprintf("hold %d", conns)); got != "ok" {
			t.Fatalf("hold: %s", got)
		}
	}
	// Every helper now has all its connections open and keeps them busy
	// with short queries until released.
	admin, err := pgx.Connect(context.Background(), dbtest.GetServer(t).AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	maxServer, sawClients := 0, 0
	for range 20 {
		var n int
		if err := admin.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		maxServer = max(maxServer, n)
		p := showPool(t, db)
		sawClients = max(sawClients, p.ClientActive+p.ClientWaiting)
		time.Sleep(20 * time.Millisecond)
	}
	for _, h := range hs {
		if got := h.do("release"); got != "ok" {
			t.Fatalf("release: %s", got)
		}
	}
	if maxServer == 0 || maxServer > dbtest.PgBouncerPoolSize {
		t.Errorf("server connections to %s = up to %d, want 1..%d (PgBouncer's pool size)", db, maxServer, dbtest.PgBouncerPoolSize)
	}
	if sawClients != procs*conns {
		t.Errorf("PgBouncer client connections for %s = up to %d, want %d (%d processes × %d)", db, sawClients, procs*conns, procs, conns)
	}
	for i, h := range hs {
		if got := h.do("queries"); got == "0" {
			t.Errorf("helper %d ran no queries", i)
		}
	}
}

// TestHelperProcess is not a test: it is the body of the subprocesses that
// the multi-process tests start (it returns at once otherwise). It opens a
// Repo and obeys commands read from stdin until EOF.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	os.Exit(helperMain())
}

// BenchmarkReadThroughPgBouncer compares the read workload (uncached
// GetStudentWithMetrics of 100 students with 5 metrics each, from parallel
// goroutines, on a pool of 8) going straight to PostgreSQL and through
// PgBouncer in transaction mode (pgbouncer=true: exec mode, no statement
// cache, so every query is parsed again; PgBouncerPoolSize server
// connections); DirectExecMode is the direct path in exec mode, to tell
// the cost of exec mode from the cost of the extra hop. The cache is off: a cached read never reaches either.
//
//	go test ./repo -run '^$' -bench ReadThroughPgBouncer -benchtime=2000x
func BenchmarkReadThroughPgBouncer(b *testing.B) {
	ctx := context.Background()
	direct := dbtest.URL(b)
	seed, err := Open(ctx, &Config{URL: direct, Env: Test, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		sp := seedStudent(b, seed.Queries(), fmt.Sprintf("S%03d", i))
		for j := range 5 {
			if _, err := seed.Queries().RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{
				StudentProfileID: sp.ID, Name: "m", Value: float64(j), RecordedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	seed.Close()
	for _, bc := range []struct{ name, url string }{
		{"Direct", direct + "&connection_limit=8"},
		// pgbouncer=true without PgBouncer: exec mode's cost alone.
		{"DirectExecMode", direct + "&pgbouncer=true&connection_limit=8"},
		{"PgBouncer", dbtest.PgBouncerURL(b, direct) + "&pgbouncer=true&connection_limit=8"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := Open(ctx, &Config{URL: bc.url, Env: Test, DisableCache: true})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			var next atomic.Int64
			b.SetParallelism(4) // 8 goroutines on 2 cores: the pool's 8 connections in use
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("S%03d", next.Add(1)%100)
					if _, err := r.Queries().GetStudentWithMetrics(ctx, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}

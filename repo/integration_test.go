package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// secret is put into every integration test URL as the password. The
// throwaway cluster trusts local connections and never asks for it, so it
// travels through parsing, pools, logs and errors without being needed:
// TestNoPasswordLeaks checks that it never comes out.
const secret = "Sup3r-S3cret-pw"

// logBuffer collects slog output from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testURL returns a fresh migrated database's URL with the secret password
// and extra query parameters.
func testURL(t *testing.T, params string) string {
	t.Helper()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), secret)
	if params != "" {
		u.RawQuery += "&" + params
	}
	return u.String()
}

func open(t *testing.T, cfg *Config) *Repo {
	t.Helper()
	r, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestOpenQueriesAndStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test})
	q := r.Queries()
	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "ada@example.com", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("GetUser mismatch (-want +got):\n%s", diff)
	}
	if _, err := q.GetUser(ctx, u.ID+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser(missing) = %v, want ErrNotFound", err)
	}
	_, err = q.CreateUser(ctx, gen.CreateUserParams{Email: "ADA@example.com", Name: "Ada again"})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Constraint == "" {
		t.Errorf("CreateUser(duplicate email) = %v, want a *ConflictError naming the constraint", err)
	}

	st, err := r.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pool.MaxConns != 4 || st.Pool.TotalConns < 1 || st.Pool.AcquireCount < 4 {
		t.Errorf("Stats().Pool = %+v, want MaxConns 4 (test default), TotalConns >= 1, AcquireCount >= 4", st.Pool)
	}
	if st.Connections["active"] < 1 {
		t.Errorf("Stats().Connections = %v, want at least the Stats query itself active", st.Connections)
	}
	counts := map[string][2]int64{}
	for _, qs := range st.Queries {
		counts[qs.Name] = [2]int64{qs.Count, qs.Errors}
		if qs.Count > 0 && (qs.P50 <= 0 || qs.P50 > qs.P99 || qs.P99 > qs.Max) {
			t.Errorf("QueryStats %s percentiles out of order: %+v", qs.Name, qs)
		}
	}
	want := map[string][2]int64{"CreateUser": {2, 1}, "GetUser": {2, 0}, "CountConnectionsByState": {1, 0}}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("Stats().Queries counts [count errors] mismatch (-want +got):\n%s", diff)
	}
}

func TestPoolTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, "connection_limit=2&pool_timeout=1"), Env: Production})
	// Hold every connection in an open transaction.
	for range 2 {
		tx, err := r.DB().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	}
	_, err := r.Queries().GetUser(ctx, 1)
	if !errors.Is(err, ErrPoolTimeout) {
		t.Fatalf("GetUser with every connection busy = %v, want ErrPoolTimeout", err)
	}
	var pte *PoolTimeoutError
	if !errors.As(err, &pte) || pte.MaxConns != 2 || pte.Timeout != time.Second {
		t.Errorf("error = %#v, want a *PoolTimeoutError with MaxConns 2 and Timeout 1s", pte)
	}
	for _, w := range []string{"connection limit 2", "pool timeout 1s"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if n := r.PoolStats().AcquireTimeouts; n != 1 {
		t.Errorf("PoolStats().AcquireTimeouts = %d, want 1", n)
	}

	// The caller's context still wins: a context that ends first is the
	// caller's error, not a pool timeout.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Queries().GetUser(cctx, 1); !errors.Is(err, context.Canceled) || errors.Is(err, ErrPoolTimeout) {
		t.Errorf("GetUser(canceled ctx) = %v, want context.Canceled and not ErrPoolTimeout", err)
	}
}

func TestPoolTimeoutZeroWaitsForCaller(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, "connection_limit=1&pool_timeout=0"), Env: Production})
	tx, err := r.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := r.Queries().GetUser(cctx, 1); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPoolTimeout) {
		t.Errorf("GetUser with pool_timeout=0 = %v, want the caller's deadline, not ErrPoolTimeout", err)
	}
}

// Transactions and RecordEvalRun wait for a connection exactly as a query
// does: within pool_timeout, failing with a counted *PoolTimeoutError, and
// with pool_timeout=0 for as long as the caller's ctx allows (they used to
// give up after txn's 2 s MaxWait with an error naming MaxWait).
func TestTxWaitsForConnectionLikeAQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run := txn.Run{Name: "wait", Model: "m", Dataset: "d"}
	txFn := func(ctx context.Context, tx *txn.Tx) error { return nil }
	t.Run("PoolTimeoutZero", func(t *testing.T) {
		t.Parallel()
		r := open(t, &Config{URL: testURL(t, "connection_limit=1&pool_timeout=0"), Env: Production})
		held, err := r.DB().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Rollback(ctx) //nolint:errcheck
		// Longer than txn.DefaultMaxWait, so that giving up at MaxWait shows.
		cctx, cancel := context.WithTimeout(ctx, txn.DefaultMaxWait+500*time.Millisecond)
		defer cancel()
		err = r.Tx(cctx, nil, txFn)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPoolTimeout) {
			t.Errorf("Tx with pool_timeout=0 = %v, want the caller's deadline, not ErrPoolTimeout", err)
		}
		_, err = r.RecordEvalRun(cctx, run, nil)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPoolTimeout) {
			t.Errorf("RecordEvalRun with pool_timeout=0 = %v, want the caller's deadline, not ErrPoolTimeout", err)
		}
	})
	t.Run("PoolTimeout", func(t *testing.T) {
		t.Parallel()
		r := open(t, &Config{URL: testURL(t, "connection_limit=1&pool_timeout=1"), Env: Production})
		held, err := r.DB().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Rollback(ctx) //nolint:errcheck
		check := func(what string, err error) {
			t.Helper()
			var pte *PoolTimeoutError
			if !errors.As(err, &pte) || pte.MaxConns != 1 || pte.Timeout != time.Second {
				t.Errorf("%s with the only connection held = %v, want a *PoolTimeoutError with MaxConns 1 and Timeout 1s", what, err)
			}
		}
		check("Tx", r.Tx(ctx, nil, txFn))
		_, err = r.RecordEvalRun(ctx, run, nil)
		check("RecordEvalRun", err)
		if n := r.PoolStats().AcquireTimeouts; n != 2 {
			t.Errorf("PoolStats().AcquireTimeouts = %d, want 2 (one per call)", n)
		}
	})
}

func TestEnvironmentDefaults(t *testing.T) {
	t.Parallel()
	dbURL := testURL(t, "")
	for _, env := range []Environment{Development, Production, Test} {
		t.Run(string(env), func(t *testing.T) {
			r := open(t, &Config{URL: dbURL, Env: env})
			d := DefaultsFor(env)
			if got := r.PoolStats().MaxConns; got != d.MaxConns {
				t.Errorf("pool MaxConns = %d, want %d", got, d.MaxConns)
			}
			if got := r.Settings().PoolTimeout; got != d.PoolTimeout {
				t.Errorf("PoolTimeout = %s, want %s", got, d.PoolTimeout)
			}
		})
	}
	// Explicit parameters win over the environment.
	r := open(t, &Config{URL: dbURL + "&connection_limit=3", Env: Production})
	if got := r.PoolStats().MaxConns; got != 3 {
		t.Errorf("pool MaxConns with connection_limit=3 = %d, want 3", got)
	}
}

func TestPrismaParamsReachNoServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Every Prisma parameter at once: were any forwarded, the server would
	// refuse the connection ("unrecognized configuration parameter").
	r := open(t, &Config{URL: testURL(t, "connection_limit=3&pool_timeout=5&connect_timeout=5&socket_timeout=30"+
		"&pgbouncer=true&statement_cache_size=0&max_idle_connection_lifetime=60"), Env: Test})
	// schema cannot go with pgbouncer=true (PgBouncer rejects search_path at
	// connect), so it is checked on a pool of its own.
	rs := open(t, &Config{URL: testURL(t, "connection_limit=2&schema=public"), Env: Test})
	var sp string
	if err := rs.DB().QueryRow(ctx, "SHOW search_path").Scan(&sp); err != nil {
		t.Fatal(err)
	}
	if sp != "public" && sp != `"public"` {
		t.Errorf("search_path = %q, want public", sp)
	}
	// pgbouncer=true: a batch runs in exec mode (never simple protocol).
	b := &pgx.Batch{}
	b.Queue(gen.CreateUser, "b@example.com", "B")
	b.Queue(gen.GetUserByEmail, "B@example.com")
	br := r.DB().SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	var id int64
	var email, name string
	var created time.Time
	if err := br.QueryRow().Scan(&id, &email, &name, &created); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if email != "b@example.com" {
		t.Errorf("GetUserByEmail in batch = %q, want b@example.com", email)
	}
	if got := r.Settings().ExecMode; got != pgx.QueryExecModeExec {
		t.Errorf("ExecMode = %v, want exec", got)
	}
}

func TestLogLevels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testURL(t, "")
	run := func(t *testing.T, cfg Config) string {
		t.Helper()
		var logs logBuffer
		cfg.URL, cfg.Logger = dbURL, logs.logger()
		r := open(t, &cfg)
		q := r.Queries()
		email := fmt.Sprintf("%s-%d@example.com", cfg.Env, time.Now().UnixNano())
		if _, err := q.CreateUser(ctx, gen.CreateUserParams{Email: email, Name: "L"}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.CreateUser(ctx, gen.CreateUserParams{Email: email, Name: "L"}); err == nil {
			t.Fatal("duplicate CreateUser succeeded")
		}
		if _, err := r.DB().Exec(ctx, "-- name: Broken\nSELECT no_such_column FROM users"); err == nil {
			t.Fatal("a query of a missing column succeeded")
		}
		return logs.String()
	}
	has := func(logs, level, msg, query string) bool {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(line, `"msg":"`+msg+`"`) &&
				strings.Contains(line, `"query":"`+query+`"`) {
				return true
			}
		}
		return false
	}
	t.Run("DevelopmentLogsEveryQuery", func(t *testing.T) {
		t.Parallel()
		logs := run(t, Config{Env: Development})
		if !has(logs, "INFO", "evaldb: query", "CreateUser") || !strings.Contains(logs, `"args":"[\"development-`) {
			t.Errorf("development logs lack an INFO line for CreateUser with its args:\n%s", logs)
		}
		// A duplicate is an outcome the API returns as *ConflictError: a
		// warning, not an error.
		if !has(logs, "WARN", "evaldb: query conflicted with a unique constraint", "CreateUser") {
			t.Errorf("development logs lack the WARN line of the duplicate CreateUser:\n%s", logs)
		}
		if !has(logs, "ERROR", "evaldb: query failed", "Broken") {
			t.Errorf("development logs lack the failed query:\n%s", logs)
		}
	})
	t.Run("ProductionLogsErrorsOnly", func(t *testing.T) {
		t.Parallel()
		logs := run(t, Config{Env: Production})
		if has(logs, "INFO", "evaldb: query", "CreateUser") || strings.Contains(logs, `"args"`) {
			t.Errorf("production logs queries or arguments:\n%s", logs)
		}
		if !has(logs, "ERROR", "evaldb: query failed", "Broken") {
			t.Errorf("production logs lack the failed query:\n%s", logs)
		}
		if strings.Contains(logs, `"query":"CreateUser"`) {
			t.Errorf("production logs the duplicate CreateUser, an expected outcome:\n%s", logs)
		}
	})
	t.Run("SlowQueriesInEveryEnvironment", func(t *testing.T) {
		t.Parallel()
		// A threshold of 1ns makes every successful query slow.
		logs := run(t, Config{Env: Production, SlowQueryThreshold: time.Nanosecond})
		if !has(logs, "WARN", "evaldb: slow query", "CreateUser") {
			t.Errorf("production logs lack the slow-query warning:\n%s", logs)
		}
	})
	t.Run("NilLoggerIsQuiet", func(t *testing.T) {
		t.Parallel()
		r := open(t, &Config{URL: dbURL, Env: Development})
		if _, err := r.Queries().GetUser(ctx, -1); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetUser = %v, want ErrNotFound", err)
		}
	})
}

func TestMetricsCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, "connection_limit=1&pool_timeout=1"), Env: Test, Name: "metrics_test"})
	q := r.Queries()
	for range 3 {
		if _, err := q.GetUser(ctx, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetUser = %v, want ErrNotFound", err)
		}
	}
	if _, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "", Name: ""}); err == nil {
		t.Fatal("CreateUser with empty email succeeded, want a CHECK violation")
	}
	tx, err := r.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.GetUser(ctx, 1); !errors.Is(err, ErrPoolTimeout) {
		t.Fatalf("GetUser with the only connection held = %v, want ErrPoolTimeout", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got := gather(t, r)
	want := map[string]float64{
		`evaldb_queries_total{db="metrics_test",query="CreateUser"}`:             1,
		`evaldb_queries_total{db="metrics_test",query="GetUser"}`:                3,
		`evaldb_query_errors_total{db="metrics_test",query="CreateUser"}`:        1,
		`evaldb_query_errors_total{db="metrics_test",query="GetUser"}`:           0,
		`evaldb_query_duration_seconds_count{db="metrics_test",query="GetUser"}`: 3,
		`evaldb_pool_connections_max{db="metrics_test"}`:                         1,
		`evaldb_pool_acquire_timeouts_total{db="metrics_test"}`:                  1,
		`evaldb_pool_acquires_waited_total{db="metrics_test"}`:                   1,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
		}
	}
	if t.Failed() {
		t.Logf("gathered: %v", got)
	}
}

// gather registers r's collector on a pedantic registry (which checks the
// metrics are consistent with their descriptions) and flattens the result
// to "name{labels}" → value; histograms contribute name_count.
func gather(t *testing.T, r *Repo) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(r.Collector()); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[f.GetName()+key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[f.GetName()+key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[f.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestManyPoolsWarning(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	dbURL := testURL(t, "")
	for i := range manyPools {
		open(t, &Config{URL: dbURL, Env: Production, Logger: logs.logger()})
		warned := strings.Contains(logs.String(), "several pools to the same database")
		if want := i+1 >= manyPools; warned != want {
			t.Fatalf("after %d pools: warned = %v, want %v; logs:\n%s", i+1, warned, want, logs.String())
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback: nothing listens there.
	_, err := Open(context.Background(), &Config{URL: "postgres://app:" + secret + "@127.0.0.1:1/aah?connect_timeout=2&sslmode=disable"})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Open(port 1) = %v, want ErrUnreachable", err)
	}
	for _, w := range []string{"127.0.0.1:1", "check that the server is running"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the password: %v", err)
	}
}

// TestNoPasswordLeaks runs everything that logs or fails with a URL whose
// password is secret, with every log line kept, and scans it all.
func TestNoPasswordLeaks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs logBuffer
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	dbURL := testURL(t, "connection_limit=1&pool_timeout=1")
	r := open(t, &Config{URL: dbURL, Env: Development, Logger: logs.logger(), SlowQueryThreshold: time.Nanosecond})
	q := r.Queries()
	_, err := q.GetUser(ctx, 1)
	keep(err)
	_, err = q.CreateUser(ctx, gen.CreateUserParams{Email: secret + "@x", Name: "n"}) // an argument is not the DB password, but logged
	keep(err)
	_, err = q.CreateUser(ctx, gen.CreateUserParams{Email: "", Name: ""})
	keep(err)
	_, err = r.DB().Exec(ctx, "SELECT pg_sleep(0.01)")
	keep(err)
	tx, err := r.DB().Begin(ctx)
	keep(err)
	_, err = q.GetUser(ctx, 1)
	keep(err)
	if tx != nil {
		keep(tx.Rollback(ctx))
	}
	_, err = r.Stats(ctx)
	keep(err)
	for _, bad := range []string{"connection_limit=abc", "pool_timeout=-5", "require_auth=md5", "pool_max_conns=x", "sslaccept=strict"} {
		_, err := Open(ctx, &Config{URL: dbURL + "&" + bad, Logger: logs.logger()})
		if err == nil {
			t.Errorf("Open with %s succeeded", bad)
		}
		keep(err)
	}
	u, _ := url.Parse(dbURL)
	u.Host = "127.0.0.1:1"
	_, err = Open(ctx, &Config{URL: u.String() + "&connect_timeout=1", Logger: logs.logger()})
	keep(err)
	_, err = Open(ctx, &Config{URL: strings.Replace(dbURL, "@", "@[bad", 1), Logger: logs.logger()})
	keep(err)

	if len(errs) < 8 {
		t.Fatalf("only %d errors collected; the scenarios did not run", len(errs))
	}
	all := logs.String()
	for _, e := range errs {
		all += "\n" + e.Error() + "\n" + fmt.Sprintf("%+v %#v", e, e)
	}
	// The CreateUser argument legitimately contains the string; remove
	// that one argument before scanning.
	all = strings.ReplaceAll(all, secret+"@x", "ARG")
	if strings.Contains(all, secret) {
		i := strings.Index(all, secret)
		t.Errorf("the password appears in logs or errors: …%s…", all[max(0, i-200):min(len(all), i+50)])
	}
	if !strings.Contains(all, "evaldb: query") {
		t.Errorf("no query was logged; the scan proves nothing:\n%s", all)
	}
}

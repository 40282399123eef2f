// Package reliability_test holds evaldb's load, fault and hostile-input
// scenarios against a real PostgreSQL (issue 8; RELIABILITY.md has the
// method and the figures).
//
// Every scenario has a short version that runs in `make test` (bounded to a
// few seconds, and still failing when the property breaks) and a longer one
// enabled by EVALDB_RELIABILITY=long (`make reliability`). Scenarios that
// restart the server use a private cluster of their own, so the shared
// dbtest server of the other parallel tests is never disturbed. All traffic
// stays on loopback.
package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// long reports whether the long versions run (EVALDB_RELIABILITY=long).
func long() bool { return os.Getenv("EVALDB_RELIABILITY") == "long" }

// pick returns short in `make test` and long under EVALDB_RELIABILITY=long.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// secret is the password put into every URL the scenarios configure. The
// throwaway clusters use trust authentication, so any password connects;
// this one is distinctive and needs URL escaping, so both its raw and its
// escaped form are searched for.
const secret = "Rel/S3cret!pw-8d1f"

var secretForms = []string{secret, url.QueryEscape(secret), url.PathEscape(secret), "S3cret!pw-8d1f"}

// withPassword puts secret into rawURL's user info and appends params
// (already escaped, without the leading & or ?).
func withPassword(t testing.TB, rawURL, params string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse test URL: %v", err)
	}
	u.User = url.UserPassword(u.User.Username(), secret)
	if params != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += params
	}
	return u.String()
}

// dbName is the database name of a URL.
func dbName(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// leaks counts and remembers every text that contained the secret.
type leaks struct {
	mu      sync.Mutex
	found   []string
	scanned atomic.Int64
}

func (l *leaks) scan(where, text string) {
	l.scanned.Add(1)
	for _, f := range secretForms {
		if strings.Contains(text, f) {
			l.mu.Lock()
			if len(l.found) < 20 {
				l.found = append(l.found, fmt.Sprintf("%s: %q", where, text))
			}
			l.mu.Unlock()
			return
		}
	}
}

func (l *leaks) scanErr(where string, err error) {
	if err != nil {
		l.scan(where, fmt.Sprintf("%v | %+v | %#v", err, err, err))
	}
}

// check fails the test for every leak found; call it at the end.
func (l *leaks) check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.found {
		t.Errorf("the password appears in %s", f)
	}
	if l.scanned.Load() == 0 {
		t.Errorf("the secret scan saw nothing: the scenario produced no log line or error to check")
	}
}

// scanHandler is a slog.Handler that formats every record as JSON (at every
// level, Debug included), scans it for the secret and keeps the last lines
// for failure messages.
type scanHandler struct {
	h    slog.Handler
	mu   *sync.Mutex
	buf  *bytes.Buffer
	l    *leaks
	seen *atomic.Int64
}

func newScanLogger(l *leaks) (*slog.Logger, *atomic.Int64) {
	buf := &bytes.Buffer{}
	seen := &atomic.Int64{}
	h := &scanHandler{h: slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		mu: &sync.Mutex{}, buf: buf, l: l, seen: seen}
	return slog.New(h), seen
}

func (s *scanHandler) Enabled(context.Context, slog.Level) bool { return true }

func (s *scanHandler) Handle(ctx context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	if err := s.h.Handle(ctx, r); err != nil {
		return err
	}
	s.seen.Add(1)
	s.l.scan("log line", s.buf.String())
	return nil
}

func (s *scanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *s
	c.h = s.h.WithAttrs(as)
	return &c
}

func (s *scanHandler) WithGroup(name string) slog.Handler {
	c := *s
	c.h = s.h.WithGroup(name)
	return &c
}

// openRepo opens a Repo on rawURL (which must carry the secret) with a
// scanning logger at Debug level, so that every line the Repo can log is
// produced and scanned. The Repo is closed when the test ends.
func openRepo(t testing.TB, ctx context.Context, rawURL string, l *leaks) *repo.Repo {
	t.Helper()
	logger, _ := newScanLogger(l)
	r, err := repo.Open(ctx, &repo.Config{URL: rawURL, Env: repo.Development, Logger: logger, LogLevel: slog.LevelDebug})
	l.scanErr("repo.Open error", err)
	if err != nil {
		t.Fatalf("repo.Open: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// adminPool is a small pool on the server's maintenance database, as the
// superuser, for pg_stat_activity and pg_terminate_backend.
func adminPool(t testing.TB, adminURL string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// listenerApp is the application_name of the cache's LISTEN connection,
// which repo opens beside the pool (so outside connection_limit).
const listenerApp = "evaldb-cache-listener"

// backends counts the server processes connected to database db other
// than the cache listener's: the pool's connections as the server sees
// them. active counts those running a statement.
func backends(ctx context.Context, admin *pgxpool.Pool, db string) (total int, active int, err error) {
	err = admin.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'active')
		FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'
		AND application_name IS DISTINCT FROM $2`, db, listenerApp).Scan(&total, &active)
	return total, active, err
}

// runningQueries counts the active statements on the server whose text
// contains marker (other than the one asking).
func runningQueries(ctx context.Context, admin *pgxpool.Pool, marker string) (int, error) {
	var n int
	err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0`, marker).Scan(&n)
	return n, err
}

// waitFor polls cond every 20 ms until it holds or bound passes, and
// reports whether it held. It is a bounded wait, not a timing assertion:
// bound is far above what the condition needs.
func waitFor(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// makeRun builds a deterministic run with n results and 3 metrics.
func makeRun(id uuid.UUID, n int) txn.Run {
	run := txn.Run{ID: id, Name: "reliability " + id.String()[:8], Model: "model-r", Dataset: "dataset-r",
		Config: []byte(`{"temperature": 0.5}`)}
	for i := range n {
		var e *string
		if i%7 == 3 {
			s := fmt.Sprintf("error %d", i)
			e = &s
		}
		run.Results = append(run.Results, txn.Result{CaseID: fmt.Sprintf("case-%05d", i), Input: "in", Expected: "x",
			Output: "x", Score: float64(i%10) / 10, Passed: i%3 != 0, LatencyMs: int32(i), PromptTokens: 10, CompletionTokens: 5, Error: e})
	}
	run.Metrics = []txn.Metric{{Name: "accuracy", Value: 0.5}, {Name: "n", Value: float64(n)}, {Name: "f1", Value: 0.25}}
	return run
}

// stored is what the database holds for one run id, or (storedAll) in all.
type stored struct {
	Runs, Results, Metrics int
}

func storedRun(ctx context.Context, p *pgxpool.Pool, id uuid.UUID) (stored, error) {
	var s stored
	err := p.QueryRow(ctx, `SELECT (SELECT count(*) FROM eval_runs WHERE id = $1),
		(SELECT count(*) FROM eval_results WHERE run_id = $1),
		(SELECT count(*) FROM eval_metrics WHERE run_id = $1)`, id).Scan(&s.Runs, &s.Results, &s.Metrics)
	return s, err
}

func storedAll(ctx context.Context, p *pgxpool.Pool) (stored, error) {
	var s stored
	err := p.QueryRow(ctx, `SELECT (SELECT count(*) FROM eval_runs), (SELECT count(*) FROM eval_results),
		(SELECT count(*) FROM eval_metrics)`).Scan(&s.Runs, &s.Results, &s.Metrics)
	return s, err
}

// plainPool is a pool without evaldb's layers on rawURL, for checking what
// the database holds.
func plainPool(t testing.TB, rawURL string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// scanMetrics gathers the Repo's and its cache's Prometheus metrics and
// scans every metric name, label name, label value and help text.
func scanMetrics(t testing.TB, r *repo.Repo, l *leaks) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collector())
	if c := r.Cache(); c != nil {
		reg.MustRegister(c.Collector())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Errorf("gather metrics: %v", err)
	}
	for _, f := range families {
		l.scan("metric family", f.GetName()+" "+f.GetHelp())
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				l.scan("metric label of "+f.GetName(), lp.GetName()+"="+lp.GetValue())
			}
		}
	}
}

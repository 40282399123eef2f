package dbtest

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/internal/pgcluster"
)

// PgBouncerPoolSize is the default_pool_size of the shared PgBouncer: the
// most server connections it opens per database and user. Small on
// purpose, so that tests show clients sharing few server connections.
const PgBouncerPoolSize = 4

var (
	bouncerOnce sync.Once
	bouncer     *pgcluster.PgBouncer
	bouncerErr  error
)

// PgBouncer returns the PgBouncer shared by the tests of this binary, in
// transaction pooling mode with PgBouncerPoolSize server connections per
// database, in front of the server of GetServer. It is started on first
// use and stopped by Main. When pgbouncer is not installed the test fails
// under CI and is skipped elsewhere, with a message saying what to install.
func PgBouncer(t testing.TB) *pgcluster.PgBouncer {
	t.Helper()
	s := GetServer(t)
	bouncerOnce.Do(func() { bouncer, bouncerErr = startBouncer(s) })
	if bouncerErr != nil {
		ci, _ := strconv.ParseBool(os.Getenv("CI"))
		if !ci && errors.Is(bouncerErr, pgcluster.ErrNoPgBouncer) {
			t.Skipf("dbtest: %v", bouncerErr)
		}
		t.Fatalf("dbtest: start PgBouncer: %v", bouncerErr)
	}
	return bouncer
}

func startBouncer(s *Server) (*pgcluster.PgBouncer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := pgcluster.BouncerOptions{PoolMode: "transaction", PoolSize: PgBouncerPoolSize}
	if s.Cluster != nil {
		return s.Cluster.StartPgBouncer(ctx, o)
	}
	cfg, err := pgconn.ParseConfig(s.AdminURL)
	if err != nil {
		return nil, err
	}
	o.UpstreamHost, o.UpstreamPort = cfg.Host, int(cfg.Port)
	o.UpstreamUser, o.UpstreamPassword = cfg.User, cfg.Password
	return pgcluster.StartPgBouncer(ctx, o)
}

// PgBouncerURL rewrites dbURL, a URL from URL or Server.DatabaseURL, to
// reach the same database through the shared PgBouncer (see PgBouncer): it
// changes host and port and keeps user, password, database and parameters.
// pgx needs exec mode through it; for repo.Open add pgbouncer=true.
func PgBouncerURL(t testing.TB, dbURL string) string {
	t.Helper()
	b := PgBouncer(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("dbtest: PgBouncerURL: parse %s: %v", redact(dbURL), err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port))
	return u.String()
}

func stopBouncer() {
	if bouncer != nil {
		bouncer.Stop()
	}
}

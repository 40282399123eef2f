package pgcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/pgcluster"
)

func start(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	c, err := pgcluster.Start(context.Background(), opts)
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); !ci && err == pgcluster.ErrNoBinaries {
			t.Skip(err)
		}
		t.Fatalf("Start() error = %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop() error = %v", err)
		}
	})
	return c
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// TestStartRestartStop covers the throwaway cluster's life: it answers,
// keeps its data across a restart on the same port, and leaves nothing
// behind once stopped.
func TestStartRestartStop(t *testing.T) {
	t.Parallel()
	c := start(t, pgcluster.Options{})
	if got := query(t, c.URL("postgres"), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %s, want off on a throwaway cluster", got)
	}
	if got := pgcluster.Running(c.DataDir); got != c.Port {
		t.Errorf("Running(%s) = %d, want %d", c.DataDir, got, c.Port)
	}
	exec(t, c.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	port := c.Port
	if err := c.Restart(context.Background()); err != nil {
		t.Fatalf("Restart() error = %v", err)
	}
	if c.Port != port {
		t.Errorf("port after restart = %d, want %d", c.Port, port)
	}
	if got := query(t, c.URL("postgres"), "SELECT v FROM kept"); got != "yes" {
		t.Errorf("after restart, kept.v = %q, want yes", got)
	}
	dir := c.DataDir
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir %s still exists after Stop (err %v)", dir, err)
	}
	if got := pgcluster.Running(dir); got != 0 {
		t.Errorf("Running() after Stop = %d, want 0", got)
	}
}

// TestPersistentDataDir checks the embedded default's mode: a given data
// directory survives Stop and is reused by the next Start.
func TestPersistentDataDir(t *testing.T) {
	t.Parallel()
	td := t.TempDir()
	if os.Geteuid() == 0 {
		// The test's temporary root is 0700 root: open it to the postgres
		// user that the server runs as.
		if err := os.Chmod(filepath.Dir(td), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(td, "pg", "data")
	c := start(t, pgcluster.Options{DataDir: dir, Durable: true})
	if got := query(t, c.URL("postgres"), "SHOW fsync"); got != "on" {
		t.Errorf("fsync = %s, want on for a durable cluster", got)
	}
	exec(t, c.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	c2 := start(t, pgcluster.Options{DataDir: dir, Durable: true})
	if got := query(t, c2.URL("postgres"), "SELECT v FROM kept"); got != "yes" {
		t.Errorf("second start: kept.v = %q, want yes", got)
	}
}

// TestPgBouncerTransactionMode checks that the harness's PgBouncer pools in
// transaction mode: two transactions of one client may run on different
// server connections, and the server sees no more than the pool size.
func TestPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	c := start(t, pgcluster.Options{})
	b, err := c.StartPgBouncer(context.Background(), pgcluster.BouncerOptions{PoolSize: 2})
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); !ci && err == pgcluster.ErrNoPgBouncer {
			t.Skip(err)
		}
		t.Fatalf("StartPgBouncer() error = %v", err)
	}
	t.Cleanup(b.Stop)
	ctx := context.Background()
	var conns []*pgx.Conn
	for range 6 {
		cfg, err := pgx.ParseConfig(b.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("connect through pgbouncer: %v", err)
		}
		defer conn.Close(ctx)
		conns = append(conns, conn)
	}
	for _, conn := range conns {
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 through pgbouncer = %d, %v", one, err)
		}
	}
	got := query(t, c.URL("postgres"), `SELECT count(*)::text FROM pg_stat_activity
		WHERE datname = 'postgres' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`)
	if n, _ := strconv.Atoi(got); n > 2 {
		t.Errorf("server sees %d connections from pgbouncer, want at most its pool size 2", n)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaStreams checks the streaming replica: it is in recovery and
// receives what the primary commits.
func TestReplicaStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t, pgcluster.Options{})
	exec(t, c.URL("postgres"), "CREATE TABLE r (v int)")
	rep, err := c.StartReplica(ctx)
	if err != nil {
		t.Fatalf("StartReplica() error = %v", err)
	}
	t.Cleanup(func() { _ = rep.Stop() })
	if got := query(t, rep.URL("postgres"), "SELECT pg_is_in_recovery()::text"); got != "true" {
		t.Fatalf("replica pg_is_in_recovery() = %s, want true", got)
	}
	exec(t, c.URL("postgres"), "INSERT INTO r VALUES (42)")
	// The insert position: with synchronous_commit=off the write position
	// (pg_current_wal_lsn) can still be behind the INSERT's commit record.
	lsn := query(t, c.URL("postgres"), "SELECT pg_current_wal_insert_lsn()::text")
	conn, err := pgx.Connect(ctx, rep.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Wait (bounded) until the replica has replayed the insert's position.
	for i := 0; ; i++ {
		var caught bool
		if err := conn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&caught); err != nil {
			t.Fatal(err)
		}
		if caught {
			break
		}
		if i == 500 {
			t.Fatalf("replica did not replay %s", lsn)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := query(t, rep.URL("postgres"), "SELECT v::text FROM r"); got != "42" {
		t.Errorf("replica r.v = %s, want 42", got)
	}
}

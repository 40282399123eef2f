package dbtest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestURLIsolatedAndMigrated checks that two tests' databases are distinct
// and both hold the full schema.
func TestURLIsolatedAndMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := dbtest.URL(t), dbtest.URL(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	for _, u := range []string{a, b} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
			WHERE table_schema = 'public' AND table_name IN
			('users','student_profiles','performance_metrics','eval_runs','eval_results','eval_metrics')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 6 {
			t.Errorf("database %s has %d of the 6 tables", u, n)
		}
		conn.Close(ctx)
	}
	// A write in one database is invisible in the other.
	pa, pb := mustConnect(t, a), mustConnect(t, b)
	if _, err := pa.Exec(ctx, `INSERT INTO users (email, name) VALUES ('a@example.com', 'A')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pb.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database b sees %d users written to database a", n)
	}
}

func mustConnect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestDatabaseDroppedAfterTest checks the cleanup: a subtest's database is
// gone once the subtest ends.
func TestDatabaseDroppedAfterTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("Inner", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(dbtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
	})
	admin := mustConnect(t, dbtest.GetServer(t).AdminURL)
	var exists bool
	if err := admin.QueryRow(context.Background(),
		`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestSchemaHashStable(t *testing.T) {
	t.Parallel()
	h1, err := dbtest.SchemaHash()
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := dbtest.SchemaHash()
	if diff := cmp.Diff(h1, h2); diff != "" || len(h1) != 16 {
		t.Errorf("SchemaHash() = %q then %q, want the same 16 hex digits", h1, h2)
	}
}

// TestThrowawayClusterIsPrivate checks where the throwaway cluster lives: its
// socket directory and data directory are under one temporary directory that
// Main removes.
func TestThrowawayClusterIsPrivate(t *testing.T) {
	t.Parallel()
	s := dbtest.GetServer(t)
	if s.Cluster == nil {
		t.Skip("TEST_DATABASE_URL is set: no throwaway cluster to inspect")
	}
	if filepath.Dir(s.Cluster.SockDir) != filepath.Dir(s.Cluster.DataDir) {
		t.Errorf("socket dir %s and data dir %s do not share a private parent", s.Cluster.SockDir, s.Cluster.DataDir)
	}
	if _, err := os.Stat(filepath.Join(s.Cluster.DataDir, "postmaster.pid")); err != nil {
		t.Errorf("no postmaster.pid in the data dir: %v", err)
	}
}

// BenchmarkNewDatabase measures what a test pays for its own migrated
// database: a clone of the template (the drops run at cleanup, untimed).
func BenchmarkNewDatabase(b *testing.B) {
	dbtest.URL(b) // start the server and build the template outside the timing
	b.ResetTimer()
	for b.Loop() {
		dbtest.URL(b)
	}
}

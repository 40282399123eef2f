package schema_test

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/schema"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func tables(t *testing.T, dbURL string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT IN ('goose_db_version', $1) ORDER BY 1`, schema.ChangesTable)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// allTables are the tables the migrations create, as cachegen derived them.
var allTables = schema.Tables

// allVersions are the versions of the migrations in schema.FS.
func allVersions(t *testing.T) []int64 {
	t.Helper()
	files, err := fs.Glob(schema.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var vs []int64
	for _, f := range files {
		n, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)

	applied, err := schema.Migrate(ctx, dbURL)
	if err != nil {
		t.Fatalf("Migrate() error = %v", err)
	}
	if diff := cmp.Diff(allVersions(t), applied); diff != "" {
		t.Errorf("Migrate() applied mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(allTables, tables(t, dbURL)); diff != "" {
		t.Errorf("tables after up (-want +got):\n%s", diff)
	}

	db := openDB(t, dbURL)
	p, err := schema.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("DownTo(0) error = %v", err)
	}
	if got := tables(t, dbURL); len(got) != 0 {
		t.Errorf("tables after down = %v, want none", got)
	}

	applied, err = schema.Migrate(ctx, dbURL)
	if err != nil {
		t.Fatalf("Migrate() again error = %v", err)
	}
	if diff := cmp.Diff(allVersions(t), applied); diff != "" {
		t.Errorf("second Migrate() applied mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(allTables, tables(t, dbURL)); diff != "" {
		t.Errorf("tables after up, down, up (-want +got):\n%s", diff)
	}
}

// TestMigrateConcurrent runs several migrators at once: the advisory lock
// makes each migration apply exactly once.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)

	const n = 4
	var wg sync.WaitGroup
	results := make([][]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = schema.Migrate(ctx, dbURL) })
	}
	wg.Wait()
	var total []int64
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total = append(total, results[i]...)
	}
	if diff := cmp.Diff(allVersions(t), total); diff != "" {
		t.Errorf("versions applied across all migrators (-want +got):\n%s", diff)
	}
}

func TestMigrateRejectsBadURL(t *testing.T) {
	t.Parallel()
	_, err := schema.Migrate(context.Background(), "postgres://user:s3cret@[::1")
	if err == nil {
		t.Fatal("Migrate() with a malformed URL succeeded")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Errorf("error leaks the password: %s", got)
	}
}

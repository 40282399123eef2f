package dbtest_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/dbtest"
)

// TestPgBouncerURL checks that the rewritten URL reaches the test's own,
// migrated database on the test server, through PgBouncer.
func TestPgBouncerURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct := dbtest.URL(t)
	bounced := dbtest.PgBouncerURL(t, direct)
	if bounced == direct {
		t.Fatalf("PgBouncerURL(%s) returned it unchanged", direct)
	}
	cfg, err := pgx.ParseConfig(bounced)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through PgBouncer: %v", err)
	}
	defer conn.Close(ctx)
	dcfg, _ := pgx.ParseConfig(direct)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != dcfg.Database {
		t.Errorf("current_database() through PgBouncer = %q, want %q", db, dcfg.Database)
	}
	var port string
	if err := conn.QueryRow(ctx, "SHOW port").Scan(&port); err != nil {
		t.Fatal(err)
	}
	if port != strconv.Itoa(int(dcfg.Port)) {
		t.Errorf("server port through PgBouncer = %s, want the server's %d", port, dcfg.Port)
	}
	// The migrated schema is there.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM eval_runs").Scan(&n); err != nil {
		t.Errorf("query the schema through PgBouncer: %v", err)
	}
}

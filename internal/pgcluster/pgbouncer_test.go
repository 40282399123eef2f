package pgcluster_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/pgcluster"
)

// TestStartPgBouncerUpstream checks PgBouncer in front of a server given
// by host, port and role (as for TEST_DATABASE_URL): every server
// connection logs in as UpstreamUser, whatever the client's user.
func TestStartPgBouncerUpstream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t, pgcluster.Options{})
	exec(t, c.URL("postgres"), "CREATE ROLE app LOGIN PASSWORD 'p''w\\x'")
	if _, err := pgcluster.StartPgBouncer(ctx, pgcluster.BouncerOptions{}); err == nil {
		t.Fatal("StartPgBouncer() without UpstreamPort: error = nil, want one")
	}
	b, err := pgcluster.StartPgBouncer(ctx, pgcluster.BouncerOptions{
		UpstreamPort: c.Port, UpstreamUser: "app", UpstreamPassword: `p'w\x`, PoolSize: 1,
	})
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); !ci && errors.Is(err, pgcluster.ErrNoPgBouncer) {
			t.Skip(err)
		}
		t.Fatalf("StartPgBouncer() error = %v", err)
	}
	t.Cleanup(b.Stop)
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
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user::text").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "app" {
		t.Errorf("current_user through PgBouncer = %q, want the upstream user app", user)
	}
}

package queries_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// holdIdleInTx acquires a connection of pool and leaves it idle inside an
// open transaction until the test ends.
func holdIdleInTx(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("SELECT 1 in transaction: %v", err)
	}
}

func countByState(t *testing.T, db gen.DBTX) map[string]int64 {
	t.Helper()
	rows, err := gen.New(db).CountConnectionsByState(context.Background())
	if err != nil {
		t.Fatalf("CountConnectionsByState: %v", err)
	}
	if !slices.IsSortedFunc(rows, func(a, b gen.CountConnectionsByStateRow) int { return strings.Compare(a.State, b.State) }) {
		t.Errorf("CountConnectionsByState rows not ordered by state: %+v", rows)
	}
	m := map[string]int64{}
	for _, r := range rows {
		if _, dup := m[r.State]; dup || r.State == "" || r.Connections < 1 {
			t.Errorf("CountConnectionsByState: bad row %+v in %+v", r, rows)
		}
		m[r.State] = r.Connections
	}
	return m
}

func TestCountConnectionsByState(t *testing.T) {
	t.Parallel()
	pool, _ := setup(t)
	ctx := context.Background()

	// Another test database with two connections idle in a transaction:
	// they must not be counted for this one.
	otherPool := dbtest.Pool(t)
	holdIdleInTx(t, otherPool)
	holdIdleInTx(t, otherPool)

	// This database: one idle connection held out of the pool, one idle in
	// a transaction, and the one running the query (active).
	idle, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer idle.Release()
	if err := idle.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	holdIdleInTx(t, pool)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer conn.Release()

	got := countByState(t, conn)
	if got["active"] < 1 {
		t.Errorf("active = %d, want >= 1 (the connection running the query): %v", got["active"], got)
	}
	if got["idle"] < 1 {
		t.Errorf("idle = %d, want >= 1 (a connection held idle): %v", got["idle"], got)
	}
	if got["idle in transaction"] != 1 {
		t.Errorf("idle in transaction = %d, want exactly 1 (the other database's two must not count): %v", got["idle in transaction"], got)
	}

	// Seen from the other database, its two idle transactions are there.
	oc, err := otherPool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire other: %v", err)
	}
	defer oc.Release()
	if other := countByState(t, oc); other["idle in transaction"] != 2 {
		t.Errorf("other database: idle in transaction = %d, want 2: %v", other["idle in transaction"], other)
	}

	// The premise: the held connection really is idle.
	var pid uint32
	if err := idle.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("pg_backend_pid: %v", err)
	}
	var state string
	if err := conn.QueryRow(ctx, "SELECT state FROM pg_stat_activity WHERE pid = $1", pid).Scan(&state); err != nil {
		t.Fatalf("state of held connection: %v", err)
	}
	if state != "idle" {
		t.Errorf("held connection's state = %q, want idle", state)
	}
}

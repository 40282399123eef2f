package cachewrap

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/querymeta"
)

func TestCheckTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	newCache := func() *Cache {
		c, err := New(gen.New(pool), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	// A migrated database has every trigger: nothing changes.
	c := newCache()
	if missing, err := c.CheckTriggers(ctx, pool, nil, nil); err != nil || len(missing) != 0 {
		t.Fatalf("CheckTriggers() on a migrated database = %v, %v; want none missing", missing, err)
	}
	if c.off[querymeta.GetUser] {
		t.Error("GetUser is uncached although users has its trigger")
	}

	if _, err := pool.Exec(ctx, `DROP TRIGGER users_notify_invalidate ON users`); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c = newCache()
	missing, err := c.CheckTriggers(ctx, pool, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"users"}, missing); diff != "" {
		t.Errorf("CheckTriggers() missing (-want +got):\n%s", diff)
	}
	if !c.off[querymeta.GetUser] || !c.off[querymeta.GetUserByEmail] {
		t.Error("reads of users are still cached without its trigger")
	}
	if c.off[querymeta.GetEvalRun] {
		t.Error("GetEvalRun is uncached although eval_runs has its trigger")
	}
	if !strings.Contains(logs.String(), "no cache notification trigger on users") || !strings.Contains(logs.String(), "TTLOnly") {
		t.Errorf("warning does not name users and the way out:\n%s", logs.String())
	}

	// TTL-only staleness accepted: cached as before.
	c = newCache()
	if missing, err := c.CheckTriggers(ctx, pool, []string{"users"}, nil); err != nil || len(missing) != 0 || c.off[querymeta.GetUser] {
		t.Errorf("CheckTriggers(TTLOnly users) = %v, %v, GetUser off %v; want it cached", missing, err, c.off[querymeta.GetUser])
	}
}

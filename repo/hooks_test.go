package repo

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// countingTracer counts the statements pgx traces.
type countingTracer struct{ queries atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The pool hooks run, and the user's tracer runs beside evaldb's (whose
// per-query metrics still count) instead of replacing it or being replaced.
func TestPoolHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		tr                              countingTracer
		poolTracer                      countingTracer
		before, after, configured       atomic.Int64
		appNameSeenByServerBeforeRename string
	)
	r := open(t, &Config{
		URL: testURL(t, "connection_limit=1"), Env: Test, DisableCache: true, DisableListen: true,
		Tracer: &tr,
		BeforeConnect: func(_ context.Context, cc *pgx.ConnConfig) error {
			before.Add(1)
			cc.RuntimeParams["application_name"] = "hooked" // as a fresh IAM token would be set
			return nil
		},
		AfterConnect: func(ctx context.Context, c *pgx.Conn) error {
			after.Add(1)
			return c.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&appNameSeenByServerBeforeRename)
		},
		ConfigurePool: func(pc *pgxpool.Config) error {
			configured.Add(1)
			pc.ConnConfig.Tracer = &poolTracer
			return nil
		},
	})
	if _, err := r.Queries().GetUser(ctx, -1); err == nil {
		t.Fatal("GetUser(-1) found a user")
	}
	if before.Load() < 1 || after.Load() < 1 || configured.Load() != 1 {
		t.Errorf("BeforeConnect ran %d times, AfterConnect %d, ConfigurePool %d; want >= 1, >= 1, 1", before.Load(), after.Load(), configured.Load())
	}
	if appNameSeenByServerBeforeRename != "hooked" {
		t.Errorf("application_name on the server = %q, want BeforeConnect's %q", appNameSeenByServerBeforeRename, "hooked")
	}
	if tr.queries.Load() == 0 || poolTracer.queries.Load() == 0 {
		t.Errorf("Config.Tracer saw %d statements, ConfigurePool's tracer %d; want both > 0", tr.queries.Load(), poolTracer.queries.Load())
	}
	found := false
	for _, q := range r.Metrics().Snapshot() {
		found = found || (q.Name == "GetUser" && q.Count == 1)
	}
	if !found {
		t.Errorf("evaldb's metrics lack the GetUser: %+v", r.Metrics().Snapshot())
	}
}

package schema_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/schema"
)

// TestSummaryMigrationDown rolls back migration 00005 (and any later): the stored
// summaries, their view, function and triggers go, eval_results takes
// writes as before, and migrating up again brings them all back.
func TestSummaryMigrationDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	if _, err := schema.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	objects := func() []string {
		t.Helper()
		rows, _ := conn.Query(ctx, `
			SELECT 'relation ' || relname FROM pg_class WHERE relname IN ('eval_run_summaries', 'eval_run_summaries_live')
			UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname = 'eval_results_forget_summaries'
			UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = 'eval_results'::regclass AND NOT tgisinternal
			ORDER BY 1`)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	up := []string{
		"function eval_results_forget_summaries",
		"relation eval_run_summaries", "relation eval_run_summaries_live",
		"trigger eval_results_forget_summaries_delete", "trigger eval_results_forget_summaries_insert",
		"trigger eval_results_forget_summaries_truncate", "trigger eval_results_forget_summaries_update",
		"trigger eval_results_notify_invalidate",
	}
	if diff := cmp.Diff(up, objects()); diff != "" {
		t.Fatalf("after up (-want +got):\n%s", diff)
	}

	db := openDB(t, dbURL)
	p, err := schema.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("DownTo(4) = %v", err)
	}
	if diff := cmp.Diff([]string{"trigger eval_results_notify_invalidate"}, objects()); diff != "" {
		t.Errorf("after down (-want +got):\n%s", diff)
	}
	for _, s := range []string{
		`INSERT INTO eval_runs (id, name, model, dataset) VALUES ('018f0000-0000-7000-8000-000000000005', 'r', 'm', 'd')`,
		`INSERT INTO eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms)
		 VALUES ('018f0000-0000-7000-8000-000000000005', 'c', '', '', '', 1, true, 1)`,
		`DELETE FROM eval_results`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Errorf("after down: %s: %v", s, err)
		}
	}

	if _, err := schema.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("Migrate() after down = %v", err)
	}
	if diff := cmp.Diff(up, objects()); diff != "" {
		t.Errorf("after down and up (-want +got):\n%s", diff)
	}
}

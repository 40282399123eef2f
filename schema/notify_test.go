package schema_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/dbtest"
)

// TestInvalidationNotifications checks the notification triggers: a
// committed write notifies evaldb_invalidate with the table's name, once
// per table per transaction; a rolled-back write notifies nothing; cascaded
// deletes and TRUNCATE name every table they change.
//
// The expectations are of the tables of evaldb's first migrations; a later
// migration (evaldb's or a user's) may add tables that these statements
// also change, through a trigger, a rule or a foreign key. Their
// notifications are allowed: each step must notify exactly its wanted
// tables among those first ones, and may notify others.
func TestInvalidationNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	listener, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN evaldb_invalidate"); err != nil {
		t.Fatal(err)
	}
	writer, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)

	// received collects notifications until the marker that the test sends
	// after each step arrives: everything committed before it has arrived
	// too, since notifications are delivered in commit order.
	received := func() []string {
		t.Helper()
		if _, err := writer.Exec(ctx, "SELECT pg_notify('evaldb_invalidate', 'marker')"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			n, err := listener.WaitForNotification(wctx)
			cancel()
			if err != nil {
				t.Fatalf("wait for notification (got %v so far): %v", got, err)
			}
			if n.Payload == "marker" {
				sort.Strings(got)
				return got
			}
			got = append(got, n.Payload)
		}
	}
	first := map[string]bool{"users": true, "student_profiles": true, "performance_metrics": true,
		"eval_runs": true, "eval_results": true, "eval_metrics": true, "eval_run_summaries": true}
	step := func(name string, want []string, sql ...string) {
		t.Helper()
		for _, s := range sql {
			if _, err := writer.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %s: %v", name, s, err)
			}
		}
		var got []string
		for _, tb := range received() {
			if first[tb] {
				got = append(got, tb)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: notifications (-want +got):\n%s", name, diff)
		}
	}

	step("Insert", []string{"users"},
		`INSERT INTO users (email, name) VALUES ('a@x.io', 'A'), ('b@x.io', 'B')`)
	step("OnePerTablePerTransaction", []string{"student_profiles", "users"},
		`BEGIN`,
		`UPDATE users SET name = 'A2' WHERE email = 'a@x.io'`,
		`UPDATE users SET name = 'B2' WHERE email = 'b@x.io'`,
		`INSERT INTO student_profiles (user_id, student_id) SELECT id, 's-' || id FROM users`,
		`COMMIT`)
	step("RollbackNotifiesNothing", nil,
		`BEGIN`, `DELETE FROM users`, `ROLLBACK`)
	step("UpdateMatchingNoRows", []string{"users"},
		`UPDATE users SET name = 'x' WHERE false`)
	step("InsertSelect", []string{"performance_metrics"},
		`INSERT INTO performance_metrics (student_profile_id, name, value) SELECT id, 'm', 1 FROM student_profiles`)
	step("CascadeDelete", []string{"performance_metrics", "student_profiles", "users"},
		`DELETE FROM users`)
	step("EvalTables", []string{"eval_metrics", "eval_results", "eval_runs"},
		`BEGIN`,
		`INSERT INTO eval_runs (id, name, model, dataset) VALUES ('018f0000-0000-7000-8000-000000000001', 'r', 'm', 'd')`,
		`INSERT INTO eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms)
		 VALUES ('018f0000-0000-7000-8000-000000000001', 'c', 'i', 'e', 'o', 1, true, 1)`,
		`INSERT INTO eval_metrics (run_id, name, value) VALUES ('018f0000-0000-7000-8000-000000000001', 'acc', 1)`,
		`COMMIT`)
	// Migration 00005's triggers delete a run's stored summary when its
	// results change, and only then write (and so name) eval_run_summaries.
	step("StoreSummary", []string{"eval_run_summaries"},
		`INSERT INTO eval_run_summaries (run_id, result_count, passed_count, pass_rate, mean_score, p50_latency_ms, p95_latency_ms)
		 SELECT run_id, result_count, passed_count, pass_rate, mean_score, p50_latency_ms, p95_latency_ms
		 FROM eval_run_summaries_live WHERE run_id = '018f0000-0000-7000-8000-000000000001'`)
	step("ResultOfSummarisedRun", []string{"eval_results", "eval_run_summaries"},
		`INSERT INTO eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms)
		 VALUES ('018f0000-0000-7000-8000-000000000001', 'c2', 'i', 'e', 'o', 1, true, 1)`)
	step("ResultOfRunWithoutSummary", []string{"eval_results"},
		`UPDATE eval_results SET score = 0 WHERE case_id = 'c2'`)
	step("Truncate", []string{"eval_metrics", "eval_results", "eval_run_summaries", "eval_runs"},
		`TRUNCATE eval_runs CASCADE`)
}

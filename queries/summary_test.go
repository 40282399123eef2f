package queries_test

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
)

// The stored run summary (migration 00005): InsertEvalRunSummary stores
// what eval_run_summaries_live computes, GetEvalRunSummary reads it, and the
// triggers of eval_results delete it whenever a run's results change.

// wantSummary computes a run's summary in Go from its results as they are in
// the database now: the independent reference for both of GetEvalRunSummary's
// branches.
func wantSummary(t *testing.T, db gen.DBTX, id uuid.UUID) gen.GetEvalRunSummaryRow {
	t.Helper()
	ctx := context.Background()
	want := gen.GetEvalRunSummaryRow{ID: id}
	if err := db.QueryRow(ctx, `SELECT status FROM eval_runs WHERE id = $1`, id).Scan(&want.Status); err != nil {
		t.Fatalf("read the run's status: %v", err)
	}
	rows, err := db.Query(ctx, `SELECT score, passed, latency_ms FROM eval_results WHERE run_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	var lat []float64
	sum := new(big.Float) // exact: float64 would overflow where the server does not
	for rows.Next() {
		var score float64
		var passed bool
		var l int32
		if err := rows.Scan(&score, &passed, &l); err != nil {
			t.Fatal(err)
		}
		want.ResultCount++
		if passed {
			want.PassedCount++
		}
		sum.Add(sum, new(big.Float).SetFloat64(score))
		lat = append(lat, float64(l))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want.ResultCount > 0 {
		n := float64(want.ResultCount)
		mean, _ := new(big.Float).Quo(sum, big.NewFloat(n)).Float64()
		want.PassRate, want.MeanScore = float64(want.PassedCount)/n, mean
		want.P50LatencyMs, want.P95LatencyMs = percentileCont(lat, 0.5), percentileCont(lat, 0.95)
	}
	return want
}

// approx compares the Go reference with the server's figures: both sum in
// float64, but not necessarily in the same order.
var approx = cmpopts.EquateApprox(1e-12, 1e-9)

// storedRows returns how many summary rows the run has (0 or 1).
func storedRows(t *testing.T, db gen.DBTX, id uuid.UUID) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM eval_run_summaries WHERE run_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustStoreSummary(t *testing.T, q *gen.Queries, id uuid.UUID) {
	t.Helper()
	if n, err := q.InsertEvalRunSummary(context.Background(), id); err != nil || n != 1 {
		t.Fatalf("InsertEvalRunSummary = %d, %v; want 1 row", n, err)
	}
}

func mustSummary(t *testing.T, q gen.Querier, id uuid.UUID) gen.GetEvalRunSummaryRow {
	t.Helper()
	got, err := q.GetEvalRunSummary(context.Background(), id)
	if err != nil {
		t.Fatalf("GetEvalRunSummary: %v", err)
	}
	return got
}

func TestStoredSummaryEqualsAggregate(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	rng := rand.New(rand.NewPCG(16, 5))
	errText := "timeout"
	shapes := []struct {
		name string
		rows func(id uuid.UUID) []gen.InsertEvalResultsParams
	}{
		{"NoResults", func(uuid.UUID) []gen.InsertEvalResultsParams { return nil }},
		{"OneResult", func(id uuid.UUID) []gen.InsertEvalResultsParams {
			return []gen.InsertEvalResultsParams{{RunID: id, CaseID: "only", Score: 0.3, LatencyMs: 42}}
		}},
		{"AllPass", func(id uuid.UUID) []gen.InsertEvalResultsParams {
			var rs []gen.InsertEvalResultsParams
			for i := range 20 {
				rs = append(rs, gen.InsertEvalResultsParams{RunID: id, CaseID: fmt.Sprint(i), Score: 1, Passed: true, LatencyMs: int32(i * 7)})
			}
			return rs
		}},
		{"NonePass", func(id uuid.UUID) []gen.InsertEvalResultsParams {
			var rs []gen.InsertEvalResultsParams
			for i := range 20 {
				rs = append(rs, gen.InsertEvalResultsParams{RunID: id, CaseID: fmt.Sprint(i), Score: -0.5, LatencyMs: 3, Error: &errText})
			}
			return rs
		}},
		// Scores at float64's edges (whose squares, or sum, overflow
		// float64), zero and negative zero, zero and the largest latencies,
		// NULL and non-NULL errors.
		{"EdgeValues", func(id uuid.UUID) []gen.InsertEvalResultsParams {
			scores := []float64{0, math.Copysign(0, -1), math.SmallestNonzeroFloat64, 1e300, -1e300, 0.1, 1e-300, 7, math.MaxFloat64, math.MaxFloat64}
			lats := []int32{0, math.MaxInt32, 1, 0, math.MaxInt32, 5, 2, 0, 9, 9}
			var rs []gen.InsertEvalResultsParams
			for i, s := range scores {
				r := gen.InsertEvalResultsParams{RunID: id, CaseID: fmt.Sprintf("edge-%d", i), Score: s, Passed: i%3 == 0, LatencyMs: lats[i]}
				if i%2 == 0 {
					r.Error = &errText
				}
				rs = append(rs, r)
			}
			return rs
		}},
		{"Many", func(id uuid.UUID) []gen.InsertEvalResultsParams {
			var rs []gen.InsertEvalResultsParams
			for i := range 5000 {
				rs = append(rs, gen.InsertEvalResultsParams{RunID: id, CaseID: fmt.Sprintf("m-%05d", i),
					Score: rng.Float64(), Passed: rng.IntN(3) > 0, LatencyMs: rng.Int32N(10_000)})
			}
			return rs
		}},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			run := mustInsertRun(t, q, sh.name)
			// Results of another run, summarised too, must not count.
			other := mustInsertRun(t, q, sh.name+"-other")
			mustInsertResults(t, q, []gen.InsertEvalResultsParams{{RunID: other.ID, CaseID: "x", Score: 99, Passed: true, LatencyMs: 1e6}})
			mustStoreSummary(t, q, other.ID)
			if rs := sh.rows(run.ID); len(rs) > 0 {
				mustInsertResults(t, q, rs)
			}
			want := wantSummary(t, pool, run.ID)
			live := mustSummary(t, q, run.ID)
			if diff := cmp.Diff(want, live, approx); diff != "" {
				t.Errorf("GetEvalRunSummary, nothing stored (-want +got):\n%s", diff)
			}
			mustStoreSummary(t, q, run.ID)
			stored := mustSummary(t, q, run.ID)
			// Both branches compute with the same view, so they agree exactly.
			if diff := cmp.Diff(live, stored); diff != "" {
				t.Errorf("GetEvalRunSummary, stored, differs from the aggregate (-aggregate +stored):\n%s", diff)
			}
		})
	}
}

// TestGetEvalRunSummaryReadsStoredRow checks that a stored row is what
// GetEvalRunSummary returns (a changed stored figure shows), that the
// status still comes from eval_runs, and, with EXPLAIN ANALYZE, that the
// aggregate is never executed when a row is stored.
func TestGetEvalRunSummaryReadsStoredRow(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()
	run := mustInsertRun(t, q, "stored")
	var rows []gen.InsertEvalResultsParams
	for i := range 200 {
		rows = append(rows, resultRow(run.ID, fmt.Sprintf("c-%04d", i), i%2 == 0))
	}
	mustInsertResults(t, q, rows)

	plan := explainAnalyze(t, pool, gen.GetEvalRunSummary, run.ID)
	if !strings.Contains(plan, "GroupAggregate (actual rows=1") {
		t.Errorf("with no stored row the aggregate should run:\n%s", plan)
	}

	mustStoreSummary(t, q, run.ID)
	plan = explainAnalyze(t, pool, gen.GetEvalRunSummary, run.ID)
	for _, w := range []string{"One-Time Filter: (NOT ", "GroupAggregate (never executed)", "eval_results_pkey"} {
		if !strings.Contains(plan, w) {
			t.Errorf("with a stored row the plan lacks %q:\n%s", w, plan)
		}
	}
	for _, l := range strings.Split(plan, "\n") {
		if strings.Contains(l, "eval_results") && strings.Contains(l, "Scan") && !strings.Contains(l, "(never executed)") {
			t.Errorf("with a stored row the plan reads eval_results: %s\n%s", l, plan)
		}
	}

	// The plan cache settles on a generic plan, also for a run smaller than
	// the average: a custom plan would plan the aggregate on every read.
	big := mustInsertRun(t, q, "big")
	rows = rows[:0]
	for i := range 5000 {
		rows = append(rows, resultRow(big.ID, fmt.Sprintf("c-%04d", i), true))
	}
	mustInsertResults(t, q, rows)
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if plan := cachedPlan(t, pool, gen.GetEvalRunSummary, run.ID); !strings.Contains(plan, "(id = $1)") {
		t.Errorf("the cached plan of a small run is a custom one (no $1 in it):\n%s", plan)
	}

	if _, err := pool.Exec(ctx, `UPDATE eval_run_summaries SET mean_score = 42 WHERE run_id = $1`, run.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: run.ID, Status: "failed"}); err != nil {
		t.Fatal(err)
	}
	got := mustSummary(t, q, run.ID)
	if got.MeanScore != 42 || got.Status != "failed" || got.ResultCount != 200 {
		t.Errorf("GetEvalRunSummary = %+v; want the stored mean_score 42, 200 results and the run's new status failed", got)
	}
}

// cachedPlan prepares sql, executes it ten times with id, as a cached
// statement is, and returns the plan PostgreSQL's plan cache then uses.
func cachedPlan(t *testing.T, pool *pgxpool.Pool, sql string, id uuid.UUID) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	pg := conn.Conn().PgConn()
	run := func(s string) []string {
		t.Helper()
		res, err := pg.Exec(ctx, s).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var out []string
		for _, r := range res {
			for _, row := range r.Rows {
				out = append(out, string(row[0]))
			}
		}
		return out
	}
	run("PREPARE cached_plan_test(uuid) AS " + sql)
	defer run("DEALLOCATE cached_plan_test")
	for range 10 {
		run("EXECUTE cached_plan_test('" + id.String() + "')")
	}
	return strings.Join(run("EXPLAIN (COSTS OFF) EXECUTE cached_plan_test('"+id.String()+"')"), "\n")
}

// explainAnalyze runs sql with args under EXPLAIN ANALYZE (sequential scans
// off, so that the plan is the one of a large table) and returns the plan.
func explainAnalyze(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+sql, args...)
	if err != nil {
		t.Fatalf("EXPLAIN ANALYZE: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestStoredSummaryNeverStale changes the results of runs with stored
// summaries in every way a writer can, through gen's queries and through
// plain SQL on another connection, and checks that the stored row is gone
// and GetEvalRunSummary returns the figures of the results as they are now.
func TestStoredSummaryNeverStale(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()
	plain, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	exec := func(t *testing.T, sql string, args ...any) {
		t.Helper()
		if _, err := plain.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// summarised returns a run with three results and its stored summary.
	summarised := func(t *testing.T, name string) uuid.UUID {
		t.Helper()
		run := mustInsertRun(t, q, name)
		mustInsertResults(t, q, []gen.InsertEvalResultsParams{
			{RunID: run.ID, CaseID: "a", Score: 1, Passed: true, LatencyMs: 10},
			{RunID: run.ID, CaseID: "b", Score: 0, Passed: false, LatencyMs: 20},
			{RunID: run.ID, CaseID: "c", Score: 0.5, Passed: true, LatencyMs: 30},
		})
		mustStoreSummary(t, q, run.ID)
		return run.ID
	}
	// fresh checks that id has no stored summary and that GetEvalRunSummary
	// matches its results.
	fresh := func(t *testing.T, id uuid.UUID, wantCount int64) {
		t.Helper()
		if n := storedRows(t, pool, id); n != 0 {
			t.Errorf("the run's stored summary survived a change to its results (%d rows)", n)
		}
		want := wantSummary(t, pool, id)
		if want.ResultCount != wantCount {
			t.Fatalf("the test's write left %d results, want %d", want.ResultCount, wantCount)
		}
		if diff := cmp.Diff(want, mustSummary(t, q, id), approx); diff != "" {
			t.Errorf("GetEvalRunSummary after the change (-want +got):\n%s", diff)
		}
	}

	t.Run("CopyThroughQueries", func(t *testing.T) {
		id := summarised(t, "copy")
		mustInsertResults(t, q, []gen.InsertEvalResultsParams{{RunID: id, CaseID: "d", Score: 0, LatencyMs: 1000}})
		fresh(t, id, 4)
	})
	t.Run("UnnestThroughQueries", func(t *testing.T) {
		id := summarised(t, "unnest")
		_, err := q.InsertEvalResultsUnnest(ctx, gen.InsertEvalResultsUnnestParams{RunID: id,
			CaseIds: []string{"d"}, Inputs: []string{""}, Expecteds: []string{""}, Outputs: []string{""},
			Scores: []float64{0.25}, Passeds: []bool{false}, LatenciesMs: []int32{5}, PromptTokens: []int32{0},
			CompletionTokens: []int32{0}, HasErrors: []bool{false}, ErrorTexts: []string{""}})
		if err != nil {
			t.Fatal(err)
		}
		fresh(t, id, 4)
	})
	t.Run("PlainInsert", func(t *testing.T) {
		id := summarised(t, "insert")
		exec(t, `INSERT INTO eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms)
			VALUES ($1, 'd', '', '', '', 0.9, true, 7), ($1, 'e', '', '', '', 0.1, false, 70)`, id)
		fresh(t, id, 5)
	})
	t.Run("PlainCopy", func(t *testing.T) {
		id := summarised(t, "plain-copy")
		n, err := plain.CopyFrom(ctx, pgx.Identifier{"eval_results"},
			[]string{"run_id", "case_id", "input", "expected", "output", "score", "passed", "latency_ms"},
			pgx.CopyFromRows([][]any{{id, "d", "", "", "", 0.0, false, int32(9)}}))
		if err != nil || n != 1 {
			t.Fatalf("COPY = %d, %v", n, err)
		}
		fresh(t, id, 4)
	})
	t.Run("PlainUpdate", func(t *testing.T) {
		id := summarised(t, "update")
		exec(t, `UPDATE eval_results SET score = 0, passed = false, latency_ms = 500 WHERE run_id = $1 AND case_id = 'a'`, id)
		fresh(t, id, 3)
	})
	t.Run("UpdateMovesResultBetweenRuns", func(t *testing.T) {
		from, to := summarised(t, "from"), summarised(t, "to")
		exec(t, `UPDATE eval_results SET run_id = $2, case_id = 'moved' WHERE run_id = $1 AND case_id = 'a'`, from, to)
		fresh(t, from, 2)
		fresh(t, to, 4)
	})
	t.Run("PlainDelete", func(t *testing.T) {
		id := summarised(t, "delete")
		exec(t, `DELETE FROM eval_results WHERE run_id = $1 AND case_id = 'b'`, id)
		fresh(t, id, 2)
	})
	t.Run("Upsert", func(t *testing.T) {
		id := summarised(t, "upsert")
		exec(t, `INSERT INTO eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms)
			VALUES ($1, 'a', '', '', '', 0, false, 1) ON CONFLICT (run_id, case_id) DO UPDATE SET score = excluded.score, passed = excluded.passed`, id)
		fresh(t, id, 3)
	})
	t.Run("Merge", func(t *testing.T) {
		id := summarised(t, "merge")
		exec(t, `MERGE INTO eval_results r USING (VALUES ($1::uuid, 'c')) v(run_id, case_id)
			ON r.run_id = v.run_id AND r.case_id = v.case_id WHEN MATCHED THEN DELETE`, id)
		fresh(t, id, 2)
	})
	t.Run("TransactionCommitted", func(t *testing.T) {
		id := summarised(t, "tx")
		before := mustSummary(t, q, id)
		tx, err := plain.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM eval_results WHERE run_id = $1 AND case_id = 'a'`, id); err != nil {
			t.Fatal(err)
		}
		// Not committed: other sessions still see the results and the
		// stored row, which agree.
		if diff := cmp.Diff(before, mustSummary(t, q, id)); diff != "" {
			t.Errorf("GetEvalRunSummary during another transaction's uncommitted change (-before +now):\n%s", diff)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		fresh(t, id, 2)
	})
	t.Run("TransactionRolledBack", func(t *testing.T) {
		id := summarised(t, "rollback")
		before := mustSummary(t, q, id)
		tx, err := plain.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM eval_results WHERE run_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if n := storedRows(t, pool, id); n != 1 {
			t.Errorf("a rolled-back change deleted the stored summary (%d rows left)", n)
		}
		if diff := cmp.Diff(before, mustSummary(t, q, id)); diff != "" {
			t.Errorf("GetEvalRunSummary after a rolled-back change (-before +now):\n%s", diff)
		}
	})
	t.Run("WriteToRunWithoutSummaryLeavesOthers", func(t *testing.T) {
		id := summarised(t, "kept")
		bare := mustInsertRun(t, q, "bare")
		mustInsertResults(t, q, []gen.InsertEvalResultsParams{{RunID: bare.ID, CaseID: "x", LatencyMs: 1}})
		if n := storedRows(t, pool, id); n != 1 {
			t.Errorf("a write to another run's results deleted this run's stored summary")
		}
	})
	t.Run("DeleteRun", func(t *testing.T) {
		id := summarised(t, "deleted")
		if n, err := q.DeleteEvalRun(ctx, id); err != nil || n != 1 {
			t.Fatalf("DeleteEvalRun = %d, %v", n, err)
		}
		if n := storedRows(t, pool, id); n != 0 {
			t.Errorf("a deleted run left %d summary rows", n)
		}
		_, err := q.GetEvalRunSummary(ctx, id)
		wantNoRows(t, "GetEvalRunSummary(deleted run)", err)
	})
}

// TestTruncateForgetsSummaries runs alone on its database: TRUNCATE
// eval_results empties every run.
func TestTruncateForgetsSummaries(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()
	run := mustInsertRun(t, q, "truncated")
	mustInsertResults(t, q, []gen.InsertEvalResultsParams{{RunID: run.ID, CaseID: "a", Score: 1, Passed: true, LatencyMs: 10}})
	mustStoreSummary(t, q, run.ID)
	if _, err := pool.Exec(ctx, `TRUNCATE eval_results`); err != nil {
		t.Fatal(err)
	}
	if n := storedRows(t, pool, run.ID); n != 0 {
		t.Errorf("TRUNCATE eval_results left %d stored summaries", n)
	}
	want := gen.GetEvalRunSummaryRow{ID: run.ID, Status: "running"}
	if diff := cmp.Diff(want, mustSummary(t, q, run.ID)); diff != "" {
		t.Errorf("GetEvalRunSummary after TRUNCATE (-want +got):\n%s", diff)
	}
}

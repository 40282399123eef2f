package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
)

func TestInsertEvalRunGetEvalRun(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()

	t.Run("RunningRoundTrip", func(t *testing.T) {
		arg := runParams("nightly")
		before := serverNow(t, pool)
		run, err := q.InsertEvalRun(ctx, arg)
		if err != nil {
			t.Fatalf("InsertEvalRun: %v", err)
		}
		after := serverNow(t, pool)
		if run.CreatedAt.Before(before) || run.CreatedAt.After(after) {
			t.Errorf("InsertEvalRun: created_at %v not within server time [%v, %v]", run.CreatedAt, before, after)
		}
		want := gen.EvalRun{
			ID: arg.ID, Name: arg.Name, Model: arg.Model, Dataset: arg.Dataset,
			Status: "running", Config: arg.Config, StartedAt: arg.StartedAt,
			FinishedAt: nil, CreatedAt: run.CreatedAt,
		}
		if diff := cmp.Diff(want, run, jsonEqual); diff != "" {
			t.Errorf("InsertEvalRun() mismatch (-want +got):\n%s", diff)
		}
		got, err := q.GetEvalRun(ctx, arg.ID)
		if err != nil {
			t.Fatalf("GetEvalRun: %v", err)
		}
		if diff := cmp.Diff(run, got, jsonEqual); diff != "" {
			t.Errorf("GetEvalRun() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CompletedWithFinishedAtAndNestedConfig", func(t *testing.T) {
		arg := runParams("done")
		arg.Status = "completed"
		arg.FinishedAt = ptr(arg.StartedAt.Add(90 * time.Second))
		arg.Config = json.RawMessage(`{"model":{"name":"ü-model","seed":7},"tags":["a","b"],"none":null}`)
		run, err := q.InsertEvalRun(ctx, arg)
		if err != nil {
			t.Fatalf("InsertEvalRun: %v", err)
		}
		got, err := q.GetEvalRun(ctx, arg.ID)
		if err != nil {
			t.Fatalf("GetEvalRun: %v", err)
		}
		want := gen.EvalRun{
			ID: arg.ID, Name: arg.Name, Model: arg.Model, Dataset: arg.Dataset,
			Status: "completed", Config: arg.Config, StartedAt: arg.StartedAt,
			FinishedAt: arg.FinishedAt, CreatedAt: run.CreatedAt,
		}
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("GetEvalRun() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("NilConfig", func(t *testing.T) {
		arg := runParams("nil-config")
		arg.Config = nil
		if _, err := q.InsertEvalRun(ctx, arg); err != nil {
			t.Fatalf("InsertEvalRun(nil config): %v", err)
		}
		got, err := q.GetEvalRun(ctx, arg.ID)
		if err != nil {
			t.Fatalf("GetEvalRun: %v", err)
		}
		if diff := cmp.Diff(json.RawMessage(`{}`), got.Config); diff != "" {
			t.Errorf("config of a run inserted with nil Config (-want +got):\n%s", diff)
		}
		// JSON null is a value, not a missing config.
		arg = runParams("json-null-config")
		arg.Config = json.RawMessage(`null`)
		run, err := q.InsertEvalRun(ctx, arg)
		if err != nil {
			t.Fatalf("InsertEvalRun(JSON null config): %v", err)
		}
		if diff := cmp.Diff(json.RawMessage(`null`), run.Config); diff != "" {
			t.Errorf("config of a run inserted with JSON null (-want +got):\n%s", diff)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := q.GetEvalRun(ctx, uuid.New())
		wantNoRows(t, "GetEvalRun(unknown id)", err)
	})

	t.Run("Constraints", func(t *testing.T) {
		dup := mustInsertRun(t, q, "dup")
		finished := ptr(usec(time.Now()))
		tests := []struct {
			name       string
			mod        func(*gen.InsertEvalRunParams)
			code       string
			constraint string
		}{
			{"UnknownStatus", func(p *gen.InsertEvalRunParams) { p.Status = "paused"; p.FinishedAt = finished },
				"23514", "eval_runs_status_check"},
			{"CompletedWithoutFinishedAt", func(p *gen.InsertEvalRunParams) { p.Status = "completed" },
				"23514", "eval_runs_finished_matches_status"},
			{"FailedWithoutFinishedAt", func(p *gen.InsertEvalRunParams) { p.Status = "failed" },
				"23514", "eval_runs_finished_matches_status"},
			{"RunningWithFinishedAt", func(p *gen.InsertEvalRunParams) { p.FinishedAt = finished },
				"23514", "eval_runs_finished_matches_status"},
			{"FinishedBeforeStarted", func(p *gen.InsertEvalRunParams) {
				p.Status = "failed"
				p.FinishedAt = ptr(p.StartedAt.Add(-time.Second))
			}, "23514", "eval_runs_finished_after_started"},
			{"EmptyName", func(p *gen.InsertEvalRunParams) { p.Name = "" }, "23514", "eval_runs_name_check"},
			{"EmptyModel", func(p *gen.InsertEvalRunParams) { p.Model = "" }, "23514", "eval_runs_model_check"},
			{"EmptyDataset", func(p *gen.InsertEvalRunParams) { p.Dataset = "" }, "23514", "eval_runs_dataset_check"},
			{"DuplicateID", func(p *gen.InsertEvalRunParams) { p.ID = dup.ID }, "23505", "eval_runs_pkey"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				arg := runParams("bad-" + tt.name)
				tt.mod(&arg)
				_, err := q.InsertEvalRun(ctx, arg)
				wantPgError(t, "InsertEvalRun", err, tt.code, tt.constraint)
				if tt.code != "23505" {
					_, err = q.GetEvalRun(ctx, arg.ID)
					wantNoRows(t, "GetEvalRun after rejected insert", err)
				}
			})
		}
	})
}

// insertRunsInTx inserts n running runs in one transaction, so that they all
// share created_at (now() is the transaction's start time).
func insertRunsInTx(t *testing.T, tx pgx.Tx, n int, prefix string) []gen.EvalRun {
	t.Helper()
	q := gen.New(tx)
	var runs []gen.EvalRun
	for i := range n {
		runs = append(runs, mustInsertRun(t, q, fmt.Sprintf("%s-%d", prefix, i)))
	}
	return runs
}

// newestFirst sorts runs as ListEvalRuns returns them: (created_at, id) desc.
func newestFirst(runs []gen.EvalRun) []gen.EvalRun {
	runs = slices.Clone(runs)
	sort.Slice(runs, func(i, j int) bool {
		a, b := runs[i], runs[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return uuidLess(b.ID, a.ID)
	})
	return runs
}

// listAllRuns pages through ListEvalRuns with the given page size and returns
// every run in order, failing on a page larger than the size or a page loop.
func listAllRuns(t *testing.T, q *gen.Queries, size int32) (all []gen.EvalRun, pages int) {
	t.Helper()
	ctx := context.Background()
	arg := gen.ListEvalRunsParams{RowLimit: size}
	for {
		page, err := q.ListEvalRuns(ctx, arg)
		if err != nil {
			t.Fatalf("ListEvalRuns(%+v): %v", arg, err)
		}
		if len(page) > int(size) {
			t.Fatalf("ListEvalRuns(limit %d) returned %d rows", size, len(page))
		}
		pages++
		if pages > 1000 {
			t.Fatalf("ListEvalRuns: more than 1000 pages of size %d: keyset does not advance", size)
		}
		all = append(all, page...)
		if len(page) < int(size) {
			return all, pages
		}
		last := page[len(page)-1]
		arg.BeforeCreatedAt, arg.BeforeID = &last.CreatedAt, &last.ID
	}
}

func TestListEvalRuns(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()

	// Empty table: an empty page, not nil.
	got, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 10})
	if err != nil {
		t.Fatalf("ListEvalRuns(empty): %v", err)
	}
	if diff := cmp.Diff([]gen.EvalRun{}, got); diff != "" {
		t.Errorf("ListEvalRuns(empty table) mismatch (-want +got):\n%s", diff)
	}

	// 4 runs one by one (distinct created_at), then 5 sharing one created_at
	// (one transaction), then 2 more one by one: 11 runs with a 5-way tie in
	// the middle.
	var runs []gen.EvalRun
	for i := range 4 {
		runs = append(runs, mustInsertRun(t, q, fmt.Sprintf("solo-%d", i)))
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		runs = append(runs, insertRunsInTx(t, tx, 5, "tied")...)
		return nil
	})
	if err != nil {
		t.Fatalf("insert tied runs: %v", err)
	}
	for i := range 2 {
		runs = append(runs, mustInsertRun(t, q, fmt.Sprintf("late-%d", i)))
	}
	tied := runs[4:9]
	for _, r := range tied[1:] {
		if !r.CreatedAt.Equal(tied[0].CreatedAt) {
			t.Fatalf("runs inserted in one transaction have different created_at: %v vs %v", r.CreatedAt, tied[0].CreatedAt)
		}
	}
	want := newestFirst(runs)

	for _, size := range []int32{1, 2, 3, 4, 5, 11, 12, 100} {
		t.Run(fmt.Sprintf("PageSize%d", size), func(t *testing.T) {
			got, pages := listAllRuns(t, q, size)
			if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
				t.Errorf("ListEvalRuns paged by %d mismatch (-want +got):\n%s", size, diff)
			}
			// A page size dividing the total exactly needs one extra,
			// empty page to learn that the end was reached.
			wantPages := len(want)/int(size) + 1
			if pages != wantPages {
				t.Errorf("ListEvalRuns paged by %d took %d pages, want %d", size, pages, wantPages)
			}
		})
	}

	t.Run("CursorInsideTie", func(t *testing.T) {
		// Resuming after the second tied run returns the remaining three
		// tied runs (smaller ids) and then the older ones.
		ordered := newestFirst(tied)
		cur := ordered[1]
		got, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{BeforeCreatedAt: &cur.CreatedAt, BeforeID: &cur.ID, RowLimit: 100})
		if err != nil {
			t.Fatalf("ListEvalRuns: %v", err)
		}
		i := slices.IndexFunc(want, func(r gen.EvalRun) bool { return r.ID == cur.ID })
		if diff := cmp.Diff(want[i+1:], got, jsonEqual); diff != "" {
			t.Errorf("ListEvalRuns(after tied run) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("AfterOldest", func(t *testing.T) {
		last := want[len(want)-1]
		got, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{BeforeCreatedAt: &last.CreatedAt, BeforeID: &last.ID, RowLimit: 10})
		if err != nil {
			t.Fatalf("ListEvalRuns: %v", err)
		}
		if diff := cmp.Diff([]gen.EvalRun{}, got); diff != "" {
			t.Errorf("ListEvalRuns(after oldest) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CreatedAtOnlyCursor", func(t *testing.T) {
		// before_created_at alone (before_id NULL) includes every run created
		// at that instant: before_id defaults to the largest UUID.
		ts := tied[0].CreatedAt
		got, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{BeforeCreatedAt: &ts, RowLimit: 100})
		if err != nil {
			t.Fatalf("ListEvalRuns: %v", err)
		}
		var w []gen.EvalRun
		for _, r := range want {
			if !r.CreatedAt.After(ts) {
				w = append(w, r)
			}
		}
		if diff := cmp.Diff(w, got, jsonEqual); diff != "" {
			t.Errorf("ListEvalRuns(created_at cursor only) mismatch (-want +got):\n%s", diff)
		}
	})
}

// percentileCont is PostgreSQL's percentile_cont(p) over xs: linear
// interpolation between the closest ranks of the sorted values.
func percentileCont(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := p * float64(len(s)-1)
	lo, hi := math.Floor(pos), math.Ceil(pos)
	return s[int(lo)] + (pos-lo)*(s[int(hi)]-s[int(lo)])
}

func TestGetEvalRunSummary(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()

	t.Run("EmptyRun", func(t *testing.T) {
		run := mustInsertRun(t, q, "empty")
		got, err := q.GetEvalRunSummary(ctx, run.ID)
		if err != nil {
			t.Fatalf("GetEvalRunSummary: %v", err)
		}
		want := gen.GetEvalRunSummaryRow{ID: run.ID, Status: "running"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetEvalRunSummary(empty run) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("KnownValues", func(t *testing.T) {
		run := mustInsertRun(t, q, "known")
		other := mustInsertRun(t, q, "other")
		latencies := []int32{120, 5, 30, 999, 47, 0, 300, 45, 46, 2500, 8}
		var rows []gen.InsertEvalResultsParams
		var lat []float64
		var sum float64
		passed := 0
		for i, l := range latencies {
			score := float64(i%4) * 0.25 // 0, .25, .5, .75, ...
			p := score >= 0.5
			if p {
				passed++
			}
			sum += score
			lat = append(lat, float64(l))
			rows = append(rows, gen.InsertEvalResultsParams{
				RunID: run.ID, CaseID: fmt.Sprintf("case-%02d", i), Input: "in", Expected: "exp",
				Output: "out", Score: score, Passed: p, LatencyMs: l,
			})
			// Results of another run must not count.
			rows = append(rows, gen.InsertEvalResultsParams{
				RunID: other.ID, CaseID: fmt.Sprintf("case-%02d", i), Score: 1, Passed: true, LatencyMs: 1_000_000,
			})
		}
		if n, err := q.InsertEvalResults(ctx, rows); err != nil || n != int64(len(rows)) {
			t.Fatalf("InsertEvalResults = %d, %v; want %d, nil", n, err, len(rows))
		}
		if _, err := q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: run.ID, Status: "completed"}); err != nil {
			t.Fatalf("UpdateEvalRunStatus: %v", err)
		}
		got, err := q.GetEvalRunSummary(ctx, run.ID)
		if err != nil {
			t.Fatalf("GetEvalRunSummary: %v", err)
		}
		n := len(latencies)
		want := gen.GetEvalRunSummaryRow{
			ID:           run.ID,
			Status:       "completed",
			ResultCount:  int64(n),
			PassedCount:  int64(passed),
			PassRate:     float64(passed) / float64(n),
			MeanScore:    sum / float64(n),
			P50LatencyMs: percentileCont(lat, 0.5),
			P95LatencyMs: percentileCont(lat, 0.95),
		}
		// Guard the Go reference itself: 11 values, p95 sits between the
		// 10th and 11th smallest (999 and 2500).
		if want.P95LatencyMs <= 999 || want.P95LatencyMs >= 2500 {
			t.Fatalf("percentileCont reference is off: p95 = %v", want.P95LatencyMs)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("GetEvalRunSummary() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("SingleResult", func(t *testing.T) {
		run := mustInsertRun(t, q, "single")
		_, err := q.InsertEvalResults(ctx, []gen.InsertEvalResultsParams{{
			RunID: run.ID, CaseID: "only", Score: 0.3, Passed: false, LatencyMs: 42,
		}})
		if err != nil {
			t.Fatalf("InsertEvalResults: %v", err)
		}
		got, err := q.GetEvalRunSummary(ctx, run.ID)
		if err != nil {
			t.Fatalf("GetEvalRunSummary: %v", err)
		}
		want := gen.GetEvalRunSummaryRow{
			ID: run.ID, Status: "running", ResultCount: 1, PassedCount: 0,
			PassRate: 0, MeanScore: 0.3, P50LatencyMs: 42, P95LatencyMs: 42,
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("GetEvalRunSummary(single result) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := q.GetEvalRunSummary(ctx, uuid.New())
		wantNoRows(t, "GetEvalRunSummary(unknown id)", err)
	})
}

func TestUpdateEvalRunStatus(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()

	update := func(t *testing.T, id uuid.UUID, status string, finished *time.Time) gen.EvalRun {
		t.Helper()
		got, err := q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: id, Status: status, FinishedAt: finished})
		if err != nil {
			t.Fatalf("UpdateEvalRunStatus(%s, %v): %v", status, finished, err)
		}
		return got
	}

	t.Run("CompleteStampsFinishedAtThenRunningClearsIt", func(t *testing.T) {
		run := mustInsertRun(t, q, "stamp")
		before := serverNow(t, pool)
		got := update(t, run.ID, "completed", nil)
		after := serverNow(t, pool)
		if got.FinishedAt == nil || got.FinishedAt.Before(before) || got.FinishedAt.After(after) {
			t.Fatalf("UpdateEvalRunStatus(completed): finished_at = %v, want server now within [%v, %v]", got.FinishedAt, before, after)
		}
		want := run
		want.Status, want.FinishedAt = "completed", got.FinishedAt
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("UpdateEvalRunStatus(completed) mismatch (-want +got):\n%s", diff)
		}
		stamped := *got.FinishedAt

		// completed → failed keeps the first finish time.
		got = update(t, run.ID, "failed", nil)
		want.Status, want.FinishedAt = "failed", &stamped
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("UpdateEvalRunStatus(completed→failed) mismatch (-want +got):\n%s", diff)
		}

		// Back to running clears finished_at, even when one is given.
		got = update(t, run.ID, "running", ptr(usec(time.Now())))
		want.Status, want.FinishedAt = "running", nil
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("UpdateEvalRunStatus(→running) mismatch (-want +got):\n%s", diff)
		}
		read, err := q.GetEvalRun(ctx, run.ID)
		if err != nil {
			t.Fatalf("GetEvalRun: %v", err)
		}
		if diff := cmp.Diff(want, read, jsonEqual); diff != "" {
			t.Errorf("GetEvalRun after updates mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ExplicitFinishedAt", func(t *testing.T) {
		run := mustInsertRun(t, q, "explicit")
		fin := run.StartedAt.Add(1234567 * time.Microsecond)
		got := update(t, run.ID, "failed", &fin)
		want := run
		want.Status, want.FinishedAt = "failed", &fin
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("UpdateEvalRunStatus(explicit finished_at) mismatch (-want +got):\n%s", diff)
		}
		// An explicit time also replaces an earlier one.
		fin2 := fin.Add(time.Hour)
		got = update(t, run.ID, "completed", &fin2)
		want.Status, want.FinishedAt = "completed", &fin2
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("UpdateEvalRunStatus(new explicit finished_at) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("StartedInFutureFinishesAtStart", func(t *testing.T) {
		// A client clock ahead of the server's: finished_at is never before
		// started_at, so the stamp is started_at rather than now().
		arg := runParams("future")
		arg.StartedAt = usec(time.Now().Add(time.Hour))
		run, err := q.InsertEvalRun(ctx, arg)
		if err != nil {
			t.Fatalf("InsertEvalRun: %v", err)
		}
		got := update(t, run.ID, "completed", nil)
		want := run
		want.Status, want.FinishedAt = "completed", &arg.StartedAt
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("UpdateEvalRunStatus(future start) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		run := mustInsertRun(t, q, "reject")
		_, err := q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: run.ID, Status: "paused"})
		wantPgError(t, "UpdateEvalRunStatus(paused)", err, "23514", "eval_runs_status_check")
		_, err = q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: run.ID, Status: "completed", FinishedAt: ptr(run.StartedAt.Add(-time.Second))})
		wantPgError(t, "UpdateEvalRunStatus(finished before started)", err, "23514", "eval_runs_finished_after_started")
		got, err := q.GetEvalRun(ctx, run.ID)
		if err != nil {
			t.Fatalf("GetEvalRun: %v", err)
		}
		if diff := cmp.Diff(run, got, jsonEqual); diff != "" {
			t.Errorf("run changed by rejected updates (-want +got):\n%s", diff)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: uuid.New(), Status: "completed"})
		wantNoRows(t, "UpdateEvalRunStatus(unknown id)", err)
	})
}

func TestDeleteEvalRun(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()

	run := mustInsertRun(t, q, "doomed")
	keep := mustInsertRun(t, q, "keep")
	for _, id := range []uuid.UUID{run.ID, keep.ID} {
		if _, err := q.InsertEvalResults(ctx, []gen.InsertEvalResultsParams{
			{RunID: id, CaseID: "a", LatencyMs: 1}, {RunID: id, CaseID: "b", LatencyMs: 2},
		}); err != nil {
			t.Fatalf("InsertEvalResults: %v", err)
		}
		if _, err := q.InsertEvalMetrics(ctx, []gen.InsertEvalMetricsParams{{RunID: id, Name: "accuracy", Value: 0.5}}); err != nil {
			t.Fatalf("InsertEvalMetrics: %v", err)
		}
	}

	n, err := q.DeleteEvalRun(ctx, run.ID)
	if err != nil || n != 1 {
		t.Fatalf("DeleteEvalRun = %d, %v; want 1, nil", n, err)
	}
	n, err = q.DeleteEvalRun(ctx, run.ID)
	if err != nil || n != 0 {
		t.Errorf("DeleteEvalRun again = %d, %v; want 0, nil", n, err)
	}
	_, err = q.GetEvalRun(ctx, run.ID)
	wantNoRows(t, "GetEvalRun(deleted)", err)

	count := func(table string, id uuid.UUID) int {
		t.Helper()
		var c int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE run_id = $1", id).Scan(&c); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return c
	}
	got := map[string]int{
		"deleted results": count("eval_results", run.ID), "deleted metrics": count("eval_metrics", run.ID),
		"kept results": count("eval_results", keep.ID), "kept metrics": count("eval_metrics", keep.ID),
	}
	want := map[string]int{"deleted results": 0, "deleted metrics": 0, "kept results": 2, "kept metrics": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows after DeleteEvalRun mismatch (-want +got):\n%s", diff)
	}
}

// TestListEvalRunsFilters pages through runs of two models and two statuses
// with each filter and checks that every page holds exactly the runs that
// match, newest first.
func TestListEvalRunsFilters(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	var runs []gen.EvalRun
	for i := range 12 {
		p := runParams(fmt.Sprintf("filter-%d", i))
		p.Model = []string{"model-a", "model-b"}[i%2]
		if i%3 == 0 {
			p.Status = "completed"
			f := p.StartedAt.Add(time.Second)
			p.FinishedAt = &f
		}
		r, err := q.InsertEvalRun(ctx, p)
		if err != nil {
			t.Fatalf("InsertEvalRun: %v", err)
		}
		runs = append(runs, r)
	}
	all := newestFirst(runs)
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name          string
		model, status *string
	}{
		{"Model", str("model-a"), nil},
		{"Status", nil, str("completed")},
		{"ModelAndStatus", str("model-b"), str("completed")},
		{"NoMatch", str("model-z"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := []gen.EvalRun{}
			for _, r := range all {
				if (tc.model == nil || r.Model == *tc.model) && (tc.status == nil || r.Status == *tc.status) {
					want = append(want, r)
				}
			}
			got := []gen.EvalRun{}
			arg := gen.ListEvalRunsParams{Model: tc.model, Status: tc.status, RowLimit: 2}
			for pages := 0; ; pages++ {
				if pages > len(runs) {
					t.Fatal("paging does not end")
				}
				page, err := q.ListEvalRuns(ctx, arg)
				if err != nil {
					t.Fatalf("ListEvalRuns(%+v): %v", arg, err)
				}
				got = append(got, page...)
				if len(page) < int(arg.RowLimit) {
					break
				}
				last := page[len(page)-1]
				arg.BeforeCreatedAt, arg.BeforeID = &last.CreatedAt, &last.ID
			}
			if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
				t.Errorf("ListEvalRuns filtered mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEvalLeaderboard checks the per-model figures against ones computed
// here from the results inserted, and that runs not asked for are left out.
func TestEvalLeaderboard(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	type res struct {
		model   string
		passed  bool
		score   float64
		latency int32
		tokens  int64
	}
	var ids []uuid.UUID
	var inserted []res
	for i := range 5 {
		p := runParams(fmt.Sprintf("board-%d", i))
		p.Model = []string{"alpha", "beta"}[i%2]
		run, err := q.InsertEvalRun(ctx, p)
		if err != nil {
			t.Fatalf("InsertEvalRun: %v", err)
		}
		var rows []gen.InsertEvalResultsParams
		for j := range 3 + i {
			r := resultRow(run.ID, fmt.Sprintf("c-%d", j), (i+j)%3 != 0)
			r.Score, r.LatencyMs, r.PromptTokens, r.CompletionTokens = float64(j)/4, int32(100*(i+1)+j), int32(10+j), int32(i)
			rows = append(rows, r)
			if i < 4 { // run 4 is not asked for
				inserted = append(inserted, res{p.Model, r.Passed, r.Score, r.LatencyMs, int64(r.PromptTokens + r.CompletionTokens)})
			}
		}
		mustInsertResults(t, q, rows)
		if i < 4 {
			ids = append(ids, run.ID)
		}
	}
	got, err := q.EvalLeaderboard(ctx, ids)
	if err != nil {
		t.Fatalf("EvalLeaderboard: %v", err)
	}
	var want []gen.EvalLeaderboardRow
	for _, m := range []string{"alpha", "beta"} {
		row := gen.EvalLeaderboardRow{Model: m, Runs: 2}
		var lat []float64
		var passed, score float64
		for _, r := range inserted {
			if r.model != m {
				continue
			}
			row.Results++
			row.Tokens += r.tokens
			if r.passed {
				passed++
			}
			score += r.score
			lat = append(lat, float64(r.latency))
		}
		sort.Float64s(lat)
		row.PassRate, row.MeanScore = passed/float64(row.Results), score/float64(row.Results)
		row.P50LatencyMs, row.P95LatencyMs = percentileCont(lat, 0.5), percentileCont(lat, 0.95)
		want = append(want, row)
	}
	sort.SliceStable(want, func(i, j int) bool { return want[i].PassRate > want[j].PassRate })
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("EvalLeaderboard mismatch (-want +got):\n%s", diff)
	}
}

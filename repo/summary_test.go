package repo_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// TestRunSummaryCacheCoherent reads the stored run summary through the cache
// (TTL an hour, so only an invalidation can refresh it) of two instances
// while its results change through the instance's own queries, through a
// transaction, and through plain SQL, and while the stored row itself is
// changed by plain SQL: every read after the write's commit (at once for
// the writing instance, once the notification arrives for the other) shows
// the figures of the results as they are.
func TestRunSummaryCacheCoherent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	openRepo := func() *repo.Repo {
		r, err := repo.Open(ctx, &repo.Config{URL: url, Env: repo.Test, CacheOptions: &cachewrap.Options{TTL: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	a, b := openRepo(), openRepo()
	plain, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)

	rec, err := a.RecordEvalRun(ctx, txn.Run{Name: "n", Model: "m", Dataset: "d", Results: []txn.Result{
		{CaseID: "a", Score: 1, Passed: true, LatencyMs: 10},
		{CaseID: "b", Score: 1, Passed: true, LatencyMs: 20},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Run.ID
	summary := func(r *repo.Repo) gen.GetEvalRunSummaryRow {
		t.Helper()
		s, err := r.Queries().GetEvalRunSummary(ctx, id)
		if err != nil {
			t.Fatalf("GetEvalRunSummary: %v", err)
		}
		return s
	}
	// fill reads through both caches until each serves the row from its
	// cache (a hit: from then on only an invalidation can refresh it; the
	// notifications of earlier writes may still be arriving and drop what
	// the first reads stored).
	fill := func(wantCount int64) {
		t.Helper()
		for _, r := range []*repo.Repo{a, b} {
			eventually(t, 15*time.Second, "GetEvalRunSummary is served from the cache", func() bool {
				hits := r.Cache().Stats().Hits
				if s := summary(r); s.ResultCount != wantCount {
					t.Fatalf("GetEvalRunSummary before the write = %d results, want %d", s.ResultCount, wantCount)
				}
				r.Cache().Wait()
				return r.Cache().Stats().Hits > hits
			})
		}
	}
	// seenBy checks that both instances see the change: a, the writer when
	// the write went through a, at once.
	seenBy := func(what string, aWrote bool, ok func(gen.GetEvalRunSummaryRow) bool) {
		t.Helper()
		if aWrote {
			if s := summary(a); !ok(s) {
				t.Errorf("%s: the writing instance reads a stale summary %+v", what, s)
			}
		}
		for name, r := range map[string]*repo.Repo{"a": a, "b": b} {
			eventually(t, 15*time.Second, what+" reaches instance "+name, func() bool { return ok(summary(r)) })
		}
	}
	count := func(n, passed int64) func(gen.GetEvalRunSummaryRow) bool {
		return func(s gen.GetEvalRunSummaryRow) bool { return s.ResultCount == n && s.PassedCount == passed }
	}

	fill(2)
	if _, err := a.Queries().InsertEvalResults(ctx, []gen.InsertEvalResultsParams{{RunID: id, CaseID: "c", LatencyMs: 30}}); err != nil {
		t.Fatal(err)
	}
	seenBy("a COPY through Queries", true, count(3, 2))

	fill(3)
	err = a.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
		_, err := tx.InsertEvalResultsUnnest(ctx, gen.InsertEvalResultsUnnestParams{RunID: id,
			CaseIds: []string{"d"}, Inputs: []string{""}, Expecteds: []string{""}, Outputs: []string{""},
			Scores: []float64{1}, Passeds: []bool{true}, LatenciesMs: []int32{40}, PromptTokens: []int32{0},
			CompletionTokens: []int32{0}, HasErrors: []bool{false}, ErrorTexts: []string{""}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	seenBy("an insert in a transaction", true, count(4, 3))

	fill(4)
	if _, err := plain.Exec(ctx, `DELETE FROM eval_results WHERE run_id = $1 AND case_id = 'a'`, id); err != nil {
		t.Fatal(err)
	}
	seenBy("a plain-SQL delete", false, count(3, 2))

	// The stored row alone: record a second run, cache its summary, change
	// the stored row by hand.
	rec2, err := a.RecordEvalRun(ctx, txn.Run{Name: "n2", Model: "m", Dataset: "d", Results: []txn.Result{{CaseID: "a", Score: 0.5, LatencyMs: 1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id = rec2.Run.ID
	fill(1)
	if _, err := plain.Exec(ctx, `UPDATE eval_run_summaries SET mean_score = 42 WHERE run_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	seenBy("a plain-SQL change to the stored summary", false, func(s gen.GetEvalRunSummaryRow) bool { return s.MeanScore == 42 })
}

package repo

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

// TestTxAndRecordEvalRunKeepCacheCoherent checks the integration with txn
// and cachewrap: reads through Queries are cached, and writes made in Tx or
// RecordEvalRun invalidate them after COMMIT.
func TestTxAndRecordEvalRunKeepCacheCoherent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test})
	q := r.Queries()

	rec, err := r.RecordEvalRun(ctx, txn.Run{Name: "n", Model: "m", Dataset: "d",
		Results: []txn.Result{{CaseID: "c1", Score: 1, Passed: true}}, Metrics: []txn.Metric{{Name: "acc", Value: 1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.GetEvalRun(ctx, rec.Run.ID) // fills the cache
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "completed" {
		t.Fatalf("GetEvalRun status = %q, want completed", got.Status)
	}
	r.Cache().Wait()
	err = r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
		_, err := tx.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: rec.Run.ID, Status: "failed"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = q.GetEvalRun(ctx, rec.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("failed", got.Status); diff != "" {
		t.Errorf("GetEvalRun after Tx serves a stale status (-want +got):\n%s", diff)
	}

	// A rolled-back transaction changes nothing and returns fn's error.
	boom := errors.New("boom")
	if err := r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
		if _, err := tx.DeleteEvalRun(ctx, rec.Run.ID); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want fn's error", err)
	}
	if _, err := q.GetEvalRun(ctx, rec.Run.ID); err != nil {
		t.Errorf("GetEvalRun after rolled-back delete = %v, want the run", err)
	}
}

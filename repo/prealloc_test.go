package repo

import (
	"context"
	"fmt"
	"testing"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

// TestPageSliceIsAllocatedOnce checks that a page's slice starts at the
// capacity its row limit allows (gen's Into twin, presized by the facade),
// where sqlc's method grows an empty slice by append: a full page of 100
// then has capacity 100, not 128.
func TestPageSliceIsAllocatedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test, DisableCache: true})
	run := txn.Run{Name: "page", Model: "m", Dataset: "d"}
	for i := range 150 {
		run.Results = append(run.Results, txn.Result{CaseID: fmt.Sprintf("c%03d", i), Passed: true})
	}
	rec, err := r.RecordEvalRun(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit   int32
		len     int
		wantCap int
	}{
		{100, 100, 100},
		{10, 10, 10},
		{1000, 150, 0}, // presized to maxPrealloc; its capacity is not checked
		{0, 0, 0},
	} {
		page, err := r.Queries().ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: rec.Run.ID, RowLimit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != tc.len || (tc.limit <= maxPrealloc && cap(page) != tc.wantCap) || page == nil {
			t.Errorf("RowLimit %d: len %d cap %d (nil %v), want len %d cap %d, non-nil", tc.limit, len(page), cap(page), page == nil, tc.len, tc.wantCap)
		}
	}
}

func TestRowCap(t *testing.T) {
	for n, want := range map[int32]int{-1: 0, 0: 0, 1: 1, 100: 100, maxPrealloc: maxPrealloc, maxPrealloc + 1: maxPrealloc, 1 << 30: maxPrealloc} {
		if got := rowCap(n); got != want {
			t.Errorf("rowCap(%d) = %d, want %d", n, got, want)
		}
	}
}

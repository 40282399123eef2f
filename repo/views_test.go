package repo

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

// TestViewsMatchQueries reads through Views and through Queries on a real
// database, cached and not: the views show the same rows and encode to the
// same JSON, and a write through Queries is seen by the next view read (the
// views share the cache's entries and its invalidation).
func TestViewsMatchQueries(t *testing.T) {
	t.Parallel()
	for _, disable := range []bool{false, true} {
		name := "cached"
		if disable {
			name = "uncached"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := open(t, &Config{URL: testURL(t, ""), Env: Test, DisableCache: disable})
			q, v := r.Queries(), r.Views()
			sp := seedStudent(t, q, "S-1")
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			record := func(name string, value float64) {
				t.Helper()
				if _, err := q.RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: name, Value: value, RecordedAt: at}); err != nil {
					t.Fatal(err)
				}
				at = at.Add(time.Minute)
			}
			record("accuracy", 0.5)
			student := func(want int) {
				t.Helper()
				for i := range 2 { // a miss, then a hit when cached
					view, err := v.GetStudentWithMetrics(ctx, "S-1")
					if err != nil {
						t.Fatal(err)
					}
					if r.Cache() != nil {
						r.Cache().Wait()
					}
					row, err := q.GetStudentWithMetrics(ctx, "S-1")
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(row, view.Row()); diff != "" {
						t.Fatalf("read %d: view mismatch (-Queries +Views):\n%s", i, diff)
					}
					if view.MetricNames.Len() != want {
						t.Fatalf("read %d: %d metrics, want %d", i, view.MetricNames.Len(), want)
					}
					sameJSON(t, row, view)
				}
			}
			student(1)
			record("latency", 12)
			student(2) // the write invalidated the view's entry too

			boom := "boom"
			rec, err := r.RecordEvalRun(ctx, txn.Run{Name: "r", Model: "m", Dataset: "d", Config: json.RawMessage(`{"t": 1}`),
				Results: []txn.Result{{CaseID: "c1", Passed: true}, {CaseID: "c2", Error: &boom}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				page, err := v.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: rec.Run.ID, RowLimit: 10})
				if err != nil {
					t.Fatal(err)
				}
				run, err := v.GetEvalRun(ctx, rec.Run.ID)
				if err != nil {
					t.Fatal(err)
				}
				if r.Cache() != nil {
					r.Cache().Wait()
				}
				rows, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: rec.Run.ID, RowLimit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(rows, page.Clone()); diff != "" {
					t.Fatalf("ListEvalResults view mismatch (-Queries +Views):\n%s", diff)
				}
				if msg, ok := page.At(1).Error.Get(); !ok || msg != "boom" {
					t.Errorf("second result's error = %q, %v; want boom", msg, ok)
				}
				sameJSON(t, rows, page)
				want, err := q.GetEvalRun(ctx, rec.Run.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, run.Row()); diff != "" {
					t.Fatalf("GetEvalRun view mismatch (-Queries +Views):\n%s", diff)
				}
				sameJSON(t, want, run)
			}
		})
	}
}

func sameJSON(t *testing.T, row, view any) {
	t.Helper()
	a, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("view encodes as\n%s\nwant the row's\n%s", b, a)
	}
}

package bench

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/bench/seed"
)

// TestContendersAgree checks that every contender reads the same rows and
// records the same run, so that the benchmarks compare equal work.
func TestContendersAgree(t *testing.T) {
	want := map[string]summary{
		"pk":      {Name: "nightly-00000", Count: 1},
		"page":    {Name: "case-00099", Count: seed.PageSize},
		"student": {Name: seed.ReadStudentID, Count: seed.MetricsPerStudent, Last: "latency"},
	}
	ctx := context.Background()
	for _, name := range append(contenderNames, "evaldb-cached", "evaldb-view") {
		t.Run(name, func(t *testing.T) {
			c := open(t, name)
			for _, r := range reads {
				for range 2 { // the second read of evaldb-cached and evaldb-view is a hit
					got, err := r.fn(c, ctx)
					warm(c)
					if err != nil {
						t.Fatalf("%s: %v", r.name, err)
					}
					if diff := cmp.Diff(want[r.name], got); diff != "" {
						t.Errorf("%s mismatch (-want +got):\n%s", r.name, diff)
					}
				}
			}
		})
	}
}

// TestContendersRecordSameRun records a run of 3 results with each contender
// and compares what is stored.
func TestContendersRecordSameRun(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { deleteRecorded(t) })
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	type stored struct {
		Name, Model, Dataset, Status, Config string
		Finished                             bool
		Results                              []string
		Metrics                              []string
	}
	run := recordRun(3)
	for _, name := range contenderNames {
		t.Run(name, func(t *testing.T) {
			deleteRecorded(t)
			c := open(t, name)
			if err := c.Record(ctx, run); err != nil {
				t.Fatal(err)
			}
			var got stored
			err := conn.QueryRow(ctx, `
SELECT r.name, r.model, r.dataset, r.status, r.config::text, r.finished_at IS NOT NULL,
       (SELECT array_agg(concat_ws('|', case_id, input, expected, output, score, passed, latency_ms,
                                   prompt_tokens, completion_tokens, coalesce(error, '<null>')) ORDER BY case_id)
          FROM eval_results WHERE run_id = r.id),
       (SELECT array_agg(name || '=' || value ORDER BY name) FROM eval_metrics WHERE run_id = r.id)
FROM eval_runs r WHERE r.dataset = $1`, seed.RecordDataset).Scan(
				&got.Name, &got.Model, &got.Dataset, &got.Status, &got.Config, &got.Finished, &got.Results, &got.Metrics)
			if err != nil {
				t.Fatal(err)
			}
			want := stored{Name: "record-3", Model: "gpt-x", Dataset: seed.RecordDataset, Status: "completed",
				Config: `{"max_tokens": 512, "temperature": 0.2}`, Finished: true,
				Results: []string{
					"case-00000|Question 0: what is the capital of the country whose ISO code is 000? Answer with one word.|answer-0|answer-0|0|t|100|20|1|<null>",
					"case-00001|Question 1: what is the capital of the country whose ISO code is 001? Answer with one word.|answer-1|answer-1|0.01|t|101|21|2|<null>",
					"case-00002|Question 2: what is the capital of the country whose ISO code is 002? Answer with one word.|answer-2|answer-2|0.02|t|102|22|3|<null>",
				},
				Metrics: []string{"accuracy=0.5", "mean_score=0.7", "p50_latency_ms=0.8", "p95_latency_ms=0.9", "pass_rate=0.6"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stored run mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

package queries_test

import (
	"context"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

func TestInsertEvalMetricsListEvalMetrics(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	run := mustInsertRun(t, q, "metrics")
	other := mustInsertRun(t, q, "other")

	t.Run("EmptyRun", func(t *testing.T) {
		got, err := q.ListEvalMetrics(ctx, run.ID)
		if err != nil {
			t.Fatalf("ListEvalMetrics: %v", err)
		}
		if diff := cmp.Diff([]gen.EvalMetric{}, got); diff != "" {
			t.Errorf("ListEvalMetrics(no metrics) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("OrderedByName", func(t *testing.T) {
		in := []gen.InsertEvalMetricsParams{
			{RunID: run.ID, Name: "pass_rate", Value: 0.75},
			{RunID: run.ID, Name: "accuracy", Value: 0.8125},
			{RunID: run.ID, Name: "mean_latency_ms", Value: 123.456},
			{RunID: run.ID, Name: "bleu", Value: math.Copysign(0, -1)},
			{RunID: other.ID, Name: "accuracy", Value: 0.1},
		}
		n, err := q.InsertEvalMetrics(ctx, in)
		if err != nil || n != int64(len(in)) {
			t.Fatalf("InsertEvalMetrics = %d, %v; want %d, nil", n, err, len(in))
		}
		got, err := q.ListEvalMetrics(ctx, run.ID)
		if err != nil {
			t.Fatalf("ListEvalMetrics: %v", err)
		}
		want := []gen.EvalMetric{
			{RunID: run.ID, Name: "accuracy", Value: 0.8125},
			{RunID: run.ID, Name: "bleu", Value: 0},
			{RunID: run.ID, Name: "mean_latency_ms", Value: 123.456},
			{RunID: run.ID, Name: "pass_rate", Value: 0.75},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListEvalMetrics() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		tests := []struct {
			name       string
			rows       []gen.InsertEvalMetricsParams
			code       string
			constraint string
		}{
			{"DuplicateOfStored", []gen.InsertEvalMetricsParams{{RunID: run.ID, Name: "fresh", Value: 1}, {RunID: run.ID, Name: "accuracy", Value: 1}},
				"23505", "eval_metrics_pkey"},
			{"DuplicateInBatch", []gen.InsertEvalMetricsParams{{RunID: run.ID, Name: "x", Value: 1}, {RunID: run.ID, Name: "x", Value: 2}},
				"23505", "eval_metrics_pkey"},
			{"NaN", []gen.InsertEvalMetricsParams{{RunID: run.ID, Name: "nan", Value: math.NaN()}}, "23514", "eval_metrics_value_check"},
			{"Inf", []gen.InsertEvalMetricsParams{{RunID: run.ID, Name: "inf", Value: math.Inf(1)}}, "23514", "eval_metrics_value_check"},
			{"EmptyName", []gen.InsertEvalMetricsParams{{RunID: run.ID, Name: "", Value: 1}}, "23514", "eval_metrics_name_check"},
			{"UnknownRun", []gen.InsertEvalMetricsParams{{RunID: uuid.New(), Name: "a", Value: 1}}, "23503", "eval_metrics_run_id_fkey"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := q.InsertEvalMetrics(ctx, tt.rows)
				wantPgError(t, "InsertEvalMetrics", err, tt.code, tt.constraint)
			})
		}
		got, err := q.ListEvalMetrics(ctx, run.ID)
		if err != nil {
			t.Fatalf("ListEvalMetrics: %v", err)
		}
		if len(got) != 4 {
			t.Errorf("ListEvalMetrics after rejected inserts: %d metrics, want the 4 stored before: %+v", len(got), got)
		}
	})

	t.Run("EmptyInput", func(t *testing.T) {
		n, err := q.InsertEvalMetrics(ctx, []gen.InsertEvalMetricsParams{})
		if err != nil || n != 0 {
			t.Errorf("InsertEvalMetrics(empty) = %d, %v; want 0, nil", n, err)
		}
	})
}

package queries_test

import (
	"context"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

// unnestParams turns rows into InsertEvalResultsUnnest's parallel arrays;
// a nil Error is has_errors false, stored as NULL.
func unnestParams(run uuid.UUID, rows []gen.InsertEvalResultsParams) gen.InsertEvalResultsUnnestParams {
	p := gen.InsertEvalResultsUnnestParams{
		RunID: run, CaseIds: []string{}, Inputs: []string{}, Expecteds: []string{}, Outputs: []string{},
		Scores: []float64{}, Passeds: []bool{}, LatenciesMs: []int32{}, PromptTokens: []int32{},
		CompletionTokens: []int32{}, HasErrors: []bool{}, ErrorTexts: []string{},
	}
	for _, r := range rows {
		p.CaseIds = append(p.CaseIds, r.CaseID)
		p.Inputs = append(p.Inputs, r.Input)
		p.Expecteds = append(p.Expecteds, r.Expected)
		p.Outputs = append(p.Outputs, r.Output)
		p.Scores = append(p.Scores, r.Score)
		p.Passeds = append(p.Passeds, r.Passed)
		p.LatenciesMs = append(p.LatenciesMs, r.LatencyMs)
		p.PromptTokens = append(p.PromptTokens, r.PromptTokens)
		p.CompletionTokens = append(p.CompletionTokens, r.CompletionTokens)
		e := ""
		if r.Error != nil {
			e = *r.Error
		}
		p.HasErrors = append(p.HasErrors, r.Error != nil)
		p.ErrorTexts = append(p.ErrorTexts, e)
	}
	return p
}

func TestInsertEvalResultsUnnest(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		run := mustInsertRun(t, q, "unnest")
		other := mustInsertRun(t, q, "other")
		rows := []gen.InsertEvalResultsParams{
			{RunID: run.ID, CaseID: "q-01", Input: "Ünïcödé ✓ 日本語 🚀", Expected: "naïve — café",
				Output: "line1\nline2\t\"q\" \\ {a,b} NULL", Score: 0.125, Passed: true,
				LatencyMs: 2147483647, PromptTokens: 321, CompletionTokens: 0, Error: ptr("")},
			{RunID: run.ID, CaseID: "q-02", Input: "", Expected: "", Output: "",
				Score: -0.5, Passed: false, LatencyMs: 0, PromptTokens: 0, CompletionTokens: 99,
				Error: ptr("rate limited: 429 ✗")},
			{RunID: run.ID, CaseID: "q-03 with spaces", Input: "NULL", Expected: "null", Output: "{}",
				Score: math.MaxFloat64, Passed: false, LatencyMs: 7, PromptTokens: 1, CompletionTokens: 2,
				Error: ptr("NULL")},
		}
		// The other run's rows must stay apart.
		otherRows := []gen.InsertEvalResultsParams{resultRow(other.ID, "q-01", true)}
		if n, err := q.InsertEvalResultsUnnest(ctx, unnestParams(other.ID, otherRows)); err != nil || n != 1 {
			t.Fatalf("InsertEvalResultsUnnest(other) = %d, %v; want 1, nil", n, err)
		}
		n, err := q.InsertEvalResultsUnnest(ctx, unnestParams(run.ID, rows))
		if err != nil || n != int64(len(rows)) {
			t.Fatalf("InsertEvalResultsUnnest = %d, %v; want %d, nil", n, err, len(rows))
		}
		got, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, RowLimit: 10})
		if err != nil {
			t.Fatalf("ListEvalResults: %v", err)
		}
		if diff := cmp.Diff(asResults(rows), got); diff != "" {
			t.Errorf("InsertEvalResultsUnnest round trip mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("NullErrorEntries", func(t *testing.T) {
		// has_errors false stores NULL, whatever error_texts holds; ""
		// with has_errors true stores "".
		run := mustInsertRun(t, q, "null-errors")
		rows := []gen.InsertEvalResultsParams{
			resultRow(run.ID, "n-1", true), resultRow(run.ID, "n-2", false),
			resultRow(run.ID, "n-3", false), resultRow(run.ID, "n-4", true),
		}
		rows[1].Error = ptr("")
		rows[2].Error = ptr("💥 crashed")
		p := unnestParams(run.ID, rows)
		p.ErrorTexts[0] = "ignored: has_errors is false"
		n, err := q.InsertEvalResultsUnnest(ctx, p)
		if err != nil || n != 4 {
			t.Fatalf("InsertEvalResultsUnnest = %v, %v; want 4 rows", n, err)
		}
		got, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, RowLimit: 10})
		if err != nil {
			t.Fatalf("ListEvalResults: %v", err)
		}
		if diff := cmp.Diff(asResults(rows), got); diff != "" {
			t.Errorf("NULL error entries round trip mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("EmptyArrays", func(t *testing.T) {
		run := mustInsertRun(t, q, "empty")
		n, err := q.InsertEvalResultsUnnest(ctx, unnestParams(run.ID, nil))
		if err != nil || n != 0 {
			t.Errorf("InsertEvalResultsUnnest(empty arrays) = %d, %v; want 0, nil", n, err)
		}
		got, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, RowLimit: 10})
		if err != nil {
			t.Fatalf("ListEvalResults: %v", err)
		}
		if diff := cmp.Diff([]gen.EvalResult{}, got); diff != "" {
			t.Errorf("results after empty insert (-want +got):\n%s", diff)
		}
	})

	t.Run("MismatchedLengthsRejected", func(t *testing.T) {
		// unnest pads the shorter arrays with NULL, which NOT NULL rejects.
		run := mustInsertRun(t, q, "mismatch")
		p := unnestParams(run.ID, []gen.InsertEvalResultsParams{resultRow(run.ID, "a", true), resultRow(run.ID, "b", true)})
		p.Scores = p.Scores[:1]
		_, err := q.InsertEvalResultsUnnest(ctx, p)
		wantPgError(t, "InsertEvalResultsUnnest(short scores)", err, "23502", "")
	})
}

func TestInsertEvalMetricsUnnest(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		run := mustInsertRun(t, q, "metrics")
		n, err := q.InsertEvalMetricsUnnest(ctx, gen.InsertEvalMetricsUnnestParams{
			RunID:        run.ID,
			Names:        []string{"latency_p95_ms", "accuracy", "précision ✓", "zeta"},
			MetricValues: []float64{812.5, 0.93, -1e-300, 0},
		})
		if err != nil || n != 4 {
			t.Fatalf("InsertEvalMetricsUnnest = %d, %v; want 4, nil", n, err)
		}
		got, err := q.ListEvalMetrics(ctx, run.ID)
		if err != nil {
			t.Fatalf("ListEvalMetrics: %v", err)
		}
		// Byte order of these names is the same in every collation.
		want := []gen.EvalMetric{
			{RunID: run.ID, Name: "accuracy", Value: 0.93},
			{RunID: run.ID, Name: "latency_p95_ms", Value: 812.5},
			{RunID: run.ID, Name: "précision ✓", Value: -1e-300},
		}
		want = append(want, gen.EvalMetric{RunID: run.ID, Name: "zeta", Value: 0})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("InsertEvalMetricsUnnest/ListEvalMetrics mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("EmptyArrays", func(t *testing.T) {
		run := mustInsertRun(t, q, "empty")
		n, err := q.InsertEvalMetricsUnnest(ctx, gen.InsertEvalMetricsUnnestParams{RunID: run.ID, Names: []string{}, MetricValues: []float64{}})
		if err != nil || n != 0 {
			t.Errorf("InsertEvalMetricsUnnest(empty) = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		run := mustInsertRun(t, q, "rejected")
		tests := []struct {
			name       string
			names      []string
			values     []float64
			code       string
			constraint string
		}{
			{"DuplicateName", []string{"a", "a"}, []float64{1, 2}, "23505", "eval_metrics_pkey"},
			{"NaN", []string{"a"}, []float64{math.NaN()}, "23514", "eval_metrics_value_check"},
			{"NegInf", []string{"a"}, []float64{math.Inf(-1)}, "23514", "eval_metrics_value_check"},
			{"EmptyName", []string{""}, []float64{1}, "23514", "eval_metrics_name_check"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := q.InsertEvalMetricsUnnest(ctx, gen.InsertEvalMetricsUnnestParams{RunID: run.ID, Names: tt.names, MetricValues: tt.values})
				wantPgError(t, "InsertEvalMetricsUnnest", err, tt.code, tt.constraint)
			})
		}
		got, err := q.ListEvalMetrics(ctx, run.ID)
		if err != nil {
			t.Fatalf("ListEvalMetrics: %v", err)
		}
		if diff := cmp.Diff([]gen.EvalMetric{}, got); diff != "" {
			t.Errorf("metrics after rejected inserts (-want +got):\n%s", diff)
		}
	})
}

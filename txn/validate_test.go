package txn_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/txn"
)

func ptr[T any](v T) *T { return &v }

// validRun returns a run that passes validation.
func validRun() txn.Run {
	return txn.Run{
		Name: "nightly", Model: "gpt-x", Dataset: "arith-v1", Status: txn.StatusCompleted,
		Config: json.RawMessage(`{"temperature": 0}`),
		Results: []txn.Result{
			{CaseID: "c1", Input: "1+1", Expected: "2", Output: "2", Score: 1, Passed: true, LatencyMs: 12, PromptTokens: 5, CompletionTokens: 1},
			{CaseID: "c2", Input: "2+2", Expected: "4", Output: "5", Score: 0, LatencyMs: 15, Error: ptr("wrong answer")},
		},
		Metrics: []txn.Metric{{Name: "accuracy", Value: 0.5}, {Name: "mean_latency_ms", Value: 13.5}},
	}
}

// where is the part of a Problem the tests compare.
type where struct {
	Field string
	Row   int
}

func TestValidate(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		change func(r *txn.Run)
		want   []where
	}{
		{"Valid", func(r *txn.Run) {}, nil},
		{"ValidRunning", func(r *txn.Run) { r.Status = txn.StatusRunning }, nil},
		{"ValidDefaults", func(r *txn.Run) { r.Status, r.Config, r.Results, r.Metrics = "", nil, nil, nil }, nil},
		{"ValidFailedWithTimes", func(r *txn.Run) {
			r.Status, r.StartedAt, r.FinishedAt = txn.StatusFailed, start, ptr(start.Add(time.Minute))
		}, nil},
		{"MissingRequired", func(r *txn.Run) { r.Name, r.Model, r.Dataset = "", "", "" },
			[]where{{"name", -1}, {"model", -1}, {"dataset", -1}}},
		{"RejectsNULByte", func(r *txn.Run) { r.Name = "a\x00b"; r.Results[1].Output = "x\x00" },
			[]where{{"name", -1}, {"results.output", 1}}},
		{"RejectsInvalidUTF8", func(r *txn.Run) {
			r.Dataset = "\xff"
			r.Results[0].Input, r.Results[0].Expected, r.Results[1].Error = "\xc3", "ok\xfe", ptr("\x80")
			r.Metrics[1].Name = "m\xff"
		}, []where{{"dataset", -1}, {"results.input", 0}, {"results.expected", 0}, {"results.error", 1}, {"metrics.name", 1}}},
		{"RejectsNonFiniteNumbers", func(r *txn.Run) {
			r.Results[0].Score, r.Results[1].Score = math.NaN(), math.Inf(1)
			r.Metrics[0].Value, r.Metrics[1].Value = math.Inf(-1), math.NaN()
		}, []where{{"results.score", 0}, {"results.score", 1}, {"metrics.value", 0}, {"metrics.value", 1}}},
		{"RejectsNegativeCounts", func(r *txn.Run) {
			r.Results[0].LatencyMs, r.Results[1].PromptTokens, r.Results[1].CompletionTokens = -1, -2, math.MinInt32
		}, []where{{"results.latency_ms", 0}, {"results.prompt_tokens", 1}, {"results.completion_tokens", 1}}},
		{"RejectsDuplicateCaseID", func(r *txn.Run) {
			r.Results = append(r.Results, r.Results[0], r.Results[1], r.Results[0])
		}, []where{{"results.case_id", 2}, {"results.case_id", 3}, {"results.case_id", 4}}},
		{"RejectsDuplicateMetricName", func(r *txn.Run) { r.Metrics = append(r.Metrics, txn.Metric{Name: "accuracy", Value: 1}) },
			[]where{{"metrics.name", 2}}},
		{"RejectsMissingRowKeys", func(r *txn.Run) { r.Results[1].CaseID, r.Metrics[0].Name = "", "" },
			[]where{{"results.case_id", 1}, {"metrics.name", 0}}},
		{"RejectsUnknownStatus", func(r *txn.Run) { r.Status = "done" }, []where{{"status", -1}}},
		{"RejectsFinishedWhileRunning", func(r *txn.Run) { r.Status, r.FinishedAt = txn.StatusRunning, ptr(start) },
			[]where{{"finished_at", -1}}},
		{"RejectsFinishedBeforeStarted", func(r *txn.Run) { r.StartedAt, r.FinishedAt = start, ptr(start.Add(-time.Second)) },
			[]where{{"finished_at", -1}}},
		{"RejectsTimestampOutOfRange", func(r *txn.Run) {
			r.StartedAt, r.FinishedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), ptr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
		}, []where{{"started_at", -1}, {"finished_at", -1}}},
		{"RejectsInvalidJSONConfig", func(r *txn.Run) { r.Config = json.RawMessage(`{"a":`) }, []where{{"config", -1}}},
		{"RejectsNULInJSONConfig", func(r *txn.Run) { r.Config = json.RawMessage(`{"a":"\u0000"}`) }, []where{{"config", -1}}},
		{"RejectsInvalidUTF8InConfig", func(r *txn.Run) { r.Config = json.RawMessage("{\"a\":\"\xff\"}") }, []where{{"config", -1}}},
		{"RejectsOversizedConfig", func(r *txn.Run) {
			r.Config = json.RawMessage(`"` + strings.Repeat("x", txn.MaxConfigBytes) + `"`)
		}, []where{{"config", -1}}},
		{"RejectsOversizedKeys", func(r *txn.Run) {
			long := strings.Repeat("k", txn.MaxKeyBytes+1)
			r.Model, r.Results[0].CaseID, r.Metrics[0].Name = long, long, long
		}, []where{{"model", -1}, {"results.case_id", 0}, {"metrics.name", 0}}},
		{"AcceptsKeyAtLimit", func(r *txn.Run) { r.Results[0].CaseID = strings.Repeat("k", txn.MaxKeyBytes) }, nil},
		{"RejectsOversizedText", func(r *txn.Run) { r.Results[1].Expected = strings.Repeat("t", txn.MaxTextBytes+1) },
			[]where{{"results.expected", 1}}},
		{"RejectsTooManyResults", func(r *txn.Run) {
			r.Results = make([]txn.Result, txn.MaxResults+1)
			for i := range r.Results {
				r.Results[i].CaseID = "c" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i)
			}
		}, []where{{"results", -1}}},
		{"RejectsTooManyMetrics", func(r *txn.Run) {
			r.Metrics = make([]txn.Metric, txn.MaxMetrics+1)
			for i := range r.Metrics {
				r.Metrics[i].Name = "m" + itoa(i)
			}
		}, []where{{"metrics", -1}}},
		{"RejectsOversizedRun", func(r *txn.Run) {
			big := strings.Repeat("b", txn.MaxTextBytes)
			r.Results = make([]txn.Result, txn.MaxRunBytes/txn.MaxTextBytes+1)
			for i := range r.Results {
				r.Results[i] = txn.Result{CaseID: "c" + itoa(i), Input: big}
			}
		}, []where{{"results", -1}}},
		{"ReportsEverythingAtOnce", func(r *txn.Run) {
			r.Name, r.Status = "", "bogus"
			r.Results[0].Score, r.Results[1].LatencyMs = math.NaN(), -5
			r.Metrics[1].Value = math.Inf(1)
		}, []where{{"name", -1}, {"status", -1}, {"results.score", 0}, {"results.latency_ms", 1}, {"metrics.value", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := validRun()
			tc.change(&run)
			err := txn.Validate(run)
			var got []where
			if err != nil {
				var verr *txn.ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("Validate() = %v, want a *ValidationError", err)
				}
				for _, p := range verr.Problems {
					got = append(got, where{p.Field, p.Row})
					if p.Message == "" {
						t.Errorf("problem %+v has no message", p)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	run := validRun()
	run.Results[1].Score = math.NaN()
	run.Metrics = nil
	for i := range 15 {
		run.Metrics = append(run.Metrics, txn.Metric{Name: "dup", Value: float64(i)})
	}
	err := txn.Validate(run)
	want := "invalid eval run (15 problems): results[1].score: is NaN; it must be a finite number; " +
		`metrics[1].name: duplicates metrics[0].name "dup"; metric names must be unique within a run; `
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; and 5 more") {
		t.Errorf("Validate().Error() = %q, want prefix %q and suffix %q", err, want, "; and 5 more")
	}
}

package txn_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/aah/evaldb/txn"
)

// FuzzValidate feeds arbitrary text and numbers through Validate: it must
// never panic, and every problem it reports must name a field and a row that
// exist.
func FuzzValidate(f *testing.F) {
	f.Add("run", "model", "ds", "completed", []byte(`{}`), "c1", "in", "out", 0.5, int32(10), int32(1), "acc", 1.0, false)
	f.Add("", "", "", "bogus", []byte(`{"a":`), "", "\x00", "\xff", math.NaN(), int32(-1), int32(-1), "", math.Inf(1), true)
	f.Add("n\x00", "m", "d", "running", []byte(`"\u0000"`), "c", "", "", 1.0, int32(0), int32(0), "m", 0.0, true)
	f.Add("n", "m", "d", "", []byte(`{"a":"\ud800","b":[1e131072,1e-16384,-0]}`), "c", "", "", 1.0, int32(0), int32(0), "m", 0.0, false)
	f.Add("n", "m", "d", "", []byte(`["\ud83d\ude00",9.9e131071,"\\u0000","\u`), "c", "", "", 1.0, int32(0), int32(0), "m", 0.0, false)
	f.Fuzz(func(t *testing.T, name, model, dataset, status string, config []byte, caseID, input, output string,
		score float64, latency, tokens int32, metric string, value float64, dup bool) {
		run := txn.Run{
			Name: name, Model: model, Dataset: dataset, Status: status, Config: json.RawMessage(config),
			Results: []txn.Result{{CaseID: caseID, Input: input, Output: output, Score: score, LatencyMs: latency, PromptTokens: tokens, Error: &output}},
			Metrics: []txn.Metric{{Name: metric, Value: value}},
		}
		if dup {
			run.Results = append(run.Results, run.Results[0])
			run.Metrics = append(run.Metrics, run.Metrics[0])
		}
		err := txn.Validate(run)
		if err == nil {
			return
		}
		var verr *txn.ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) == 0 {
			t.Fatalf("Validate() = %v, want a *ValidationError with problems", err)
		}
		_ = verr.Error()
		for _, p := range verr.Problems {
			rows := map[string]int{"results": len(run.Results), "metrics": len(run.Metrics)}
			if p.Row >= 0 {
				section := p.Field[:len(p.Field)-len(p.Field[indexDot(p.Field):])]
				if p.Row >= rows[section] {
					t.Errorf("problem %v names a row that does not exist", p)
				}
			}
		}
	})
}

func indexDot(s string) int {
	for i := range len(s) {
		if s[i] == '.' {
			return i
		}
	}
	return len(s)
}

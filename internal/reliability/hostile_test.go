package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

// hostileStrings are valid text that must be stored and read back verbatim.
var hostileStrings = []string{
	`'; DROP TABLE eval_runs; --`,
	`" OR 1=1 --`,
	`$1 $2 ::text \x00 \\ % _ ' '' "`,
	"Robert'); DELETE FROM eval_results WHERE ('1'='1",
	"\u202e\u200b zero-width and bidi \U0001F600 ünïcødé 漢字",
	"line1\nline2\r\n\ttab",
	"{\"json\": [1, 2, 3]}",
}

// TestHostileRunsRoundTrip records runs whose every text field holds SQL
// injection strings, control characters, unicode and (for the long text
// fields) 1 MiB values, through RecordEvalRun, and reads them back
// verbatim through the typed queries.
func TestHostileRunsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	r := openRepo(t, ctx, withPassword(t, base, "connection_limit=4"), &l)
	q := r.Queries()
	huge := strings.Repeat("evaldb ", 1<<20/7)
	for i, s := range hostileStrings {
		e := s + " error"
		run := txn.Run{ID: uuid.New(), Name: s, Model: s + "m", Dataset: s + "d", Config: []byte(fmt.Sprintf(`{"s": %q}`, s)),
			Results: []txn.Result{
				{CaseID: s, Input: s, Expected: s, Output: huge, Score: math.Copysign(0, -1), Error: &e},
				{CaseID: s + "2", Input: huge, Score: math.MaxFloat64, LatencyMs: math.MaxInt32, PromptTokens: math.MaxInt32},
				{CaseID: s + "3", Score: -math.MaxFloat64, Expected: huge, Output: "", Error: new(string)},
				{CaseID: s + "4", Score: math.SmallestNonzeroFloat64},
			},
			Metrics: []txn.Metric{{Name: s, Value: math.MaxFloat64}, {Name: s + "min", Value: -math.SmallestNonzeroFloat64}},
		}
		if _, err := r.RecordEvalRun(ctx, run, nil); err != nil {
			l.scanErr("hostile record", err)
			t.Fatalf("string %d: RecordEvalRun: %v", i, err)
		}
		got, err := q.GetEvalRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{run.Name, run.Model, run.Dataset}, []string{got.Name, got.Model, got.Dataset}); diff != "" {
			t.Errorf("string %d: run fields mismatch (-want +got):\n%s", i, diff)
		}
		results, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, RowLimit: 100})
		if err != nil {
			t.Fatal(err)
		}
		type res struct {
			CaseID, Input, Expected, Output string
			Score                           float64
			Error                           *string
		}
		var want, have []res
		for _, x := range run.Results {
			want = append(want, res{x.CaseID, x.Input, x.Expected, x.Output, x.Score, x.Error})
		}
		for _, x := range results {
			have = append(have, res{x.CaseID, x.Input, x.Expected, x.Output, x.Score, x.Error})
		}
		less := func(a, b res) bool { return a.CaseID < b.CaseID }
		if diff := cmp.Diff(sortBy(want, less), sortBy(have, less)); diff != "" {
			t.Errorf("string %d: results mismatch (-want +got):\n%.2000s", i, diff)
		}
		metrics, err := q.ListEvalMetrics(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		gotM := map[string]float64{}
		for _, m := range metrics {
			gotM[m.Name] = m.Value
		}
		if diff := cmp.Diff(map[string]float64{s: math.MaxFloat64, s + "min": -math.SmallestNonzeroFloat64}, gotM); diff != "" {
			t.Errorf("string %d: metrics mismatch (-want +got):\n%s", i, diff)
		}
	}
	l.check(t)
}

func sortBy[T any](s []T, less func(a, b T) bool) []T {
	out := append([]T(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if less(out[j], out[i]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestHostileRunsRefused puts a NUL byte, invalid UTF-8 and NaN/±Inf into
// every field of a run, one at a time: each is refused with a
// *txn.ValidationError that names the field (and row), nothing is
// written, and nothing panics.
func TestHostileRunsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	r := openRepo(t, ctx, withPassword(t, base, "connection_limit=4"), &l)
	check := plainPool(t, base)
	valid := func() txn.Run {
		e := "e"
		return txn.Run{ID: uuid.New(), Name: "n", Model: "m", Dataset: "d",
			Results: []txn.Result{{CaseID: "c0"}, {CaseID: "c1", Error: &e}}, Metrics: []txn.Metric{{Name: "x"}}}
	}
	type mut struct {
		field string
		row   int
		apply func(*txn.Run, string)
	}
	textFields := []mut{
		{"name", -1, func(r *txn.Run, v string) { r.Name = v }},
		{"model", -1, func(r *txn.Run, v string) { r.Model = v }},
		{"dataset", -1, func(r *txn.Run, v string) { r.Dataset = v }},
		{"results.case_id", 1, func(r *txn.Run, v string) { r.Results[1].CaseID = v }},
		{"results.input", 1, func(r *txn.Run, v string) { r.Results[1].Input = v }},
		{"results.expected", 1, func(r *txn.Run, v string) { r.Results[1].Expected = v }},
		{"results.output", 1, func(r *txn.Run, v string) { r.Results[1].Output = v }},
		{"results.error", 1, func(r *txn.Run, v string) { r.Results[1].Error = &v }},
		{"metrics.name", 0, func(r *txn.Run, v string) { r.Metrics[0].Name = v }},
		{"config", -1, func(r *txn.Run, v string) { r.Config = []byte(fmt.Sprintf(`{"k": "%s"}`, v)) }},
	}
	bad := map[string]string{"NULByte": "a\x00b", "InvalidUTF8": "a\xff\xfeb", "EscapedNUL": `\u0000`}
	floatFields := []mut{
		{"results.score", 0, func(r *txn.Run, v string) { r.Results[0].Score = parseSpecial(v) }},
		{"metrics.value", 0, func(r *txn.Run, v string) { r.Metrics[0].Value = parseSpecial(v) }},
	}
	try := func(t *testing.T, run txn.Run, field string, row int) {
		t.Helper()
		_, err := r.RecordEvalRun(ctx, run, nil)
		l.scanErr("refused run", err)
		var verr *txn.ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("RecordEvalRun = %v, want a *txn.ValidationError", err)
		}
		found := false
		for _, p := range verr.Problems {
			found = found || (p.Field == field && p.Row == row)
		}
		if !found {
			t.Errorf("problems %+v do not name field %q row %d", verr.Problems, field, row)
		}
		if got, _ := storedRun(ctx, check, run.ID); got != (stored{}) {
			t.Errorf("a refused run left %+v", got)
		}
	}
	for _, f := range textFields {
		for name, v := range bad {
			if name == "EscapedNUL" && f.field != "config" {
				continue // a literal backslash-u is valid text outside JSON
			}
			t.Run(f.field+"/"+name, func(t *testing.T) {
				run := valid()
				f.apply(&run, v)
				try(t, run, f.field, f.row)
			})
		}
	}
	for _, f := range floatFields {
		for _, v := range []string{"NaN", "+Inf", "-Inf"} {
			t.Run(f.field+"/"+v, func(t *testing.T) {
				run := valid()
				f.apply(&run, v)
				try(t, run, f.field, f.row)
			})
		}
	}
	t.Run("HugeKey", func(t *testing.T) {
		run := valid()
		run.Results[1].CaseID = strings.Repeat("k", txn.MaxKeyBytes+1)
		try(t, run, "results.case_id", 1)
	})
	t.Run("TooManyResults", func(t *testing.T) {
		run := valid()
		run.Results = make([]txn.Result, txn.MaxResults+1)
		for i := range run.Results {
			run.Results[i].CaseID = fmt.Sprint(i)
		}
		try(t, run, "results", -1)
	})
	if got, err := storedAll(ctx, check); err != nil || got != (stored{}) {
		t.Errorf("after only refused runs the tables hold %+v (%v), want nothing", got, err)
	}
	l.check(t)
}

func parseSpecial(s string) float64 {
	switch s {
	case "NaN":
		return math.NaN()
	case "+Inf":
		return math.Inf(1)
	}
	return math.Inf(-1)
}

// TestLargestRun records a run at the size limit, 100,000 results, and
// reads back its count and a page from its end.
func TestLargestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	r := openRepo(t, ctx, withPassword(t, base, "connection_limit=4"), &l)
	run := makeRun(uuid.New(), txn.MaxResults)
	rec, err := r.RecordEvalRun(ctx, run, &txn.Options{Timeout: pick(2*time.Minute, 5*time.Minute)})
	l.scanErr("largest run", err)
	if err != nil {
		t.Fatalf("RecordEvalRun of %d results: %v", txn.MaxResults, err)
	}
	if rec.Results != txn.MaxResults {
		t.Errorf("Recorded.Results = %d, want %d", rec.Results, txn.MaxResults)
	}
	if got, _ := storedRun(ctx, plainPool(t, base), run.ID); got != (stored{1, txn.MaxResults, 3}) {
		t.Errorf("stored %+v, want {1 %d 3}", got, txn.MaxResults)
	}
	page, err := r.Queries().ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, AfterCaseID: fmt.Sprintf("case-%05d", txn.MaxResults-3), RowLimit: 10})
	if err != nil || len(page) != 2 {
		t.Errorf("last page: %d rows, %v; want 2", len(page), err)
	}
	l.check(t)
}

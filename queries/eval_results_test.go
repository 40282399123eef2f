package queries_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

// resultRow returns a valid result of run with case id c.
func resultRow(run uuid.UUID, c string, passed bool) gen.InsertEvalResultsParams {
	return gen.InsertEvalResultsParams{
		RunID: run, CaseID: c, Input: "input " + c, Expected: "exp " + c, Output: "out " + c,
		Score: 0.5, Passed: passed, LatencyMs: 10, PromptTokens: 100, CompletionTokens: 20,
	}
}

// asResult is the row InsertEvalResults stores for p.
func asResult(p gen.InsertEvalResultsParams) gen.EvalResult { return gen.EvalResult(p) }

func asResults(ps []gen.InsertEvalResultsParams) []gen.EvalResult {
	out := []gen.EvalResult{}
	for _, p := range ps {
		out = append(out, asResult(p))
	}
	return out
}

func mustInsertResults(t *testing.T, q *gen.Queries, rows []gen.InsertEvalResultsParams) {
	t.Helper()
	n, err := q.InsertEvalResults(context.Background(), rows)
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("InsertEvalResults(%d rows) = %d, %v", len(rows), n, err)
	}
}

func listAllResults(t *testing.T, q *gen.Queries, run uuid.UUID, size int32, failedOnly bool) ([]gen.EvalResult, int) {
	t.Helper()
	ctx := context.Background()
	all := []gen.EvalResult{}
	after := ""
	for pages := 1; ; pages++ {
		var page []gen.EvalResult
		var err error
		if failedOnly {
			page, err = q.ListFailedEvalResults(ctx, gen.ListFailedEvalResultsParams{RunID: run, AfterCaseID: after, RowLimit: size})
		} else {
			page, err = q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run, AfterCaseID: after, RowLimit: size})
		}
		if err != nil {
			t.Fatalf("list results after %q: %v", after, err)
		}
		if len(page) > int(size) || pages > 1000 {
			t.Fatalf("list results: page %d has %d rows for limit %d", pages, len(page), size)
		}
		all = append(all, page...)
		if len(page) < int(size) {
			return all, pages
		}
		after = page[len(page)-1].CaseID
	}
}

func TestInsertEvalResultsRoundTrip(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	run := mustInsertRun(t, q, "roundtrip")

	rows := []gen.InsertEvalResultsParams{
		{RunID: run.ID, CaseID: "a-unicode", Input: "¿Qué es 2+2? 日本語 🚀", Expected: "4 — four",
			Output: "cuatro\n\ttab \"quoted\" \\ backslash", Score: 0.987654321, Passed: true,
			LatencyMs: 2147483647, PromptTokens: 0, CompletionTokens: 12345, Error: nil},
		{RunID: run.ID, CaseID: "b-empty-error", Input: "", Expected: "", Output: "",
			Score: -1.5, Passed: false, LatencyMs: 0, PromptTokens: 1, CompletionTokens: 0, Error: ptr("")},
		{RunID: run.ID, CaseID: "c-error", Input: "x", Expected: "y", Output: "z",
			Score: math.SmallestNonzeroFloat64, Passed: false, LatencyMs: 30000, PromptTokens: 7,
			CompletionTokens: 8, Error: ptr("timeout after 30s: context deadline exceeded ✗")},
	}
	mustInsertResults(t, q, rows)
	got, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, RowLimit: 10})
	if err != nil {
		t.Fatalf("ListEvalResults: %v", err)
	}
	if diff := cmp.Diff(asResults(rows), got); diff != "" {
		t.Errorf("InsertEvalResults/ListEvalResults round trip mismatch (-want +got):\n%s", diff)
	}

	t.Run("EmptyInput", func(t *testing.T) {
		n, err := q.InsertEvalResults(ctx, nil)
		if err != nil || n != 0 {
			t.Errorf("InsertEvalResults(nil) = %d, %v; want 0, nil", n, err)
		}
	})
}

func TestInsertEvalResultsConstraints(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	run := mustInsertRun(t, q, "constraints")
	mustInsertResults(t, q, []gen.InsertEvalResultsParams{resultRow(run.ID, "existing", true)})

	tests := []struct {
		name       string
		mod        func(*gen.InsertEvalResultsParams)
		code       string
		constraint string
	}{
		{"NaNScore", func(p *gen.InsertEvalResultsParams) { p.Score = math.NaN() }, "23514", "eval_results_score_check"},
		{"InfScore", func(p *gen.InsertEvalResultsParams) { p.Score = math.Inf(1) }, "23514", "eval_results_score_check"},
		{"NegativeLatency", func(p *gen.InsertEvalResultsParams) { p.LatencyMs = -1 }, "23514", "eval_results_latency_ms_check"},
		{"NegativePromptTokens", func(p *gen.InsertEvalResultsParams) { p.PromptTokens = -1 }, "23514", "eval_results_prompt_tokens_check"},
		{"NegativeCompletionTokens", func(p *gen.InsertEvalResultsParams) { p.CompletionTokens = -1 }, "23514", "eval_results_completion_tokens_check"},
		{"EmptyCaseID", func(p *gen.InsertEvalResultsParams) { p.CaseID = "" }, "23514", "eval_results_case_id_check"},
		{"DuplicateCaseID", func(p *gen.InsertEvalResultsParams) { p.CaseID = "existing" }, "23505", "eval_results_pkey"},
		{"UnknownRun", func(p *gen.InsertEvalResultsParams) { p.RunID = uuid.New() }, "23503", "eval_results_run_id_fkey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bad row comes after a good one: COPY is one statement, so
			// neither is stored.
			good := resultRow(run.ID, "good-"+tt.name, true)
			bad := resultRow(run.ID, "bad-"+tt.name, false)
			tt.mod(&bad)
			_, err := q.InsertEvalResults(ctx, []gen.InsertEvalResultsParams{good, bad})
			wantPgError(t, "InsertEvalResults(COPY)", err, tt.code, tt.constraint)

			// The unnest path enforces the same constraints.
			_, err = q.InsertEvalResultsUnnest(ctx, unnestParams(bad.RunID, []gen.InsertEvalResultsParams{good, bad}))
			wantPgError(t, "InsertEvalResultsUnnest", err, tt.code, tt.constraint)
		})
	}

	t.Run("DuplicateWithinOneCopy", func(t *testing.T) {
		_, err := q.InsertEvalResults(ctx, []gen.InsertEvalResultsParams{resultRow(run.ID, "twice", true), resultRow(run.ID, "twice", false)})
		wantPgError(t, "InsertEvalResults(duplicate in batch)", err, "23505", "eval_results_pkey")
	})

	// Nothing but the first row was stored.
	got, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, RowLimit: 100})
	if err != nil {
		t.Fatalf("ListEvalResults: %v", err)
	}
	want := []gen.EvalResult{asResult(resultRow(run.ID, "existing", true))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results after rejected inserts mismatch (-want +got):\n%s", diff)
	}
}

func TestListEvalResults(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	run := mustInsertRun(t, q, "paged")
	other := mustInsertRun(t, q, "other")
	empty := mustInsertRun(t, q, "empty")

	// 9 results inserted in shuffled order, every third passed; the other
	// run has results with the same and with interleaving case ids.
	var rows []gen.InsertEvalResultsParams
	for i := range 9 {
		r := resultRow(run.ID, fmt.Sprintf("case-%03d", i), i%3 == 0)
		r.LatencyMs = int32(i)
		if i == 4 {
			r.Error = ptr("")
		}
		if i == 5 {
			r.Error = ptr("boom")
		}
		rows = append(rows, r)
	}
	want := asResults(rows)
	rand.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	mustInsertResults(t, q, rows)
	mustInsertResults(t, q, []gen.InsertEvalResultsParams{
		resultRow(other.ID, "case-000", false), resultRow(other.ID, "case-0045", false), resultRow(other.ID, "case-999", false),
	})
	var wantFailed []gen.EvalResult
	for _, r := range want {
		if !r.Passed {
			wantFailed = append(wantFailed, r)
		}
	}

	for _, size := range []int32{1, 2, 3, 4, 6, 9, 10} {
		t.Run(fmt.Sprintf("AllPageSize%d", size), func(t *testing.T) {
			got, pages := listAllResults(t, q, run.ID, size, false)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ListEvalResults paged by %d mismatch (-want +got):\n%s", size, diff)
			}
			if wantPages := len(want)/int(size) + 1; pages != wantPages {
				t.Errorf("ListEvalResults paged by %d took %d pages, want %d", size, pages, wantPages)
			}
		})
		t.Run(fmt.Sprintf("FailedPageSize%d", size), func(t *testing.T) {
			got, pages := listAllResults(t, q, run.ID, size, true)
			if diff := cmp.Diff(wantFailed, got); diff != "" {
				t.Errorf("ListFailedEvalResults paged by %d mismatch (-want +got):\n%s", size, diff)
			}
			if wantPages := len(wantFailed)/int(size) + 1; pages != wantPages {
				t.Errorf("ListFailedEvalResults paged by %d took %d pages, want %d", size, pages, wantPages)
			}
		})
	}

	t.Run("Boundaries", func(t *testing.T) {
		tests := []struct {
			name   string
			run    uuid.UUID
			after  string
			limit  int32
			failed bool
			want   []gen.EvalResult
		}{
			{"PageEndsExactlyAtLast", run.ID, "case-005", 3, false, want[6:9]},
			{"AfterLast", run.ID, "case-008", 3, false, []gen.EvalResult{}},
			{"AfterEverything", run.ID, "zzz", 3, false, []gen.EvalResult{}},
			{"CursorNotAnExistingCase", run.ID, "case-0035", 2, false, want[4:6]},
			{"EmptyRun", empty.ID, "", 10, false, []gen.EvalResult{}},
			{"UnknownRun", uuid.New(), "", 10, false, []gen.EvalResult{}},
			{"FailedCursorOnPassedCase", run.ID, "case-003", 10, true, []gen.EvalResult{want[4], want[5], want[7], want[8]}},
			{"FailedAfterLast", run.ID, "case-008", 10, true, []gen.EvalResult{}},
			{"FailedEmptyRun", empty.ID, "", 10, true, []gen.EvalResult{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []gen.EvalResult
				var err error
				if tt.failed {
					got, err = q.ListFailedEvalResults(ctx, gen.ListFailedEvalResultsParams{RunID: tt.run, AfterCaseID: tt.after, RowLimit: tt.limit})
				} else {
					got, err = q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: tt.run, AfterCaseID: tt.after, RowLimit: tt.limit})
				}
				if err != nil {
					t.Fatalf("list: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("NullVersusEmptyError", func(t *testing.T) {
		got, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: run.ID, AfterCaseID: "case-003", RowLimit: 3})
		if err != nil {
			t.Fatalf("ListEvalResults: %v", err)
		}
		var errs []*string
		for _, r := range got {
			errs = append(errs, r.Error)
		}
		if diff := cmp.Diff([]*string{ptr(""), ptr("boom"), nil}, errs); diff != "" {
			t.Errorf("error column of case-004..006 mismatch (-want +got):\n%s", diff)
		}
	})
}

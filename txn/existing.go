package txn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dberr"
)

// readPage is how many results checkExisting reads per query.
const readPage = 10_000

// maxDiffs bounds how many differences an ErrRunConflict error names.
const maxDiffs = 5

// RunConflictError is the error behind ErrRunConflict: a run with this id
// is already recorded with different content. errors.Is(err, ErrRunConflict)
// holds; errors.As gives the differences, for a service to pass on (evaldb's
// HTTP service answers them in its 409).
type RunConflictError struct {
	// ID is the run id given, and recorded before.
	ID uuid.UUID
	// Differences lists the first differences (at most 5), each as
	// "field: recorded …, given …" or naming the result or metric that differs.
	Differences []string
}

func (e *RunConflictError) Error() string {
	return fmt.Sprintf("record eval run %s: %v: %s; use a new id for a different run",
		e.ID, ErrRunConflict, strings.Join(e.Differences, "; "))
}

// Is makes errors.Is(err, ErrRunConflict) hold.
func (e *RunConflictError) Is(target error) bool { return target == ErrRunConflict }

// checkExisting reads the recorded run with id rr.p.ID in one consistent
// snapshot and compares it with rr. found is false when the run no longer
// exists (it was deleted after the conflict).
func checkExisting(ctx context.Context, db Beginner, o *Options, rr resolvedRun) (rec Recorded, found bool, err error) {
	ro := *o
	ro.Isolation, ro.AccessMode, ro.Cache = pgx.RepeatableRead, pgx.ReadOnly, nil
	if isNested(db) {
		ro.Isolation, ro.AccessMode = "", ""
	}
	var (
		run     gen.EvalRun
		results []gen.EvalResult
		metrics []gen.EvalMetric
	)
	err = do(ctx, db, &ro, func(ctx context.Context, tx *Tx) error {
		var err error
		results, metrics = results[:0], nil
		if run, err = tx.GetEvalRun(ctx, rr.p.ID); err != nil {
			return err
		}
		after := ""
		for {
			page, err := tx.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: rr.p.ID, AfterCaseID: after, RowLimit: readPage})
			if err != nil {
				return err
			}
			results = append(results, page...)
			if len(page) < readPage {
				break
			}
			after = page[len(page)-1].CaseID
		}
		metrics, err = tx.ListEvalMetrics(ctx, rr.p.ID)
		return err
	})
	if errors.Is(err, dberr.ErrNotFound) {
		return Recorded{}, false, nil
	}
	if err != nil {
		return Recorded{}, false, fmt.Errorf("record eval run %s: read the recorded run to compare: %w", rr.p.ID, err)
	}
	if diffs := diffRun(rr, run, results, metrics); len(diffs) > 0 {
		return Recorded{}, true, &RunConflictError{ID: rr.p.ID, Differences: diffs}
	}
	return Recorded{Run: run, Results: len(results), Metrics: len(metrics), AlreadyRecorded: true}, true, nil
}

// diffRun lists the first differences between the given run and the
// recorded one.
func diffRun(rr resolvedRun, run gen.EvalRun, results []gen.EvalResult, metrics []gen.EvalMetric) []string {
	var d differ
	p := rr.p
	d.str("name", p.Name, run.Name)
	d.str("model", p.Model, run.Model)
	d.str("dataset", p.Dataset, run.Dataset)
	d.str("status", p.Status, run.Status)
	if !jsonEqual(p.Config, run.Config) {
		d.add("config: recorded %s, given %s", truncate(string(run.Config)), truncate(string(p.Config)))
	}
	if !rr.startedDefaulted && !p.StartedAt.Equal(run.StartedAt) {
		d.add("started_at: recorded %s, given %s", run.StartedAt.Format(time.RFC3339Nano), p.StartedAt.Format(time.RFC3339Nano))
	}
	if !rr.finishedDefaulted && !timePtrEqual(p.FinishedAt, run.FinishedAt) {
		d.add("finished_at: recorded %s, given %s", fmtTimePtr(run.FinishedAt), fmtTimePtr(p.FinishedAt))
	}

	if len(results) != len(rr.results) {
		d.add("results: recorded %d, given %d", len(results), len(rr.results))
	}
	byCase := make(map[string]*gen.EvalResult, len(results))
	for i := range results {
		byCase[results[i].CaseID] = &results[i]
	}
	for i, r := range rr.results {
		got, ok := byCase[r.CaseID]
		if !ok {
			d.add("results[%d]: case %q is not recorded", i, truncate(r.CaseID))
			continue
		}
		want := gen.EvalResult{
			RunID: got.RunID, CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Error: r.Error,
		}
		if !reflect.DeepEqual(want, *got) {
			d.add("results[%d] (case %q) differs from the recorded one", i, truncate(r.CaseID))
		}
		if len(d.diffs) >= maxDiffs {
			return d.diffs
		}
	}

	if len(metrics) != len(rr.metrics) {
		d.add("metrics: recorded %d, given %d", len(metrics), len(rr.metrics))
	}
	byName := make(map[string]float64, len(metrics))
	for _, m := range metrics {
		byName[m.Name] = m.Value
	}
	for i, m := range rr.metrics {
		v, ok := byName[m.Name]
		switch {
		case !ok:
			d.add("metrics[%d]: %q is not recorded", i, truncate(m.Name))
		case v != m.Value:
			d.add("metrics[%d] (%q): recorded %v, given %v", i, truncate(m.Name), v, m.Value)
		}
		if len(d.diffs) >= maxDiffs {
			break
		}
	}
	return d.diffs
}

type differ struct{ diffs []string }

func (d *differ) add(format string, args ...any) {
	if len(d.diffs) < maxDiffs {
		d.diffs = append(d.diffs, fmt.Sprintf(format, args...))
	}
}

func (d *differ) str(field, given, recorded string) {
	if given != recorded {
		d.add("%s: recorded %q, given %q", field, truncate(recorded), truncate(given))
	}
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.Format(time.RFC3339Nano)
}

// jsonEqual compares two JSON documents the way jsonb does: key order,
// whitespace, string escapes and number spelling (1e2 = 100, 1.0 = 1,
// -0 = 0, however large the exponent) do not matter, and of duplicate keys
// the last wins. This is how the config of a retried run is compared with
// the recorded one, after a unique violation and after a lost COMMIT alike.
func jsonEqual(a, b []byte) bool {
	va, err := decodeJSON(a)
	if err != nil {
		return false
	}
	vb, err := decodeJSON(b)
	if err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return canonicalNumbers(v), nil
}

// canonicalNumbers replaces every json.Number by an exact canonical string
// (canonicalNumber), so that 1e1000 given equals the 1 and 1,000 zeros
// jsonb gives back.
func canonicalNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return canonicalNumber(string(x))
	case map[string]any:
		for k, e := range x {
			x[k] = canonicalNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonicalNumbers(e)
		}
	}
	return v
}

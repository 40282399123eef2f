package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/bench/seed"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// sample is one operation's latency distribution at one size.
type sample struct {
	size     int // eval_results rows
	op       string
	n        int
	p50, p99 time.Duration
}

// op is one measured operation; call runs it once with a fresh random
// argument, and after, when set, runs untimed after each sample; setup and
// teardown, when set, run once before the warm-up and after the samples.
type op struct {
	name            string
	n               int
	call            func(ctx context.Context, rng *rand.Rand) error
	after           func(ctx context.Context) error
	setup, teardown func(ctx context.Context) error
}

const pageSize = 100

func ops(ctx context.Context, r *repo.Repo, conn *pgx.Conn, d *dataset, iters, recordIters int) ([]op, error) {
	q := r.Queries()
	// Cursors among the oldest tenth of the runs, for the deep keyset page.
	var deep []gen.EvalRun
	for i := 0; i < max(1, len(d.fillers)/10); i += max(1, len(d.fillers)/500) {
		run, err := q.GetEvalRun(ctx, d.fillers[i])
		if err != nil {
			return nil, err
		}
		deep = append(deep, run)
	}
	filler := func(rng *rand.Rand) uuid.UUID { return d.fillers[rng.IntN(len(d.fillers))] }
	largest := 0
	for size := range d.probes {
		largest = max(largest, size)
	}
	big := d.probes[largest]
	list := []op{
		{name: "GetEvalRun", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			_, err := q.GetEvalRun(ctx, filler(rng))
			return err
		}},
		{name: "ListEvalRuns first page", n: iters, call: func(ctx context.Context, _ *rand.Rand) error {
			_, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: pageSize})
			return err
		}},
		{name: "ListEvalRuns deep page", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			// The keyset page costs what the first does, where OFFSET
			// would not.
			run := deep[rng.IntN(len(deep))]
			_, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{BeforeCreatedAt: &run.CreatedAt, BeforeID: &run.ID, RowLimit: pageSize})
			return err
		}},
		{name: "ListEvalResults first page", n: iters, call: func(ctx context.Context, _ *rand.Rand) error {
			_, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: big, RowLimit: pageSize})
			return err
		}},
		{name: "ListEvalResults deep page", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			after := seed.Result(largest - pageSize - rng.IntN(largest/10)).CaseID
			_, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: big, AfterCaseID: after, RowLimit: pageSize})
			return err
		}},
		{name: "ListFailedEvalResults first page", n: iters, call: func(ctx context.Context, _ *rand.Rand) error {
			_, err := q.ListFailedEvalResults(ctx, gen.ListFailedEvalResultsParams{RunID: big, RowLimit: pageSize})
			return err
		}},
		{name: "ListEvalMetrics", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			_, err := q.ListEvalMetrics(ctx, filler(rng))
			return err
		}},
		{name: "GetStudentWithMetrics", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			_, err := q.GetStudentWithMetrics(ctx, studentID(rng.IntN(d.students)))
			return err
		}},
		{name: "GetUserByEmail", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			_, err := q.GetUserByEmail(ctx, fmt.Sprintf("STUDENT%d@example.com", rng.IntN(d.students)))
			return err
		}},
		{name: "ListStudentMetricsInWindow", n: iters, call: func(ctx context.Context, rng *rand.Rand) error {
			_, err := q.ListStudentMetricsInWindow(ctx, gen.ListStudentMetricsInWindowParams{
				StudentID: studentID(rng.IntN(d.students)), RecordedFrom: base, RecordedUntil: base.Add(10 * 24 * time.Hour)})
			return err
		}},
	}
	for _, size := range probeSizes {
		id, ok := d.probes[size]
		if !ok {
			continue
		}
		// The probe runs are loaded by COPY, as another writer's are: no
		// summary is stored, and GetEvalRunSummary aggregates.
		list = append(list, op{name: fmt.Sprintf("GetEvalRunSummary %s-result run", human(size)), n: max(10, iters*1000/size), call: func(ctx context.Context, _ *rand.Rand) error {
			_, err := q.GetEvalRunSummary(ctx, id)
			return err
		}})
		// The same run with its summary stored, as RecordEvalRun leaves it.
		list = append(list, op{name: fmt.Sprintf("GetEvalRunSummary %s-result run, stored", human(size)), n: iters,
			setup: func(ctx context.Context) error {
				n, err := q.InsertEvalRunSummary(ctx, id)
				if err == nil && n != 1 {
					err = fmt.Errorf("InsertEvalRunSummary stored %d rows, want 1", n)
				}
				return err
			},
			call: func(ctx context.Context, _ *rand.Rand) error {
				_, err := q.GetEvalRunSummary(ctx, id)
				return err
			},
			// Back to the aggregating case for the next size.
			teardown: func(ctx context.Context) error {
				_, err := conn.Exec(ctx, "DELETE FROM eval_run_summaries WHERE run_id = $1", id)
				return err
			},
		})
	}
	for _, n := range []int{1000, 10000} {
		run := recordRun(n)
		var written uuid.UUID
		list = append(list, op{
			name: fmt.Sprintf("RecordEvalRun %s results", human(n)),
			n:    max(3, recordIters*1000/n*3),
			call: func(ctx context.Context, _ *rand.Rand) error {
				rec, err := r.RecordEvalRun(ctx, run, nil)
				written = rec.Run.ID
				return err
			},
			// Keep the tables at their nominal size.
			after: func(ctx context.Context) error {
				_, err := q.DeleteEvalRun(ctx, written)
				return err
			},
		})
	}
	return list, nil
}

func recordRun(n int) txn.Run {
	run := txn.Run{Name: "scale-record", Model: "gpt-x", Dataset: "bench-record", Config: []byte(`{"temperature":0.2}`)}
	for i := range n {
		r := seed.Result(i)
		run.Results = append(run.Results, txn.Result{CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens})
	}
	for i, name := range seed.MetricNames {
		run.Metrics = append(run.Metrics, txn.Metric{Name: name, Value: 0.5 + float64(i)/10})
	}
	return run
}

// measure runs every operation at the current size: a short warm-up, then
// the samples, one at a time (latency, not throughput).
func measure(ctx context.Context, r *repo.Repo, conn *pgx.Conn, d *dataset, iters, recordIters int) ([]sample, error) {
	rng := rand.New(rand.NewPCG(uint64(d.results), 42))
	list, err := ops(ctx, r, conn, d, iters, recordIters)
	if err != nil {
		return nil, err
	}
	var out []sample
	for _, o := range list {
		if o.setup != nil {
			if err := o.setup(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
		}
		ds := make([]time.Duration, o.n)
		for i := -min(10, o.n); i < o.n; i++ { // the first ones warm up
			start := time.Now()
			err := o.call(ctx, rng)
			if i >= 0 {
				ds[i] = time.Since(start)
			}
			if err == nil && o.after != nil {
				err = o.after(ctx)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
		}
		if o.teardown != nil {
			if err := o.teardown(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
		}
		slices.Sort(ds)
		out = append(out, sample{size: d.results, op: o.name, n: o.n, p50: pct(ds, 0.50), p99: pct(ds, 0.99)})
	}
	return out, nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func writeResults(dir string, ss []sample) error {
	f, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"eval_results", "operation", "samples", "p50_us", "p99_us"}) //nolint:errcheck // w.Error below
	for _, s := range ss {
		w.Write([]string{strconv.Itoa(s.size), s.op, strconv.Itoa(s.n), us(s.p50), us(s.p99)}) //nolint:errcheck
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "table.md"), []byte(table(ss)), 0o644)
}

func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }

// table is the markdown table of BENCHMARKS.md: one row per operation, a
// "p50 / p99" column per size.
func table(ss []sample) string {
	var sizes []int
	var opsSeen []string
	cell := map[string]string{}
	for _, s := range ss {
		if !slices.Contains(sizes, s.size) {
			sizes = append(sizes, s.size)
		}
		if !slices.Contains(opsSeen, s.op) {
			opsSeen = append(opsSeen, s.op)
		}
		cell[s.op+"|"+strconv.Itoa(s.size)] = fmt.Sprintf("%s / %s", short(s.p50), short(s.p99))
	}
	var b strings.Builder
	b.WriteString("| operation (p50 / p99) |")
	for _, n := range sizes {
		fmt.Fprintf(&b, " %s results |", human(n))
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---:|", len(sizes)))
	b.WriteString("\n")
	for _, o := range opsSeen {
		fmt.Fprintf(&b, "| %s |", o)
		for _, n := range sizes {
			c := cell[o+"|"+strconv.Itoa(n)]
			if c == "" {
				c = "–"
			}
			fmt.Fprintf(&b, " %s |", c)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func short(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

// explain writes EXPLAIN (ANALYZE, BUFFERS) of every read query at the
// current (largest) size, with the arguments the samples use, so that a
// curve that grows can be read against its plan.
func explain(ctx context.Context, conn *pgx.Conn, d *dataset, path string) error {
	largest := 0
	for size := range d.probes {
		largest = max(largest, size)
	}
	big := d.probes[largest]
	old := d.fillers[len(d.fillers)/20]
	var oldCreated time.Time
	if err := conn.QueryRow(ctx, "SELECT created_at FROM eval_runs WHERE id = $1", old).Scan(&oldCreated); err != nil {
		return err
	}
	window := gen.ListStudentMetricsInWindowParams{StudentID: studentID(d.students / 2), RecordedFrom: base, RecordedUntil: base.Add(10 * 24 * time.Hour)}
	// The arguments as gen's methods send them (gen/statements_gen.go), so
	// that a query that gains a parameter needs no change here.
	cases := []struct {
		name string
		sql  string
		args []any
	}{
		{"GetEvalRun", gen.GetEvalRun, gen.GetEvalRunArgs(old)},
		{"ListEvalRuns first page", gen.ListEvalRuns, gen.ListEvalRunsArgs(gen.ListEvalRunsParams{RowLimit: pageSize})},
		{"ListEvalRuns deep page", gen.ListEvalRuns, gen.ListEvalRunsArgs(gen.ListEvalRunsParams{BeforeCreatedAt: &oldCreated, BeforeID: &old, RowLimit: pageSize})},
		{"ListEvalResults deep page", gen.ListEvalResults, gen.ListEvalResultsArgs(gen.ListEvalResultsParams{RunID: big, AfterCaseID: seed.Result(largest - 2*pageSize).CaseID, RowLimit: pageSize})},
		{"ListFailedEvalResults first page", gen.ListFailedEvalResults, gen.ListFailedEvalResultsArgs(gen.ListFailedEvalResultsParams{RunID: big, RowLimit: pageSize})},
		{"GetEvalRunSummary " + human(largest) + "-result run", gen.GetEvalRunSummary, gen.GetEvalRunSummaryArgs(big)},
		{"GetStudentWithMetrics", gen.GetStudentWithMetrics, gen.GetStudentWithMetricsArgs(studentID(d.students / 2))},
		{"GetUserByEmail", gen.GetUserByEmail, gen.GetUserByEmailArgs(fmt.Sprintf("student%d@example.com", d.students/2))},
		{"ListStudentMetricsInWindow", gen.ListStudentMetricsInWindow, gen.ListStudentMetricsInWindowArgs(window)},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "EXPLAIN (ANALYZE, BUFFERS) at %d eval_results rows, %d runs, %d students\n", d.results, d.runs, d.students)
	for _, c := range cases {
		rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+c.sql, c.args...)
		if err != nil {
			return fmt.Errorf("explain %s: %w", c.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("explain %s: %w", c.name, err)
		}
		fmt.Fprintf(&b, "\n== %s\n%s\n", c.name, strings.Join(lines, "\n"))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

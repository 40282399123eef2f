package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// demoOptions sizes the demo's workload.
type demoOptions struct {
	runs, results, metrics   int
	students, studentMetrics int
	writers, readers, reads  int
	seed                     uint64
	progress                 bool
}

var (
	demoModels   = []string{"gpt-4o", "claude-sonnet-4", "llama-3.1-70b", "mistral-large"}
	demoDatasets = []string{"mmlu", "gsm8k", "humaneval"}
	demoMetrics  = []string{"accuracy", "mean_score", "p95_latency_ms", "total_tokens", "cost_usd",
		"f1", "bleu", "exact_match", "refusal_rate", "toxicity"}
	studentMetricNames = []string{"quiz_score", "attendance", "time_on_task_min"}
)

func runDemo(ctx context.Context, a *app, args []string) error {
	var o demoOptions
	fs := a.newFlags("demo", "[flags]",
		"Records a synthetic workload through repo and txn (eval runs of several models on a few\n"+
			"datasets, each with its results and metrics; students with performance metrics), reads\n"+
			"run summaries, result pages and student metrics back through the cache with many\n"+
			"goroutines sharing one pool, and prints per-query latencies, the cache hit ratio, rows\n"+
			"written per second, the pool's figures and the database's connections by state.")
	fs.IntVar(&o.runs, "runs", 24, "eval runs to record")
	fs.IntVar(&o.results, "results", 400, "results per run")
	fs.IntVar(&o.metrics, "metrics", 5, "summary metrics per run (at most 10)")
	fs.IntVar(&o.students, "students", 50, "students to create")
	fs.IntVar(&o.studentMetrics, "student-metrics", 30, "performance metrics per student")
	fs.IntVar(&o.writers, "writers", 4, "goroutines recording runs")
	fs.IntVar(&o.readers, "readers", 32, "goroutines reading, all sharing one pool")
	fs.IntVar(&o.reads, "reads", 4000, "reads in all")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the synthetic data")
	fs.BoolVar(&o.progress, "progress", true, "show progress on stderr: bars on a terminal, a line per phase elsewhere")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}

	r, err := a.openRepo(ctx, true, nil)
	if err != nil {
		return err
	}
	defer r.Close()

	d := &demo{a: a, r: r, o: o, rng: rand.New(rand.NewPCG(o.seed, uint64(time.Now().UnixNano())))}
	d.tag = fmt.Sprintf("%x", d.rng.Uint32())
	if err := d.record(ctx); err != nil {
		return err
	}
	if err := d.enrol(ctx); err != nil {
		return err
	}
	if err := d.read(ctx); err != nil {
		return err
	}
	return d.report(ctx)
}

func (o demoOptions) validate() error {
	check := func(name string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fmt.Errorf("-%s=%d: must be between %d and %d", name, v, lo, hi)
		}
		return nil
	}
	return errors.Join(
		check("runs", o.runs, 1, 100_000),
		check("results", o.results, 0, 100_000),
		check("metrics", o.metrics, 0, len(demoMetrics)),
		check("students", o.students, 0, 100_000),
		check("student-metrics", o.studentMetrics, 0, 100_000),
		check("writers", o.writers, 1, 1000),
		check("readers", o.readers, 1, 10_000),
		check("reads", o.reads, 0, 10_000_000),
	)
}

type demo struct {
	a   *app
	r   *repo.Repo
	o   demoOptions
	rng *rand.Rand
	tag string // distinguishes this demo's users from earlier ones in a kept database

	runIDs     []uuid.UUID
	caseIDs    []string
	studentIDs []string

	rowsWritten  atomic.Int64
	writeElapsed time.Duration
	readElapsed  time.Duration
	readErrors   atomic.Int64
}

// progress reports a phase of the demo on stderr: a bar redrawn in place
// when stderr is a terminal; elsewhere (a log, a CI job, a pipe), where
// carriage-return frames would pile up, one plain line when the phase
// starts and one when it ends.
type progress struct {
	bar   *progressbar.ProgressBar // nil: plain lines
	w     io.Writer
	what  string
	n     int
	start time.Time
	done  atomic.Bool
}

func (d *demo) bar(n int, what string) *progress {
	p := &progress{w: d.a.stderr, what: what, n: n, start: time.Now()}
	switch {
	case !d.o.progress:
		p.w = io.Discard
	case d.a.terminal:
		p.bar = progressbar.NewOptions(n,
			progressbar.OptionSetWriter(d.a.stderr),
			progressbar.OptionSetDescription(fmt.Sprintf("%-18s", what)),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	default:
		fmt.Fprintf(p.w, "evaldb demo: %s (%d) ...\n", what, n)
	}
	return p
}

// Add counts n more done.
func (p *progress) Add(n int) error {
	if p.bar != nil {
		return p.bar.Add(n)
	}
	return nil
}

// Finish ends the phase; a second call does nothing.
func (p *progress) Finish() error {
	if p.done.Swap(true) {
		return nil
	}
	if p.bar != nil {
		return p.bar.Finish()
	}
	_, err := fmt.Fprintf(p.w, "evaldb demo: %s: done in %s\n", p.what, time.Since(p.start).Round(time.Millisecond))
	return err
}

// makeRun builds run i of the synthetic workload: each model has its own
// skill, so pass rates differ in a way a reader can check at a glance.
func (d *demo) makeRun(i int, rng *rand.Rand) txn.Run {
	model := demoModels[i%len(demoModels)]
	dataset := demoDatasets[(i/len(demoModels))%len(demoDatasets)]
	skill := 0.55 + 0.1*float64(i%len(demoModels))
	started := time.Now().Add(-time.Duration(d.o.runs-i) * time.Minute).UTC()
	finished := started.Add(45 * time.Second)
	cfg, _ := json.Marshal(map[string]any{"temperature": 0.2, "max_tokens": 512, "seed": i})
	run := txn.Run{
		Name: fmt.Sprintf("%s on %s #%d", model, dataset, i), Model: model, Dataset: dataset,
		Status: "completed", Config: cfg, StartedAt: started, FinishedAt: &finished,
		Results: make([]txn.Result, d.o.results),
	}
	var passed, tokens, latencies float64
	for j := range run.Results {
		score := math.Min(1, math.Max(0, skill+0.25*rng.NormFloat64()))
		lat := int32(math.Min(60_000, math.Exp(5.5+0.6*rng.NormFloat64())))
		res := txn.Result{
			CaseID:   d.caseIDs[j],
			Input:    fmt.Sprintf("Question %d of %s: what is %d + %d?", j, dataset, j, i),
			Expected: fmt.Sprint(i + j), Output: fmt.Sprint(i + j + int(math.Round((1-score)*2))),
			Score: score, Passed: score >= 0.6, LatencyMs: lat,
			PromptTokens: int32(40 + rng.IntN(200)), CompletionTokens: int32(5 + rng.IntN(120)),
		}
		if rng.IntN(50) == 0 {
			msg := "rate limited: retried 3 times"
			res.Error, res.Passed = &msg, false
		}
		if res.Passed {
			passed++
		}
		tokens += float64(res.PromptTokens + res.CompletionTokens)
		latencies += float64(lat)
		run.Results[j] = res
	}
	n := math.Max(1, float64(len(run.Results)))
	values := map[string]float64{"accuracy": passed / n, "mean_score": skill, "p95_latency_ms": latencies / n * 1.9,
		"total_tokens": tokens, "cost_usd": tokens * 2e-6}
	for _, name := range demoMetrics[:d.o.metrics] {
		v, ok := values[name]
		if !ok {
			v = rng.Float64()
		}
		run.Metrics = append(run.Metrics, txn.Metric{Name: name, Value: v})
	}
	return run
}

// record writes the eval runs with several goroutines, each run one
// transaction through txn.RecordEvalRun.
func (d *demo) record(ctx context.Context) error {
	d.caseIDs = make([]string, d.o.results)
	for j := range d.caseIDs {
		d.caseIDs[j] = fmt.Sprintf("case-%05d", j)
	}
	bar := d.bar(d.o.runs, "recording runs")
	next := atomic.Int64{}
	ids := make([]uuid.UUID, d.o.runs)
	errs := make(chan error, d.o.writers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range d.o.writers {
		rng := rand.New(rand.NewPCG(d.o.seed, uint64(w)))
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= d.o.runs || ctx.Err() != nil {
					return
				}
				rec, err := d.r.RecordEvalRun(ctx, d.makeRun(i, rng), nil)
				if err != nil {
					errs <- fmt.Errorf("record run %d: %w", i, err)
					return
				}
				ids[i] = rec.Run.ID
				d.rowsWritten.Add(int64(1 + rec.Results + rec.Metrics))
				_ = bar.Add(1)
			}
		})
	}
	wg.Wait()
	d.writeElapsed = time.Since(start)
	_ = bar.Finish()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	d.runIDs = ids
	return ctx.Err()
}

// enrol creates the students, each with its user, profile and performance
// metrics in one transaction.
func (d *demo) enrol(ctx context.Context) error {
	bar := d.bar(d.o.students, "enrolling students")
	start := time.Now()
	for i := range d.o.students {
		sid := fmt.Sprintf("S-%s-%05d", d.tag, i)
		err := d.r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
			u, err := tx.CreateUser(ctx, gen.CreateUserParams{
				Email: fmt.Sprintf("student%05d.%s@example.edu", i, d.tag), Name: fmt.Sprintf("Student %d", i)})
			if err != nil {
				return err
			}
			p, err := tx.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: sid})
			if err != nil {
				return err
			}
			ms := make([]gen.InsertPerformanceMetricsParams, d.o.studentMetrics)
			for k := range ms {
				ms[k] = gen.InsertPerformanceMetricsParams{
					StudentProfileID: p.ID, Name: studentMetricNames[k%len(studentMetricNames)],
					Value:      math.Round(d.rng.Float64()*1000) / 10,
					RecordedAt: time.Now().Add(-time.Duration(d.o.studentMetrics-k) * 24 * time.Hour).UTC(),
				}
			}
			_, err = tx.InsertPerformanceMetrics(ctx, ms)
			return err
		})
		if err != nil {
			return fmt.Errorf("enrol student %s: %w", sid, err)
		}
		d.studentIDs = append(d.studentIDs, sid)
		d.rowsWritten.Add(int64(2 + d.o.studentMetrics))
		_ = bar.Add(1)
	}
	d.writeElapsed += time.Since(start)
	return bar.Finish()
}

// read runs the read mix with many goroutines on the one pool. Targets are
// Zipf-distributed, as real traffic is: a few runs and students are hot.
func (d *demo) read(ctx context.Context) error {
	if d.o.reads == 0 {
		return nil
	}
	bar := d.bar(d.o.reads, "reading")
	q := d.r.Queries()
	left := atomic.Int64{}
	left.Store(int64(d.o.reads))
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for g := range d.o.readers {
		rng := rand.New(rand.NewPCG(d.o.seed+1, uint64(g)))
		runZipf := newZipf(rng, len(d.runIDs))
		stuZipf := newZipf(rng, len(d.studentIDs))
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				if err := d.readOne(ctx, q, rng, runZipf, stuZipf); err != nil {
					d.readErrors.Add(1)
					once.Do(func() { firstErr = err })
				}
				_ = bar.Add(1)
			}
		})
	}
	wg.Wait()
	d.readElapsed = time.Since(start)
	_ = bar.Finish()
	if firstErr != nil {
		return fmt.Errorf("%d of %d reads failed; the first: %w", d.readErrors.Load(), d.o.reads, firstErr)
	}
	return ctx.Err()
}

func (d *demo) readOne(ctx context.Context, q gen.Querier, rng *rand.Rand, runs, students func() int) error {
	const page = 50
	p := rng.IntN(100)
	switch {
	case p < 30:
		_, err := q.GetEvalRunSummary(ctx, d.runIDs[runs()])
		return err
	case p < 55:
		after := ""
		if n := len(d.caseIDs); n > page && rng.IntN(2) == 0 {
			after = d.caseIDs[rng.IntN(n/page)*page]
		}
		_, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: d.runIDs[runs()], AfterCaseID: after, RowLimit: page})
		return err
	case p < 65:
		_, err := q.ListFailedEvalResults(ctx, gen.ListFailedEvalResultsParams{RunID: d.runIDs[runs()], RowLimit: page})
		return err
	case p < 70:
		_, err := q.ListEvalRuns(ctx, gen.ListEvalRunsParams{RowLimit: 20})
		return err
	case p < 75:
		_, err := q.ListEvalMetrics(ctx, d.runIDs[runs()])
		return err
	default:
		if len(d.studentIDs) == 0 {
			_, err := q.GetEvalRun(ctx, d.runIDs[runs()])
			return err
		}
		_, err := q.GetStudentWithMetrics(ctx, d.studentIDs[students()])
		return err
	}
}

// newZipf returns a sampler of indexes in [0, n) with a Zipf(1.1)
// distribution, or one that always returns 0 for n <= 1.
func newZipf(rng *rand.Rand, n int) func() int {
	if n <= 1 {
		return func() int { return 0 }
	}
	// math/rand/v2 has no Zipf; invert the CDF over precomputed weights.
	cdf := make([]float64, n)
	var sum float64
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), 1.1)
		cdf[i] = sum
	}
	return func() int {
		return sort.SearchFloat64s(cdf, rng.Float64()*sum)
	}
}

func (d *demo) report(ctx context.Context) error {
	st, err := d.r.Stats(ctx)
	if err != nil {
		return fmt.Errorf("read stats: %w", err)
	}
	w := d.a.stdout
	fmt.Fprintf(w, "\nevaldb demo: %d runs × %d results, %d students × %d metrics, %d reads by %d goroutines\n\n",
		d.o.runs, d.o.results, d.o.students, d.o.studentMetrics, d.o.reads, d.o.readers)

	if err := d.leaderboard(ctx, w); err != nil {
		return err
	}

	fmt.Fprintf(w, "WRITES  %d rows in %s: %.0f rows/s\n", d.rowsWritten.Load(), d.writeElapsed.Round(time.Millisecond),
		float64(d.rowsWritten.Load())/math.Max(d.writeElapsed.Seconds(), 1e-9))
	fmt.Fprintf(w, "READS   %d in %s: %.0f reads/s, %d failed\n\n", d.o.reads, d.readElapsed.Round(time.Millisecond),
		float64(d.o.reads)/math.Max(d.readElapsed.Seconds(), 1e-9), d.readErrors.Load())

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DATABASE QUERY\tCOUNT\tERRORS\tP50\tP95\tMAX\t")
	for _, q := range st.Queries {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t\n", q.Name, q.Count, q.Errors, ms(q.P50), ms(q.P95), ms(q.Max))
	}
	_ = tw.Flush()

	if c := d.r.Cache(); c != nil {
		cs := c.Stats()
		served := cs.Hits + cs.StaleServes
		ratio := float64(served) / math.Max(1, float64(served+cs.Misses))
		fmt.Fprintf(w, "\nCACHE   hit ratio %.1f%% (%d hits, %d stale serves, %d misses, %d evictions)\n",
			100*ratio, cs.Hits, cs.StaleServes, cs.Misses, cs.Evictions)
	} else {
		fmt.Fprintln(w, "\nCACHE   off")
	}
	p := st.Pool
	fmt.Fprintf(w, "POOL    max %d; open %d (idle %d, in use %d); %d acquires, %d waited %s in all, %d timed out\n",
		p.MaxConns, p.TotalConns, p.IdleConns, p.AcquiredConns, p.AcquireCount, p.EmptyAcquireCount,
		p.EmptyAcquireWaitTime.Round(time.Millisecond), p.AcquireTimeouts)
	fmt.Fprintf(w, "SERVER  connections to this database: %s\n", byState(st.Connections))
	return nil
}

// leaderboard prints what an evaluation platform looks at first: the
// models of the runs this demo recorded, ranked by pass rate, with their
// mean score, latency percentiles and the tokens they spent.
func (d *demo) leaderboard(ctx context.Context, w io.Writer) error {
	rows, err := d.r.Queries().EvalLeaderboard(ctx, d.runIDs)
	if err != nil {
		return fmt.Errorf("read the leaderboard: %w", err)
	}
	fmt.Fprintf(w, "LEADERBOARD  the %d runs recorded above, by model\n", len(d.runIDs))
	if len(rows) == 0 {
		fmt.Fprintln(w, "  (no results recorded)")
		fmt.Fprintln(w)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "MODEL\tRUNS\tRESULTS\tPASS RATE\tMEAN SCORE\tP50 LATENCY\tP95 LATENCY\tTOKENS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%.3f\t%.0fms\t%.0fms\t%d\t\n",
			r.Model, r.Runs, r.Results, 100*r.PassRate, r.MeanScore, r.P50LatencyMs, r.P95LatencyMs, r.Tokens)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func byState(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

package txn

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// BenchmarkRecordSummaryStep records runs of 1,000 (one batch) and 10,000
// (COPY) results with and without the summary step, the cost of storing
// the summary at recording. With it, the summary statement is sent on its
// own after the results (RecordEvalRun puts it in the batch when there is
// one, saving that round trip), and summary-ms/op is its time alone: on a
// loaded machine a steadier figure than the difference of two recordings. The two variants run side by side within each
// size; -count repeats each one in a row, so for rounds interleaved on a
// shared machine run the binary in a loop:
//
//	go test -c -o /tmp/txn.test ./txn/
//	for r in 1 2 3 4 5; do (cd txn && /tmp/txn.test -test.run '^$' -test.bench RecordSummaryStep -test.benchtime=10x); done
func BenchmarkRecordSummaryStep(b *testing.B) {
	pool := dbtest.Pool(b)
	ctx := context.Background()
	o, err := (&Options{}).resolve()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, 1))
	for _, n := range []int{1000, 10000} {
		run := Run{Name: "bench", Model: "m", Dataset: "d", Metrics: []Metric{{Name: "acc", Value: 0.5}}}
		for i := range n {
			run.Results = append(run.Results, Result{CaseID: fmt.Sprintf("case-%06d", i), Input: "question", Expected: "42",
				Output: "42", Score: rng.Float64(), Passed: rng.IntN(3) > 0, LatencyMs: rng.Int32N(5000), PromptTokens: 50, CompletionTokens: 7})
		}
		for _, summary := range []bool{true, false} {
			name := "with"
			if !summary {
				name = "without"
			}
			b.Run(fmt.Sprintf("results=%d/%s", n, name), func(b *testing.B) {
				var step time.Duration // the summary statement alone, sent on its own
				// Statistics as autovacuum keeps them: the runs recorded
				// so far are in the table's.
				if _, err := pool.Exec(ctx, "ANALYZE eval_results"); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					rr, err := resolveRun(run, time.Now()) // a new run id each time
					if err != nil {
						b.Fatal(err)
					}
					err = do(ctx, pool, &o, func(ctx context.Context, tx *Tx) error {
						var err error
						if n >= o.CopyThreshold {
							_, err = writeCopy(ctx, tx.Raw(), rr, false)
						} else {
							_, err = writeBatch(ctx, tx.Raw(), rr, false)
						}
						if err != nil || !summary {
							return err
						}
						start := time.Now()
						_, err = tx.Raw().Exec(ctx, gen.InsertEvalRunSummary, gen.InsertEvalRunSummaryArgs(rr.p.ID)...)
						step += time.Since(start)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				if summary {
					b.ReportMetric(float64(step.Microseconds())/1e3/float64(b.N), "summary-ms/op")
				}
			})
		}
	}
}

package txn

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aah/evaldb/internal/dbtest"
)

// BenchmarkRecordSummaryStep records runs of 1,000 (one batch) and 10,000
// (COPY) results with and without the summary step, the cost of storing
// the summary at recording. The two variants alternate within each size;
// run it with -count to interleave rounds on a shared machine:
//
//	go test -run '^$' -bench RecordSummaryStep -benchtime=10x -count=5 ./txn/
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
				for b.Loop() {
					rr, err := resolveRun(run, time.Now()) // a new run id each time
					if err != nil {
						b.Fatal(err)
					}
					err = do(ctx, pool, &o, func(ctx context.Context, tx *Tx) error {
						if n >= o.CopyThreshold {
							_, err := writeCopy(ctx, tx.Raw(), rr, summary)
							return err
						}
						_, err := writeBatch(ctx, tx.Raw(), rr, summary)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

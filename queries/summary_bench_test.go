package queries_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// BenchmarkGetEvalRunSummary reads the summary of runs of 1,000, 10,000
// and 100,000 results uncached, stored (the row RecordEvalRun writes) and
// aggregated (a run with the same results and no stored row), side by
// side within each size, next to GetEvalRun (a primary-key read). -count
// repeats each one in a row; for rounds interleaved on a shared machine,
// run the binary in a loop:
//
//	go test -c -o /tmp/queries.test ./queries/
//	for r in 1 2 3; do (cd queries && /tmp/queries.test -test.run '^$' -test.bench GetEvalRunSummary -test.benchtime=1s); done
func BenchmarkGetEvalRunSummary(b *testing.B) {
	pool := dbtest.Pool(b)
	q := gen.New(pool)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(16, 2))
	sizes := []int{1000, 10000, 100000}
	runs := map[int][2]uuid.UUID{}
	for _, n := range sizes {
		var ids [2]uuid.UUID
		rows := make([]gen.InsertEvalResultsParams, n)
		for i := range rows {
			rows[i] = gen.InsertEvalResultsParams{CaseID: fmt.Sprintf("case-%06d", i), Input: "question", Expected: "42", Output: "42",
				Score: rng.Float64(), Passed: rng.IntN(3) > 0, LatencyMs: rng.Int32N(5000), PromptTokens: 50, CompletionTokens: 7}
		}
		for k := range ids {
			p := runParams(fmt.Sprintf("bench-%d-%d", n, k))
			if _, err := q.InsertEvalRun(ctx, p); err != nil {
				b.Fatal(err)
			}
			for i := range rows {
				rows[i].RunID = p.ID
			}
			if _, err := q.InsertEvalResults(ctx, rows); err != nil {
				b.Fatal(err)
			}
			ids[k] = p.ID
		}
		if _, err := q.InsertEvalRunSummary(ctx, ids[0]); err != nil {
			b.Fatal(err)
		}
		runs[n] = ids
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	// The reference: a primary-key read of one of the runs.
	b.Run("GetEvalRun", func(b *testing.B) {
		for b.Loop() {
			if _, err := q.GetEvalRun(ctx, runs[sizes[0]][0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range sizes {
		for k, name := range []string{"stored", "aggregated"} {
			id := runs[n][k]
			b.Run(fmt.Sprintf("results=%d/%s", n, name), func(b *testing.B) {
				for b.Loop() {
					s, err := q.GetEvalRunSummary(ctx, id)
					if err != nil || s.ResultCount != int64(n) {
						b.Fatalf("GetEvalRunSummary = %d results, %v", s.ResultCount, err)
					}
				}
			})
		}
	}
}

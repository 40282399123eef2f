package repo

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

// BenchmarkGetEvalRuns looks up 20 runs by id (cache off): as one
// :batchone batch through a Repo, as the same batch through sqlc over a
// bare pgxpool (what the statement path costs a batch), and as 20
// GetEvalRun statements through the Repo (what the batch saves).
//
//	go test -run '^$' -bench GetEvalRuns -benchmem -count 6 ./repo/
func BenchmarkGetEvalRuns(b *testing.B) {
	ctx := context.Background()
	dbURL := dbtest.URL(b)
	r, err := Open(ctx, &Config{URL: dbURL, Env: Production, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var ids []uuid.UUID
	for range 20 {
		rec, err := r.RecordEvalRun(ctx, txn.Run{Name: "bench", Model: "m", Dataset: "d"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, rec.Run.ID)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	batch := func(q gen.Querier) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				q.GetEvalRuns(ctx, ids).QueryRow(func(_ int, _ gen.EvalRun, err error) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				})
				if n != len(ids) {
					b.Fatalf("%d runs, want %d", n, len(ids))
				}
			}
		}
	}
	b.Run("Batch/Repo", batch(r.Queries()))
	b.Run("Batch/BarePool", batch(gen.New(pool)))
	b.Run("Single/Repo", func(b *testing.B) {
		b.ReportAllocs()
		q := r.Queries()
		for b.Loop() {
			for _, id := range ids {
				if _, err := q.GetEvalRun(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

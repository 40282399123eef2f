package txn_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

// Validate reports every problem of a run at once, with field and row.
func ExampleValidate() {
	err := txn.Validate(txn.Run{
		Name: "nightly", Model: "gpt-x", // Dataset missing
		Results: []txn.Result{
			{CaseID: "c1", Score: 1},
			{CaseID: "c1", Score: math.NaN(), LatencyMs: -3},
		},
		Metrics: []txn.Metric{{Name: "accuracy\x00", Value: 0.5}},
	})
	var verr *txn.ValidationError
	if errors.As(err, &verr) {
		for _, p := range verr.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// dataset: is required; set it to a non-empty string
	// results[1].case_id: duplicates results[0].case_id "c1"; case ids must be unique within a run
	// results[1].score: is NaN; it must be a finite number
	// results[1].latency_ms: is -3; it must be >= 0
	// metrics[0].name: contains a NUL byte (PostgreSQL text cannot hold \x00); remove or escape it
}

// RecordEvalRun writes a run, its results and its metrics atomically. Give
// the id yourself when you may retry: a retry then returns the recorded run.
func ExampleRecordEvalRun() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	rec, err := txn.RecordEvalRun(ctx, pool, txn.Run{
		ID:   uuid.Must(uuid.NewV7()),
		Name: "nightly", Model: "gpt-x", Dataset: "arith-v1", // Status "" = completed, finished now
		Results: []txn.Result{{CaseID: "c1", Input: "1+1", Expected: "2", Output: "2", Score: 1, Passed: true, LatencyMs: 12}},
		Metrics: []txn.Metric{{Name: "accuracy", Value: 1}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Run.ID, rec.Results, rec.Metrics, rec.AlreadyRecorded)
}

// Do runs fn in one serializable transaction, retrying serialization
// failures; fn must be safe to run again.
func ExampleDo() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	id := uuid.MustParse("0192f5d0-0000-7000-8000-000000000001")
	err = txn.Do(ctx, pool, &txn.Options{Isolation: pgx.Serializable}, func(ctx context.Context, tx *txn.Tx) error {
		run, err := tx.GetEvalRun(ctx, id) // typed queries bound to the transaction
		if err != nil {
			return err // errors.Is(err, repo.ErrNotFound) when there is no such run
		}
		if run.Status != txn.StatusRunning {
			return nil
		}
		_, err = tx.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: id, Status: txn.StatusFailed})
		return err
	})
	if err != nil {
		panic(err)
	}
}

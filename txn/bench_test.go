package txn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

// BenchmarkRecordEvalRun records runs of 10 to 10,000 results (5 metrics
// each) in one transaction, five ways:
//
//   - batch: RecordEvalRun's small-run path, one pipelined batch
//   - copy: RecordEvalRun's large-run path, COPY in the transaction
//   - auto: RecordEvalRun with the default CopyThreshold
//   - perrow: one INSERT per result and per metric
//   - createmany: Prisma's createMany shape, multi-row INSERT statements of
//     at most 32,767 parameters (2,978 results) each
//
// Run it short, e.g. go test -run '^$' -bench RecordEvalRun -benchtime=20x ./txn/
func BenchmarkRecordEvalRun(b *testing.B) {
	pool := dbtest.Pool(b)
	ctx := context.Background()
	warmUp(b, pool)
	for _, n := range []int{10, 100, 1000, 10000} {
		run := makeRun(uuid.Nil, n, 5)
		for _, path := range []struct {
			name   string
			record func(ctx context.Context, db *pgxpool.Pool, run txn.Run) error
		}{
			{"batch", recordWith(-1)},
			{"copy", recordWith(1)},
			{"auto", recordWith(0)},
			{"perrow", recordPerRow},
			{"createmany", recordCreateMany},
		} {
			b.Run(fmt.Sprintf("%s/results=%d", path.name, n), func(b *testing.B) {
				start := time.Now()
				for b.Loop() {
					if err := path.record(ctx, pool, run); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
			})
		}
	}
}

func recordWith(threshold int) func(ctx context.Context, db *pgxpool.Pool, run txn.Run) error {
	return func(ctx context.Context, db *pgxpool.Pool, run txn.Run) error {
		_, err := txn.RecordEvalRunWithOptions(ctx, db, run, &txn.Options{CopyThreshold: threshold})
		return err
	}
}

func insertRunParams(run txn.Run) gen.InsertEvalRunParams {
	now := time.Now()
	return gen.InsertEvalRunParams{ID: uuid.Must(uuid.NewV7()), Name: run.Name, Model: run.Model, Dataset: run.Dataset,
		Status: txn.StatusCompleted, Config: run.Config, StartedAt: now, FinishedAt: &now}
}

const insertResult = `INSERT INTO eval_results (run_id, case_id, input, expected, output, score, passed, latency_ms, prompt_tokens, completion_tokens, error) VALUES `

func resultValues(id uuid.UUID, r txn.Result) []any {
	return []any{id, r.CaseID, r.Input, r.Expected, r.Output, r.Score, r.Passed, r.LatencyMs, r.PromptTokens, r.CompletionTokens, r.Error}
}

// recordPerRow is the naive loop: one statement, one round trip, per row.
func recordPerRow(ctx context.Context, db *pgxpool.Pool, run txn.Run) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		p := insertRunParams(run)
		if _, err := gen.New(tx).InsertEvalRun(ctx, p); err != nil {
			return err
		}
		sql := insertResult + "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
		for _, r := range run.Results {
			if _, err := tx.Exec(ctx, sql, resultValues(p.ID, r)...); err != nil {
				return err
			}
		}
		for _, m := range run.Metrics {
			if _, err := tx.Exec(ctx, `INSERT INTO eval_metrics (run_id, name, value) VALUES ($1, $2, $3)`, p.ID, m.Name, m.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordCreateMany is what Prisma's $transaction([create, createMany,
// create]) sends: multi-row INSERTs, chunked to PostgreSQL's 32,767 bind
// parameters, one round trip each.
func recordCreateMany(ctx context.Context, db *pgxpool.Pool, run txn.Run) error {
	const cols = 11
	const perStmt = 32767 / cols
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		p := insertRunParams(run)
		if _, err := gen.New(tx).InsertEvalRun(ctx, p); err != nil {
			return err
		}
		for lo := 0; lo < len(run.Results); lo += perStmt {
			chunk := run.Results[lo:min(lo+perStmt, len(run.Results))]
			var sb strings.Builder
			sb.WriteString(insertResult)
			args := make([]any, 0, len(chunk)*cols)
			for i, r := range chunk {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteByte('(')
				for c := range cols {
					if c > 0 {
						sb.WriteByte(',')
					}
					fmt.Fprintf(&sb, "$%d", i*cols+c+1)
				}
				sb.WriteByte(')')
				args = append(args, resultValues(p.ID, r)...)
			}
			if _, err := tx.Exec(ctx, sb.String(), args...); err != nil {
				return err
			}
		}
		var sb strings.Builder
		sb.WriteString(`INSERT INTO eval_metrics (run_id, name, value) VALUES `)
		args := []any{p.ID}
		for i, m := range run.Metrics {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "($1,$%d,$%d)", 2*i+2, 2*i+3)
			args = append(args, m.Name, m.Value)
		}
		_, err := tx.Exec(ctx, sb.String(), args...)
		return err
	})
}

// BenchmarkRecordEvalRunCrossover compares RecordEvalRun's two write paths
// around the sizes where COPY starts to win, to set DefaultCopyThreshold:
//
//	go test -run '^$' -bench RecordEvalRunCrossover -benchtime=20x -count=3 ./txn/
func BenchmarkRecordEvalRunCrossover(b *testing.B) {
	pool := dbtest.Pool(b)
	ctx := context.Background()
	warmUp(b, pool)
	for _, n := range []int{30, 100, 300, 1000, 2000, 3000} {
		run := makeRun(uuid.Nil, n, 5)
		for _, path := range []struct {
			name      string
			threshold int
		}{{"batch", -1}, {"copy", 1}} {
			b.Run(fmt.Sprintf("results=%d/%s", n, path.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := txn.RecordEvalRunWithOptions(ctx, pool, run, &txn.Options{CopyThreshold: path.threshold}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// warmUp records a run on each path first, so that the first
// sub-benchmark does not pay for connecting and describing statements.
func warmUp(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	for _, record := range []func(context.Context, *pgxpool.Pool, txn.Run) error{recordWith(-1), recordWith(1), recordPerRow, recordCreateMany} {
		if err := record(context.Background(), pool, makeRun(uuid.Nil, 10, 5)); err != nil {
			b.Fatal(err)
		}
	}
}

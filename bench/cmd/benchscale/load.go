package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/bench/seed"
	"github.com/aah/evaldb/gen"
)

// The shape of the data set at n eval_results rows:
//   - probe runs of 1,000, 10,000 and 100,000 results, each present once n
//     is at least ten times its size (so GetEvalRunSummary is measured on
//     runs of every size the platform records);
//   - filler runs of fillerResults results each for the rest, so eval_runs
//     grows as n/100;
//   - n/100 students (at least 1,000), each with metricsPerStudent metrics.
const (
	fillerResults     = 100
	metricsPerStudent = 20
	copyChunk         = 50_000
)

var probeSizes = []int{1_000, 10_000, 100_000}

var models = []string{"gpt-x", "gpt-x-mini", "claude-y", "llama-z", "mistral-w", "gemini-v", "qwen-u", "phi-t"}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type dataset struct {
	results, runs, students int
	probes                  map[int]uuid.UUID             // probe size → run id
	fillers                 []uuid.UUID                   // in created_at order
	pending                 []gen.InsertEvalResultsParams // sent by COPY in chunks of copyChunk rows
}

// grow adds rows until eval_results holds n of them. It loads with COPY
// (gen's :copyfrom queries) and creates runs and students with gen's
// queries, with session_replication_role=replica so that the foreign-key
// and notification triggers do not run for rows that are consistent by
// construction; the indexes are maintained as usual. It ends with VACUUM
// ANALYZE, so every size is measured with fresh statistics and a visibility
// map, as autovacuum would leave a table that has settled.
func (d *dataset) grow(ctx context.Context, conn *pgx.Conn, n int) error {
	if d.probes == nil {
		d.probes = map[int]uuid.UUID{}
	}
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		return fmt.Errorf("disable triggers for the load (needs a superuser): %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET session_replication_role") //nolint:errcheck // best effort; the connection is the loader's own
	q := gen.New(conn)
	for _, size := range probeSizes {
		if _, ok := d.probes[size]; ok || n < 10*size {
			continue
		}
		id, err := d.addRun(ctx, q, fmt.Sprintf("probe-%d", size))
		if err != nil {
			return err
		}
		if err := d.addResults(ctx, q, id, size); err != nil {
			return err
		}
		d.probes[size] = id
	}
	for d.results < n {
		id, err := d.addRun(ctx, q, fmt.Sprintf("nightly-%07d", d.runs))
		if err != nil {
			return err
		}
		if err := d.addResults(ctx, q, id, min(fillerResults, n-d.results)); err != nil {
			return err
		}
		d.fillers = append(d.fillers, id)
	}
	if err := d.addStudents(ctx, conn, q, max(1000, n/100)); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, "VACUUM ANALYZE")
	return err
}

func (d *dataset) addRun(ctx context.Context, q *gen.Queries, name string) (uuid.UUID, error) {
	id := uuid.Must(uuid.NewV7())
	t := base.Add(time.Duration(d.runs) * time.Minute)
	fin := t.Add(30 * time.Second)
	status := "completed"
	if d.runs%50 == 49 {
		status = "failed"
	}
	_, err := q.InsertEvalRun(ctx, gen.InsertEvalRunParams{
		ID: id, Name: name, Model: models[d.runs%len(models)], Dataset: "mmlu", Status: status,
		Config: []byte(`{"temperature":0.2,"max_tokens":512}`), StartedAt: t, FinishedAt: &fin,
	})
	if err != nil {
		return id, fmt.Errorf("insert run %s: %w", name, err)
	}
	d.runs++
	return id, nil
}

func (d *dataset) addResults(ctx context.Context, q *gen.Queries, run uuid.UUID, n int) error {
	for i := range n {
		r := seed.Result(i)
		d.pending = append(d.pending, gen.InsertEvalResultsParams{
			RunID: run, CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Error: r.Error,
		})
		if len(d.pending) == copyChunk {
			if err := d.flush(ctx, q); err != nil {
				return err
			}
		}
	}
	d.results += n
	return d.flush(ctx, q)
}

func (d *dataset) flush(ctx context.Context, q *gen.Queries) error {
	if len(d.pending) == 0 {
		return nil
	}
	n, err := q.InsertEvalResults(ctx, d.pending)
	if err == nil && int(n) != len(d.pending) {
		err = fmt.Errorf("COPY stored %d of %d rows", n, len(d.pending))
	}
	d.pending = d.pending[:0]
	return err
}

func studentID(i int) string { return fmt.Sprintf("S%07d", i) }

func (d *dataset) addStudents(ctx context.Context, conn *pgx.Conn, q *gen.Queries, target int) error {
	var metrics []gen.InsertPerformanceMetricsParams
	for d.students < target {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tq := q.WithTx(tx)
			for end := min(target, d.students+1000); d.students < end; d.students++ {
				u, err := tq.CreateUser(ctx, gen.CreateUserParams{
					Email: fmt.Sprintf("student%d@example.com", d.students), Name: fmt.Sprintf("Student %d", d.students)})
				if err != nil {
					return err
				}
				cohort := fmt.Sprintf("cohort-%d", d.students%10)
				sp, err := tq.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{
					UserID: u.ID, StudentID: studentID(d.students), Cohort: &cohort})
				if err != nil {
					return err
				}
				for g := range metricsPerStudent {
					metrics = append(metrics, gen.InsertPerformanceMetricsParams{
						StudentProfileID: sp.ID, Name: []string{"accuracy", "recall", "precision", "f1", "latency"}[g%5],
						Value: float64((int(sp.ID)*7+g)%100) / 100, RecordedAt: base.Add(time.Duration(g) * 24 * time.Hour),
					})
				}
			}
			_, err := tq.InsertPerformanceMetrics(ctx, metrics)
			metrics = metrics[:0]
			return err
		})
		if err != nil {
			return fmt.Errorf("add students: %w", err)
		}
	}
	return nil
}

// Package seed creates and fills the database that every contender of
// evaldb's comparative benchmarks reads: evaldb's own schema (applied with
// schema.Migrate) and a fixed, deterministic data set, so that the Go
// benchmarks, the Prisma script and pgbench all run against the same rows.
//
// The data set:
//   - Runs eval runs; the one with id ReadRunID has ReadRunResults results
//     (case ids "case-00000" …), the others none.
//   - Students student profiles (with their users), student ids "S00000" …,
//     each with MetricsPerStudent performance metrics.
//
// Runs recorded by the write benchmarks use dataset RecordDataset, so
// DeleteRecorded can remove them without touching the seeded rows.
package seed

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/schema"
)

// Sizes and keys of the seeded data set. The Prisma script (bench/prisma)
// uses the same values.
const (
	Runs              = 10000
	ReadRunResults    = 1000
	Students          = 1000
	MetricsPerStudent = 20
	// ReadStudentID is the student whose metrics workload 3 reads.
	ReadStudentID = "S00042"
	// RecordDataset marks runs written by the recording benchmarks.
	RecordDataset = "bench-record"
	// PageSize is the page of workload 2.
	PageSize = 100
	// DatabaseName is the database Prepare creates.
	DatabaseName = "evaldb_bench"
)

// ReadRunID is the run that workloads 1 and 2 read.
var ReadRunID = uuid.MustParse("01900000-0000-7000-8000-000000000001")

// base is the fixed clock of the data set.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Prepare connects to the server of adminURL, drops and recreates the
// database DatabaseName, migrates it with schema.Migrate and seeds it. It
// returns the URL of the new database (adminURL with its database name
// replaced). It takes a few seconds.
func Prepare(ctx context.Context, adminURL string) (string, error) {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to TEST_DATABASE_URL: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + DatabaseName + " WITH (FORCE)",
		"CREATE DATABASE " + DatabaseName,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	cfg.Database = DatabaseName
	if _, err := schema.MigrateConfig(ctx, cfg); err != nil {
		return "", fmt.Errorf("migrate %s: %w", DatabaseName, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", DatabaseName, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := fill(ctx, conn); err != nil {
		return "", err
	}
	return WithDatabase(adminURL, DatabaseName), nil
}

// WithDatabase replaces the path (database name) of a postgres:// URL.
func WithDatabase(u, db string) string {
	rest := ""
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u, rest = u[:i], u[i:]
	}
	scheme := strings.Index(u, "://")
	if slash := strings.IndexByte(u[scheme+3:], '/'); slash >= 0 {
		u = u[:scheme+3+slash]
	}
	return u + "/" + db + rest
}

func fill(ctx context.Context, conn *pgx.Conn) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		runs := make([][]any, 0, Runs)
		for i := range Runs {
			id := ReadRunID
			if i > 0 {
				id = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "run-%d", i))
			}
			t := base.Add(time.Duration(i) * time.Minute)
			fin := t.Add(30 * time.Second)
			runs = append(runs, []any{id, fmt.Sprintf("nightly-%05d", i), "gpt-x", "mmlu", "completed",
				`{"temperature":0.2,"max_tokens":512}`, t, fin, t})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"eval_runs"},
			[]string{"id", "name", "model", "dataset", "status", "config", "started_at", "finished_at", "created_at"},
			pgx.CopyFromRows(runs)); err != nil {
			return fmt.Errorf("seed eval_runs: %w", err)
		}
		results := make([][]any, 0, ReadRunResults)
		for i := range ReadRunResults {
			r := Result(i)
			results = append(results, []any{ReadRunID, r.CaseID, r.Input, r.Expected, r.Output, r.Score, r.Passed,
				r.LatencyMs, r.PromptTokens, r.CompletionTokens, r.Error})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"eval_results"},
			[]string{"run_id", "case_id", "input", "expected", "output", "score", "passed",
				"latency_ms", "prompt_tokens", "completion_tokens", "error"},
			pgx.CopyFromRows(results)); err != nil {
			return fmt.Errorf("seed eval_results: %w", err)
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO users (email, name)
SELECT 'student' || g || '@example.com', 'Student ' || g FROM generate_series(0, $1::int - 1) g`, Students); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO student_profiles (user_id, student_id, cohort)
SELECT u.id, 'S' || lpad((u.id - 1)::text, 5, '0'), 'cohort-' || (u.id % 10) FROM users u ORDER BY u.id`); err != nil {
			return fmt.Errorf("seed student_profiles: %w", err)
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO performance_metrics (student_profile_id, name, value, recorded_at)
SELECT sp.id, (ARRAY['accuracy','recall','precision','f1','latency'])[1 + g % 5], (sp.id * 7 + g) % 100 / 100.0,
       $1::timestamptz + g * interval '1 day'
FROM student_profiles sp, generate_series(0, $2::int - 1) g`, base, MetricsPerStudent); err != nil {
			return fmt.Errorf("seed performance_metrics: %w", err)
		}
		return nil
	})
}

// ResultData is the content of one generated eval result, identical for
// every contender (bench/prisma/bench.ts builds the same).
type ResultData struct {
	CaseID           string
	Input            string
	Expected         string
	Output           string
	Score            float64
	Passed           bool
	LatencyMs        int32
	PromptTokens     int32
	CompletionTokens int32
	Error            *string
}

// Result returns the i-th generated result: about 250 bytes of text, as a
// short prompt/answer pair.
func Result(i int) ResultData {
	return ResultData{
		CaseID:           fmt.Sprintf("case-%05d", i),
		Input:            fmt.Sprintf("Question %d: what is the capital of the country whose ISO code is %03d? Answer with one word.", i, i%1000),
		Expected:         fmt.Sprintf("answer-%d", i%97),
		Output:           fmt.Sprintf("answer-%d", i%89),
		Score:            float64(i%100) / 100,
		Passed:           i%97 == i%89,
		LatencyMs:        int32(100 + i%900),
		PromptTokens:     int32(20 + i%50),
		CompletionTokens: int32(1 + i%5),
	}
}

// MetricNames are the 5 metrics of a recorded run; metric i has value
// 0.5 + i/10.
var MetricNames = []string{"accuracy", "pass_rate", "mean_score", "p50_latency_ms", "p95_latency_ms"}

// DeleteRecordedSQL removes the runs the recording benchmarks wrote (their
// results and metrics cascade).
const DeleteRecordedSQL = "DELETE FROM eval_runs WHERE dataset = '" + RecordDataset + "'"

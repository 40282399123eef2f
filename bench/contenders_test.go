package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/aah/evaldb/bench/seed"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// poolSize is the connection limit of every contender (workload 5 runs 64
// goroutines on a pool of 10; the other workloads use one connection at a
// time).
const poolSize = 10

// summary is what a read returned, reduced to a few fields so that a test
// can check that every contender read the same rows without the check
// costing anything in the benchmarks.
type summary struct {
	Name  string // run name, last case id, or student id
	Count int    // rows or metrics
	Last  string // last metric name, or ""
}

// contender does the five workloads one way. Every method is safe for
// concurrent use.
type contender interface {
	// PKRead reads the run seed.ReadRunID (workload 1).
	PKRead(ctx context.Context) (summary, error)
	// Page reads the first seed.PageSize results of seed.ReadRunID in
	// case_id order (workload 2).
	Page(ctx context.Context) (summary, error)
	// Student reads seed.ReadStudentID with its performance metrics in
	// recorded_at order (workload 3).
	Student(ctx context.Context) (summary, error)
	// Record records run in one transaction (workload 4). run.ID is
	// uuid.Nil: the contender makes a new id.
	Record(ctx context.Context, run txn.Run) error
	Close()
}

// recordRun builds the run of workload 4: n results and 5 metrics, the same
// content as bench/prisma builds.
func recordRun(n int) txn.Run {
	run := txn.Run{
		Name: fmt.Sprintf("record-%d", n), Model: "gpt-x", Dataset: seed.RecordDataset, Status: txn.StatusCompleted,
		Config:  []byte(`{"temperature":0.2,"max_tokens":512}`),
		Results: make([]txn.Result, n),
	}
	for i := range n {
		r := seed.Result(i)
		run.Results[i] = txn.Result{CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Error: r.Error}
	}
	for i, name := range seed.MetricNames {
		run.Metrics = append(run.Metrics, txn.Metric{Name: name, Value: 0.5 + float64(i)/10})
	}
	return run
}

// ---- raw pgx: hand-written SQL and scans on a pgxpool (the floor) ----

type pgxContender struct{ pool *pgxpool.Pool }

// openPgx opens the floor as a pgx user with gen's column types writes it:
// a pool of poolSize, and pgx-google-uuid's codec registered on every
// connection, as pgx's documentation advises for github.com/google/uuid
// (evaldb registers it too). Without it pgx encodes and scans uuid.UUID
// through its generic fallbacks (driver.Valuer and sql.Scanner, by text),
// and the floor would pay for a type setup evaldb does not.
func openPgx(ctx context.Context, url string) (*pgxContender, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = poolSize
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxuuid.Register(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &pgxContender{pool: pool}, nil
}

func (c *pgxContender) Close() { c.pool.Close() }

func (c *pgxContender) PKRead(ctx context.Context) (summary, error) {
	var r gen.EvalRun
	err := c.pool.QueryRow(ctx, `SELECT id, name, model, dataset, status, config, started_at, finished_at, created_at
FROM eval_runs WHERE id = $1`, seed.ReadRunID).Scan(
		&r.ID, &r.Name, &r.Model, &r.Dataset, &r.Status, &r.Config, &r.StartedAt, &r.FinishedAt, &r.CreatedAt)
	return summary{Name: r.Name, Count: 1}, err
}

func (c *pgxContender) Page(ctx context.Context) (summary, error) {
	rows, err := c.pool.Query(ctx, `SELECT run_id, case_id, input, expected, output, score, passed, latency_ms,
       prompt_tokens, completion_tokens, error
FROM eval_results WHERE run_id = $1 AND case_id > $2 ORDER BY case_id LIMIT $3`, seed.ReadRunID, "", seed.PageSize)
	if err != nil {
		return summary{}, err
	}
	defer rows.Close()
	out := make([]gen.EvalResult, 0, seed.PageSize)
	for rows.Next() {
		var r gen.EvalResult
		if err := rows.Scan(&r.RunID, &r.CaseID, &r.Input, &r.Expected, &r.Output, &r.Score, &r.Passed,
			&r.LatencyMs, &r.PromptTokens, &r.CompletionTokens, &r.Error); err != nil {
			return summary{}, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return summary{}, err
	}
	// A caller keeps the page it asked for, so it lives on the heap, as
	// every other contender's does; without this the compiler would place
	// it on the stack and the floor would not allocate the page at all.
	keptPage.Store(&out)
	return pageSummary(len(out), func(i int) string { return out[i].CaseID }), nil
}

// keptPage holds the pgx contender's last page (see pgxContender.Page).
var keptPage atomic.Pointer[[]gen.EvalResult]

// Student uses the same single-round-trip SQL as evaldb (gen.GetStudentWithMetrics):
// the floor is the best query, scanned by hand.
func (c *pgxContender) Student(ctx context.Context) (summary, error) {
	var r gen.GetStudentWithMetricsRow
	err := c.pool.QueryRow(ctx, gen.GetStudentWithMetrics, seed.ReadStudentID).Scan(
		&r.ID, &r.UserID, &r.StudentID, &r.Cohort, &r.CreatedAt, &r.MetricNames, &r.MetricValues, &r.MetricRecordedAt)
	return studentSummary(r.StudentID, r.MetricNames), err
}

// Record is what a pgx user writes by hand: one transaction, INSERT the run,
// COPY the results and the metrics.
func (c *pgxContender) Record(ctx context.Context, run txn.Run) error {
	id := uuid.Must(uuid.NewV7())
	now := time.Now()
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO eval_runs (id, name, model, dataset, status, config, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, run.Name, run.Model, run.Dataset, run.Status, string(run.Config), now, now); err != nil {
			return err
		}
		rs := run.Results
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"eval_results"},
			[]string{"run_id", "case_id", "input", "expected", "output", "score", "passed", "latency_ms",
				"prompt_tokens", "completion_tokens", "error"},
			pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
				r := &rs[i]
				return []any{id, r.CaseID, r.Input, r.Expected, r.Output, r.Score, r.Passed, r.LatencyMs,
					r.PromptTokens, r.CompletionTokens, r.Error}, nil
			})); err != nil {
			return err
		}
		ms := run.Metrics
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"eval_metrics"}, []string{"run_id", "name", "value"},
			pgx.CopyFromSlice(len(ms), func(i int) ([]any, error) { return []any{id, ms[i].Name, ms[i].Value}, nil }))
		return err
	})
}

// ---- evaldb: repo.Open, the generated queries, Repo.RecordEvalRun ----

type evaldbContender struct {
	r *repo.Repo
	q gen.Querier
}

// openEvaldb opens a Repo the documented way, with a pool of poolSize
// (Prisma's connection_limit) and production logging. Queries() is served
// from the cache by default; uncached sets Config.DisableCache.
func openEvaldb(ctx context.Context, url string, cached bool) (*evaldbContender, error) {
	r, err := repo.Open(ctx, &repo.Config{URL: withParam(url, "connection_limit", fmt.Sprint(poolSize)),
		Env: repo.Production, DisableCache: !cached})
	if err != nil {
		return nil, err
	}
	return &evaldbContender{r: r, q: r.Queries()}, nil
}

// Wait makes the cache's pending writes visible (ristretto admits
// asynchronously), so that a benchmark's first timed read is a hit.
func (c *evaldbContender) Wait() {
	if cache := c.r.Cache(); cache != nil {
		cache.Wait()
	}
}

func (c *evaldbContender) Close() { c.r.Close() }

func (c *evaldbContender) PKRead(ctx context.Context) (summary, error) {
	r, err := c.q.GetEvalRun(ctx, seed.ReadRunID)
	return summary{Name: r.Name, Count: 1}, err
}

func (c *evaldbContender) Page(ctx context.Context) (summary, error) {
	rs, err := c.q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: seed.ReadRunID, RowLimit: seed.PageSize})
	return pageSummary(len(rs), func(i int) string { return rs[i].CaseID }), err
}

func (c *evaldbContender) Student(ctx context.Context) (summary, error) {
	r, err := c.q.GetStudentWithMetrics(ctx, seed.ReadStudentID)
	return studentSummary(r.StudentID, r.MetricNames), err
}

// evaldbViewContender reads through Repo.Views, the read-only face of the
// cached reads: a hit is the cached value itself, seen through a view, not
// a private copy.
type evaldbViewContender struct{ *evaldbContender }

func (c *evaldbViewContender) PKRead(ctx context.Context) (summary, error) {
	r, err := c.r.Views().GetEvalRun(ctx, seed.ReadRunID)
	return summary{Name: r.Name, Count: 1}, err
}

func (c *evaldbViewContender) Page(ctx context.Context) (summary, error) {
	rs, err := c.r.Views().ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: seed.ReadRunID, RowLimit: seed.PageSize})
	return pageSummary(rs.Len(), func(i int) string { return rs.At(i).CaseID }), err
}

func (c *evaldbViewContender) Student(ctx context.Context) (summary, error) {
	r, err := c.r.Views().GetStudentWithMetrics(ctx, seed.ReadStudentID)
	s := summary{Name: r.StudentID, Count: r.MetricNames.Len()}
	if n := r.MetricNames.Len(); n > 0 {
		s.Last = r.MetricNames.At(n - 1)
	}
	return s, err
}

// Record uses Repo.RecordEvalRun (txn.RecordEvalRunWithOptions on the
// Repo's executor; it invalidates the cache after COMMIT).
func (c *evaldbContender) Record(ctx context.Context, run txn.Run) error {
	_, err := c.r.RecordEvalRun(ctx, run, nil)
	return err
}

// ---- GORM: models, Preload, CreateInBatches ----

type gormEvalRun struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name       string
	Model      string
	Dataset    string
	Status     string
	Config     string `gorm:"type:jsonb"`
	StartedAt  time.Time
	FinishedAt *time.Time
	CreatedAt  time.Time
}

func (gormEvalRun) TableName() string { return "eval_runs" }

type gormEvalResult struct {
	RunID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	CaseID           string    `gorm:"primaryKey"`
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

func (gormEvalResult) TableName() string { return "eval_results" }

type gormEvalMetric struct {
	RunID uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name  string    `gorm:"primaryKey"`
	Value float64
}

func (gormEvalMetric) TableName() string { return "eval_metrics" }

type gormStudentProfile struct {
	ID                 int64
	UserID             int64
	StudentID          string
	Cohort             *string
	CreatedAt          time.Time
	PerformanceMetrics []gormPerformanceMetric `gorm:"foreignKey:StudentProfileID"`
}

func (gormStudentProfile) TableName() string { return "student_profiles" }

type gormPerformanceMetric struct {
	ID               int64
	StudentProfileID int64
	Name             string
	Value            float64
	RecordedAt       time.Time
}

func (gormPerformanceMetric) TableName() string { return "performance_metrics" }

// gormBatch is CreateInBatches' batch size: 1,000 rows of 11 columns stay
// well under PostgreSQL's 65,535 parameters.
const gormBatch = 1000

type gormContender struct {
	db    *gorm.DB
	sqldb *sql.DB
}

// openGorm opens GORM with its pgx-based driver and the two settings GORM's
// performance guide recommends: PrepareStmt (cache prepared statements) and
// SkipDefaultTransaction (no implicit transaction around single writes).
func openGorm(url string) (*gormContender, error) {
	db, err := gorm.Open(postgres.Open(url), &gorm.Config{
		PrepareStmt:            true,
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
	})
	if err != nil {
		return nil, err
	}
	sqldb, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqldb.SetMaxOpenConns(poolSize)
	sqldb.SetMaxIdleConns(poolSize)
	return &gormContender{db: db, sqldb: sqldb}, nil
}

func (c *gormContender) Close() { c.sqldb.Close() }

func (c *gormContender) PKRead(ctx context.Context) (summary, error) {
	var r gormEvalRun
	err := c.db.WithContext(ctx).First(&r, "id = ?", seed.ReadRunID).Error
	return summary{Name: r.Name, Count: 1}, err
}

func (c *gormContender) Page(ctx context.Context) (summary, error) {
	var rs []gormEvalResult
	err := c.db.WithContext(ctx).Where("run_id = ? AND case_id > ?", seed.ReadRunID, "").
		Order("case_id").Limit(seed.PageSize).Find(&rs).Error
	return pageSummary(len(rs), func(i int) string { return rs[i].CaseID }), err
}

// Student is the pooling guide's findMany({ where: { studentId }, include:
// { performanceMetrics: true } }) in GORM: Find with Preload (two queries).
func (c *gormContender) Student(ctx context.Context) (summary, error) {
	var sps []gormStudentProfile
	err := c.db.WithContext(ctx).
		Preload("PerformanceMetrics", func(db *gorm.DB) *gorm.DB { return db.Order("recorded_at, id") }).
		Where("student_id = ?", seed.ReadStudentID).Find(&sps).Error
	if err != nil || len(sps) != 1 {
		return summary{Count: -len(sps)}, err
	}
	names := make([]string, len(sps[0].PerformanceMetrics))
	for i, m := range sps[0].PerformanceMetrics {
		names[i] = m.Name
	}
	return studentSummary(sps[0].StudentID, names), nil
}

func (c *gormContender) Record(ctx context.Context, run txn.Run) error {
	id := uuid.Must(uuid.NewV7())
	now := time.Now()
	results := make([]gormEvalResult, len(run.Results))
	for i, r := range run.Results {
		results[i] = gormEvalResult{RunID: id, CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Error: r.Error}
	}
	metrics := make([]gormEvalMetric, len(run.Metrics))
	for i, m := range run.Metrics {
		metrics[i] = gormEvalMetric{RunID: id, Name: m.Name, Value: m.Value}
	}
	return c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gormEvalRun{ID: id, Name: run.Name, Model: run.Model, Dataset: run.Dataset,
			Status: run.Status, Config: string(run.Config), StartedAt: now, FinishedAt: &now}).Error; err != nil {
			return err
		}
		if err := tx.CreateInBatches(&results, gormBatch).Error; err != nil {
			return err
		}
		return tx.Create(&metrics).Error
	})
}

// ---- bun: models, Relation, bulk NewInsert, over pgx's database/sql driver ----

type bunEvalRun struct {
	bun.BaseModel `bun:"table:eval_runs"`
	ID            uuid.UUID       `bun:"id,pk,type:uuid"`
	Name          string          `bun:"name"`
	Model         string          `bun:"model"`
	Dataset       string          `bun:"dataset"`
	Status        string          `bun:"status"`
	Config        json.RawMessage `bun:"config,type:jsonb"`
	StartedAt     time.Time       `bun:"started_at"`
	FinishedAt    *time.Time      `bun:"finished_at"`
	CreatedAt     time.Time       `bun:"created_at,nullzero,notnull,default:current_timestamp"`
}

type bunEvalResult struct {
	bun.BaseModel    `bun:"table:eval_results"`
	RunID            uuid.UUID `bun:"run_id,pk,type:uuid"`
	CaseID           string    `bun:"case_id,pk"`
	Input            string    `bun:"input"`
	Expected         string    `bun:"expected"`
	Output           string    `bun:"output"`
	Score            float64   `bun:"score"`
	Passed           bool      `bun:"passed"`
	LatencyMs        int32     `bun:"latency_ms"`
	PromptTokens     int32     `bun:"prompt_tokens"`
	CompletionTokens int32     `bun:"completion_tokens"`
	Error            *string   `bun:"error"`
}

type bunEvalMetric struct {
	bun.BaseModel `bun:"table:eval_metrics"`
	RunID         uuid.UUID `bun:"run_id,pk,type:uuid"`
	Name          string    `bun:"name,pk"`
	Value         float64   `bun:"value"`
}

type bunStudentProfile struct {
	bun.BaseModel      `bun:"table:student_profiles"`
	ID                 int64                  `bun:"id,pk,autoincrement"`
	UserID             int64                  `bun:"user_id"`
	StudentID          string                 `bun:"student_id"`
	Cohort             *string                `bun:"cohort"`
	CreatedAt          time.Time              `bun:"created_at"`
	PerformanceMetrics []bunPerformanceMetric `bun:"rel:has-many,join:id=student_profile_id"`
}

type bunPerformanceMetric struct {
	bun.BaseModel    `bun:"table:performance_metrics"`
	ID               int64     `bun:"id,pk,autoincrement"`
	StudentProfileID int64     `bun:"student_profile_id"`
	Name             string    `bun:"name"`
	Value            float64   `bun:"value"`
	RecordedAt       time.Time `bun:"recorded_at"`
}

type bunContender struct{ db *bun.DB }

// openBun opens bun the way its documentation does for pgx: pgx's
// database/sql driver in simple-protocol mode (bun formats the arguments
// into the SQL itself) and the PostgreSQL dialect.
func openBun(url string) (*bunContender, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(poolSize)
	sqldb.SetMaxIdleConns(poolSize)
	return &bunContender{db: bun.NewDB(sqldb, pgdialect.New())}, nil
}

func (c *bunContender) Close() { c.db.Close() }

func (c *bunContender) PKRead(ctx context.Context) (summary, error) {
	r := bunEvalRun{ID: seed.ReadRunID}
	err := c.db.NewSelect().Model(&r).WherePK().Scan(ctx)
	return summary{Name: r.Name, Count: 1}, err
}

func (c *bunContender) Page(ctx context.Context) (summary, error) {
	var rs []bunEvalResult
	err := c.db.NewSelect().Model(&rs).Where("run_id = ?", seed.ReadRunID).Where("case_id > ?", "").
		Order("case_id").Limit(seed.PageSize).Scan(ctx)
	return pageSummary(len(rs), func(i int) string { return rs[i].CaseID }), err
}

// Student is findMany with include in bun: Relation (two queries).
func (c *bunContender) Student(ctx context.Context) (summary, error) {
	var sps []bunStudentProfile
	err := c.db.NewSelect().Model(&sps).Where("student_id = ?", seed.ReadStudentID).
		Relation("PerformanceMetrics", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("recorded_at", "id") }).
		Scan(ctx)
	if err != nil || len(sps) != 1 {
		return summary{Count: -len(sps)}, err
	}
	names := make([]string, len(sps[0].PerformanceMetrics))
	for i, m := range sps[0].PerformanceMetrics {
		names[i] = m.Name
	}
	return studentSummary(sps[0].StudentID, names), nil
}

func (c *bunContender) Record(ctx context.Context, run txn.Run) error {
	id := uuid.Must(uuid.NewV7())
	now := time.Now()
	results := make([]bunEvalResult, len(run.Results))
	for i, r := range run.Results {
		results[i] = bunEvalResult{RunID: id, CaseID: r.CaseID, Input: r.Input, Expected: r.Expected, Output: r.Output,
			Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Error: r.Error}
	}
	metrics := make([]bunEvalMetric, len(run.Metrics))
	for i, m := range run.Metrics {
		metrics[i] = bunEvalMetric{RunID: id, Name: m.Name, Value: m.Value}
	}
	return c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&bunEvalRun{ID: id, Name: run.Name, Model: run.Model, Dataset: run.Dataset,
			Status: run.Status, Config: run.Config, StartedAt: now, FinishedAt: &now}).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&results).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(&metrics).Exec(ctx)
		return err
	})
}

// ---- helpers ----

func pageSummary(n int, caseID func(int) string) summary {
	if n == 0 {
		return summary{}
	}
	return summary{Name: caseID(n - 1), Count: n}
}

func studentSummary(studentID string, names []string) summary {
	s := summary{Name: studentID, Count: len(names)}
	if len(names) > 0 {
		s.Last = names[len(names)-1]
	}
	return s
}

// withParam adds name=value to the query of a URL.
func withParam(url, name, value string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + name + "=" + value
}

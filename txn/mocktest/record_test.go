package mocktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

var (
	started  = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	finished = started.Add(time.Minute)
	created  = finished.Add(time.Second)
)

// mockRun is a valid run with everything the mock must match spelled out.
func mockRun() txn.Run {
	wrong := "wrong answer"
	return txn.Run{
		ID: runID, StartedAt: started, FinishedAt: &finished,
		Name: "nightly", Model: "gpt-x", Dataset: "arith-v1", Status: txn.StatusCompleted,
		Config: json.RawMessage(`{"temperature": 0}`),
		Results: []txn.Result{
			{CaseID: "c1", Input: "1+1", Expected: "2", Output: "2", Score: 1, Passed: true, LatencyMs: 12, PromptTokens: 5, CompletionTokens: 1},
			{CaseID: "c2", Input: "2+2", Expected: "4", Output: "5", Score: 0, LatencyMs: 15, Error: &wrong},
		},
		Metrics: []txn.Metric{{Name: "accuracy", Value: 0.5}, {Name: "mean_latency_ms", Value: 13.5}},
	}
}

// storedRun is r as the database returns it. Column lists, arguments and
// row values all come from gen (statements_gen.go), so a column added to
// eval_runs changes them with no edit here.
func storedRun(r txn.Run) gen.EvalRun {
	return gen.EvalRun{ID: r.ID, Name: r.Name, Model: r.Model, Dataset: r.Dataset, Status: r.Status,
		Config: r.Config, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, CreatedAt: created}
}

func runRow(m pgxmock.PgxPoolIface, r txn.Run) *pgxmock.Rows {
	return m.NewRows(gen.InsertEvalRunColumns).AddRow(gen.InsertEvalRunValues(storedRun(r))...)
}

func runArgs(r txn.Run) []any {
	return gen.InsertEvalRunArgs(gen.InsertEvalRunParams{ID: r.ID, Name: r.Name, Model: r.Model, Dataset: r.Dataset,
		Status: r.Status, Config: r.Config, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt})
}

func wantRecorded(r txn.Run, already bool) txn.Recorded {
	return txn.Recorded{
		Run: gen.EvalRun{ID: r.ID, Name: r.Name, Model: r.Model, Dataset: r.Dataset, Status: r.Status,
			Config: r.Config, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, CreatedAt: created},
		Results: len(r.Results), Metrics: len(r.Metrics), AlreadyRecorded: already,
	}
}

// expectBatch expects the small-run batch; runErr fails its first statement.
func expectBatch(m pgxmock.PgxPoolIface, r txn.Run, runErr error) {
	b := m.ExpectBatch()
	q := b.ExpectQuery(gen.InsertEvalRun).WithArgs(runArgs(r)...)
	if runErr != nil {
		q.WillReturnError(runErr)
	} else {
		q.WillReturnRows(runRow(m, r))
	}
	b.ExpectExec(gen.InsertEvalResultsUnnest).WithArgs(gen.InsertEvalResultsUnnestArgs(gen.InsertEvalResultsUnnestParams{
		RunID: r.ID, CaseIds: []string{"c1", "c2"}, Inputs: []string{"1+1", "2+2"}, Expecteds: []string{"2", "4"}, Outputs: []string{"2", "5"},
		Scores: []float64{1, 0}, Passeds: []bool{true, false}, LatenciesMs: []int32{12, 15}, PromptTokens: []int32{5, 0},
		CompletionTokens: []int32{1, 0}, HasErrors: []bool{false, true}, ErrorTexts: []string{"", *r.Results[1].Error},
	})...).WillReturnResult(pgxmock.NewResult("INSERT", 2))
	b.ExpectExec(gen.InsertEvalMetricsUnnest).WithArgs(metricArgs(r)...).
		WillReturnResult(pgxmock.NewResult("INSERT", 2))
	b.ExpectExec(gen.InsertEvalRunSummary).WithArgs(gen.InsertEvalRunSummaryArgs(r.ID)...).
		WillReturnResult(pgxmock.NewResult("INSERT", 1))
}

func metricArgs(r txn.Run) []any {
	return gen.InsertEvalMetricsUnnestArgs(gen.InsertEvalMetricsUnnestParams{RunID: r.ID,
		Names: []string{"accuracy", "mean_latency_ms"}, MetricValues: []float64{0.5, 13.5}})
}

// expectReadBack expects the idempotency check's reads of the stored run.
func expectReadBack(m pgxmock.PgxPoolIface, stored txn.Run) {
	m.ExpectBeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	m.ExpectQuery(gen.GetEvalRun).WithArgs(stored.ID).WillReturnRows(
		m.NewRows(gen.GetEvalRunColumns).AddRow(gen.GetEvalRunValues(storedRun(stored))...))
	rows := m.NewRows(gen.ListEvalResultsColumns)
	for _, r := range stored.Results {
		rows.AddRow(gen.ListEvalResultsValues(gen.EvalResult{RunID: stored.ID, CaseID: r.CaseID, Input: r.Input,
			Expected: r.Expected, Output: r.Output, Score: r.Score, Passed: r.Passed, LatencyMs: r.LatencyMs,
			PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, Error: r.Error})...)
	}
	m.ExpectQuery(gen.ListEvalResults).WithArgs(stored.ID, "", int32(10_000)).WillReturnRows(rows)
	metrics := m.NewRows(gen.ListEvalMetricsColumns)
	for _, mt := range stored.Metrics {
		metrics.AddRow(gen.ListEvalMetricsValues(gen.EvalMetric{RunID: stored.ID, Name: mt.Name, Value: mt.Value})...)
	}
	m.ExpectQuery(gen.ListEvalMetrics).WithArgs(stored.ID).WillReturnRows(metrics)
	m.ExpectCommit()
}

func TestRecordEvalRunSmallRunIsOneBatch(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	run := mockRun()
	mock.ExpectBegin()
	expectBatch(mock, run, nil)
	mock.ExpectCommit()

	got, err := txn.RecordEvalRun(t.Context(), mock, run)
	if err != nil {
		t.Fatalf("RecordEvalRun() = %v", err)
	}
	if diff := cmp.Diff(wantRecorded(run, false), got); diff != "" {
		t.Errorf("RecordEvalRun() mismatch (-want +got):\n%s", diff)
	}
}

func TestRecordEvalRunLargeRunUsesCopy(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	run := mockRun()
	mock.ExpectBegin()
	b := mock.ExpectBatch()
	b.ExpectQuery(gen.InsertEvalRun).WithArgs(runArgs(run)...).WillReturnRows(runRow(mock, run))
	b.ExpectExec(gen.InsertEvalMetricsUnnest).WithArgs(metricArgs(run)...).
		WillReturnResult(pgxmock.NewResult("INSERT", 2))
	mock.ExpectCopyFrom(pgx.Identifier{gen.InsertEvalResultsTable}, gen.InsertEvalResultsColumns).
		WillReturnResult(2)
	mock.ExpectExec(gen.InsertEvalRunSummary).WithArgs(gen.InsertEvalRunSummaryArgs(run.ID)...).
		WillReturnResult(pgxmock.NewResult("INSERT", 1))
	mock.ExpectCommit()

	got, err := txn.RecordEvalRunWithOptions(t.Context(), mock, run, &txn.Options{CopyThreshold: 2})
	if err != nil {
		t.Fatalf("RecordEvalRun() = %v", err)
	}
	if diff := cmp.Diff(wantRecorded(run, false), got); diff != "" {
		t.Errorf("RecordEvalRun() mismatch (-want +got):\n%s", diff)
	}
}

func TestRecordEvalRunInvalidRunSendsNothing(t *testing.T) {
	t.Parallel()
	mock := newMock(t) // no expectations: any statement fails the test
	run := mockRun()
	run.Results[0].CaseID = run.Results[1].CaseID
	_, err := txn.RecordEvalRun(t.Context(), mock, run)
	var verr *txn.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("RecordEvalRun() = %v, want a *ValidationError", err)
	}
}

var runExists = &pgconn.PgError{Code: "23505", ConstraintName: "eval_runs_pkey", TableName: "eval_runs", Detail: "Key (id) exists."}

func TestRecordEvalRunAlreadyRecorded(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	run := mockRun()
	mock.ExpectBegin()
	expectBatch(mock, run, runExists)
	mock.ExpectRollback()
	expectReadBack(mock, run)

	got, err := txn.RecordEvalRun(t.Context(), mock, run)
	if err != nil {
		t.Fatalf("RecordEvalRun() = %v", err)
	}
	if diff := cmp.Diff(wantRecorded(run, true), got); diff != "" {
		t.Errorf("RecordEvalRun() mismatch (-want +got):\n%s", diff)
	}
}

func TestRecordEvalRunConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*txn.Run)
	}{
		{"Name", func(r *txn.Run) { r.Name = "other" }},
		{"Config", func(r *txn.Run) { r.Config = json.RawMessage(`{"temperature": 1}`) }},
		{"StartedAt", func(r *txn.Run) { r.StartedAt = r.StartedAt.Add(time.Microsecond) }},
		{"ResultScore", func(r *txn.Run) { r.Results[1].Score = 0.25 }},
		{"ResultErrorNilVsEmpty", func(r *txn.Run) { empty := ""; r.Results[0].Error = &empty }},
		{"MissingResult", func(r *txn.Run) { r.Results = r.Results[:1] }},
		{"MetricValue", func(r *txn.Run) { r.Metrics[0].Value = 0.51 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mock := newMock(t)
			given := mockRun()
			tc.change(&given)
			mock.ExpectBegin()
			expectAnyBatch(mock, runExists)
			mock.ExpectRollback()
			expectReadBack(mock, mockRun())

			_, err := txn.RecordEvalRun(t.Context(), mock, given)
			if !errors.Is(err, txn.ErrRunConflict) {
				t.Fatalf("RecordEvalRun() = %v, want ErrRunConflict", err)
			}
		})
	}
}

func TestRecordEvalRunConfigComparedAsJSON(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	given := mockRun()
	given.Config = json.RawMessage(`{ "temperature" : 0.0e0 }`) // jsonb stores it as {"temperature": 0.0}
	mock.ExpectBegin()
	expectAnyBatch(mock, runExists)
	mock.ExpectRollback()
	expectReadBack(mock, mockRun())
	got, err := txn.RecordEvalRun(t.Context(), mock, given)
	if err != nil || !got.AlreadyRecorded {
		t.Fatalf("RecordEvalRun() = %+v, %v; want AlreadyRecorded", got, err)
	}
}

func TestRecordEvalRunRetriesUnknownCommit(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	run := mockRun()
	mock.ExpectBegin()
	expectBatch(mock, run, nil)
	mock.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF) // committed, but the answer was lost
	mock.ExpectBegin()
	expectBatch(mock, run, runExists)
	mock.ExpectRollback()
	expectReadBack(mock, run)

	got, err := txn.RecordEvalRunWithOptions(t.Context(), mock, run, fastRetries)
	if err != nil {
		t.Fatalf("RecordEvalRun() = %v", err)
	}
	if diff := cmp.Diff(wantRecorded(run, true), got); diff != "" {
		t.Errorf("RecordEvalRun() mismatch (-want +got):\n%s", diff)
	}
}

func TestRecordEvalRunDefaults(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	run := mockRun()
	run.ID, run.StartedAt, run.FinishedAt = uuid.Nil, time.Time{}, nil
	run.Status, run.Config, run.Results = "", nil, nil
	before := time.Now()
	mock.ExpectBegin()
	b := mock.ExpectBatch()
	b.ExpectQuery(gen.InsertEvalRun).WithArgs(uuidV7{}, run.Name, run.Model, run.Dataset, txn.StatusCompleted,
		json.RawMessage("{}"), recentTime{before}, recentTime{before}).
		WillReturnRows(mock.NewRows(gen.InsertEvalRunColumns).AddRow(gen.InsertEvalRunValues(gen.EvalRun{ID: runID, Name: run.Name,
			Model: run.Model, Dataset: run.Dataset, Status: txn.StatusCompleted, Config: json.RawMessage("{}"),
			StartedAt: started, FinishedAt: &finished, CreatedAt: created})...))
	b.ExpectExec(gen.InsertEvalMetricsUnnest).WithArgs(pgxmock.AnyArg(), []string{"accuracy", "mean_latency_ms"}, []float64{0.5, 13.5}).
		WillReturnResult(pgxmock.NewResult("INSERT", 2))
	b.ExpectExec(gen.InsertEvalRunSummary).WithArgs(uuidV7{}).WillReturnResult(pgxmock.NewResult("INSERT", 1))
	mock.ExpectCommit()
	if _, err := txn.RecordEvalRun(t.Context(), mock, run); err != nil {
		t.Fatalf("RecordEvalRun() = %v", err)
	}
}

// expectAnyBatch expects a batch of run, results and metrics with any
// arguments, whose first statement fails with runErr.
func expectAnyBatch(m pgxmock.PgxPoolIface, runErr error) {
	b := m.ExpectBatch()
	b.ExpectQuery(gen.InsertEvalRun).WithArgs(anyArgs(len(gen.InsertEvalRunArgs(gen.InsertEvalRunParams{})))...).WillReturnError(runErr)
	// pgxmock runs the rest of the batch on Close even after an error.
	b.ExpectExec(gen.InsertEvalResultsUnnest).WithArgs(anyArgs(len(gen.InsertEvalResultsUnnestArgs(gen.InsertEvalResultsUnnestParams{})))...).
		WillReturnResult(pgxmock.NewResult("INSERT", 0))
	b.ExpectExec(gen.InsertEvalMetricsUnnest).WithArgs(anyArgs(len(gen.InsertEvalMetricsUnnestArgs(gen.InsertEvalMetricsUnnestParams{})))...).
		WillReturnResult(pgxmock.NewResult("INSERT", 0))
	b.ExpectExec(gen.InsertEvalRunSummary).WithArgs(anyArgs(len(gen.InsertEvalRunSummaryArgs(uuid.Nil)))...).
		WillReturnResult(pgxmock.NewResult("INSERT", 0))
}

func anyArgs(n int) []any {
	args := make([]any, n)
	for i := range args {
		args[i] = pgxmock.AnyArg()
	}
	return args
}

// uuidV7 matches a version-7 UUID.
type uuidV7 struct{}

func (uuidV7) Match(v any) bool {
	id, ok := v.(uuid.UUID)
	return ok && id.Version() == 7
}

// recentTime matches a time (or non-nil *time.Time) between after, truncated
// to microseconds, and now, with microsecond precision.
type recentTime struct{ after time.Time }

func (m recentTime) Match(v any) bool {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return false
		}
		t = *x
	default:
		return false
	}
	return !t.Before(m.after.Truncate(time.Microsecond)) && !t.After(time.Now()) && t.Equal(t.Truncate(time.Microsecond))
}

func TestRecordEvalRunInvalidatesCacheAfterCommit(t *testing.T) {
	t.Parallel()
	mock := newMock(t)
	run := mockRun()
	mock.ExpectBegin()
	expectBatch(mock, run, nil)
	mock.ExpectCommit()
	ev := &events{}
	_, err := txn.RecordEvalRunWithOptions(t.Context(), loggingBeginner{db: mock, ev: ev}, run, &txn.Options{Cache: fakeCache{ev: ev}})
	if err != nil {
		t.Fatalf("RecordEvalRun() = %v", err)
	}
	// The tables: what cachegen derived the run's statements write (a
	// trigger in schema/ may add some), which must include the four.
	var tables []string
	for _, q := range []string{"InsertEvalRun", "InsertEvalResultsUnnest", "InsertEvalResults", "InsertEvalMetricsUnnest", "InsertEvalRunSummary"} {
		_, w, _, _ := cachewrap.QueryTables(q)
		tables = append(tables, w...)
	}
	slices.Sort(tables)
	tables = slices.Compact(tables)
	for _, base := range []string{"eval_metrics", "eval_results", "eval_run_summaries", "eval_runs"} {
		if !slices.Contains(tables, base) {
			t.Fatalf("cachegen says RecordEvalRun's statements write %v, without %s", tables, base)
		}
	}
	want := []string{"cache.Tx", "COMMIT err=<nil>", "cache.commit", fmt.Sprintf("cache.Invalidate%v", tables)}
	if diff := cmp.Diff(want, ev.get()); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

func TestDoIsolationNeedsBeginTx(t *testing.T) {
	t.Parallel()
	mock := newMock(t) // nothing may be sent
	err := txn.Do(t.Context(), beginOnly{mock}, &txn.Options{Isolation: pgx.Serializable}, func(ctx context.Context, tx *txn.Tx) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "Options.Isolation") {
		t.Errorf("Do() = %v, want an error naming Options.Isolation", err)
	}
}

// beginOnly hides BeginTx, like a pgx.Tx.
type beginOnly struct{ db txn.Beginner }

func (b beginOnly) Begin(ctx context.Context) (pgx.Tx, error) { return b.db.Begin(ctx) }

package repo

// The translating facade over gen.Querier. Hand-written for now (every
// method is one line calling translate); the lead plans to generate it from
// gen.Querier like cachewrap's querier_gen.go.

import (
	"context"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dberr"
)

// querier is gen.Querier with every error passed through dberr.Translate.
// The executor below already translates, so this is the guarantee for any
// error gen itself produces (for example from scanning) and the one place to
// extend the mapping per query. Safe for concurrent use when q is.
type querier struct{ q gen.Querier }

var _ gen.Querier = querier{}

// CountConnectionsByState calls gen.Querier.CountConnectionsByState and translates its error.
func (w querier) CountConnectionsByState(ctx context.Context) ([]gen.CountConnectionsByStateRow, error) {
	return translate(w.q.CountConnectionsByState(ctx))
}

// CreateStudentProfile calls gen.Querier.CreateStudentProfile and translates its error.
func (w querier) CreateStudentProfile(ctx context.Context, arg gen.CreateStudentProfileParams) (gen.StudentProfile, error) {
	return translate(w.q.CreateStudentProfile(ctx, arg))
}

// CreateUser calls gen.Querier.CreateUser and translates its error.
func (w querier) CreateUser(ctx context.Context, arg gen.CreateUserParams) (gen.User, error) {
	return translate(w.q.CreateUser(ctx, arg))
}

// DeleteEvalRun calls gen.Querier.DeleteEvalRun and translates its error.
func (w querier) DeleteEvalRun(ctx context.Context, id uuid.UUID) (int64, error) {
	return translate(w.q.DeleteEvalRun(ctx, id))
}

// GetEvalRun calls gen.Querier.GetEvalRun and translates its error.
func (w querier) GetEvalRun(ctx context.Context, id uuid.UUID) (gen.EvalRun, error) {
	return translate(w.q.GetEvalRun(ctx, id))
}

// GetEvalRunSummary calls gen.Querier.GetEvalRunSummary and translates its error.
func (w querier) GetEvalRunSummary(ctx context.Context, id uuid.UUID) (gen.GetEvalRunSummaryRow, error) {
	return translate(w.q.GetEvalRunSummary(ctx, id))
}

// GetStudentWithMetrics calls gen.Querier.GetStudentWithMetrics and translates its error.
func (w querier) GetStudentWithMetrics(ctx context.Context, studentID string) (gen.GetStudentWithMetricsRow, error) {
	return translate(w.q.GetStudentWithMetrics(ctx, studentID))
}

// GetUser calls gen.Querier.GetUser and translates its error.
func (w querier) GetUser(ctx context.Context, id int64) (gen.User, error) {
	return translate(w.q.GetUser(ctx, id))
}

// GetUserByEmail calls gen.Querier.GetUserByEmail and translates its error.
func (w querier) GetUserByEmail(ctx context.Context, email string) (gen.User, error) {
	return translate(w.q.GetUserByEmail(ctx, email))
}

// InsertEvalMetrics calls gen.Querier.InsertEvalMetrics and translates its error.
func (w querier) InsertEvalMetrics(ctx context.Context, arg []gen.InsertEvalMetricsParams) (int64, error) {
	return translate(w.q.InsertEvalMetrics(ctx, arg))
}

// InsertEvalMetricsUnnest calls gen.Querier.InsertEvalMetricsUnnest and translates its error.
func (w querier) InsertEvalMetricsUnnest(ctx context.Context, arg gen.InsertEvalMetricsUnnestParams) (int64, error) {
	return translate(w.q.InsertEvalMetricsUnnest(ctx, arg))
}

// InsertEvalResults calls gen.Querier.InsertEvalResults and translates its error.
func (w querier) InsertEvalResults(ctx context.Context, arg []gen.InsertEvalResultsParams) (int64, error) {
	return translate(w.q.InsertEvalResults(ctx, arg))
}

// InsertEvalResultsUnnest calls gen.Querier.InsertEvalResultsUnnest and translates its error.
func (w querier) InsertEvalResultsUnnest(ctx context.Context, arg gen.InsertEvalResultsUnnestParams) (int64, error) {
	return translate(w.q.InsertEvalResultsUnnest(ctx, arg))
}

// InsertEvalRun calls gen.Querier.InsertEvalRun and translates its error.
func (w querier) InsertEvalRun(ctx context.Context, arg gen.InsertEvalRunParams) (gen.EvalRun, error) {
	return translate(w.q.InsertEvalRun(ctx, arg))
}

// InsertPerformanceMetrics calls gen.Querier.InsertPerformanceMetrics and translates its error.
func (w querier) InsertPerformanceMetrics(ctx context.Context, arg []gen.InsertPerformanceMetricsParams) (int64, error) {
	return translate(w.q.InsertPerformanceMetrics(ctx, arg))
}

// ListEvalMetrics calls gen.Querier.ListEvalMetrics and translates its error.
func (w querier) ListEvalMetrics(ctx context.Context, runID uuid.UUID) ([]gen.EvalMetric, error) {
	return translate(w.q.ListEvalMetrics(ctx, runID))
}

// ListEvalResults calls gen.Querier.ListEvalResults and translates its error.
func (w querier) ListEvalResults(ctx context.Context, arg gen.ListEvalResultsParams) ([]gen.EvalResult, error) {
	return translate(w.q.ListEvalResults(ctx, arg))
}

// ListEvalRuns calls gen.Querier.ListEvalRuns and translates its error.
func (w querier) ListEvalRuns(ctx context.Context, arg gen.ListEvalRunsParams) ([]gen.EvalRun, error) {
	return translate(w.q.ListEvalRuns(ctx, arg))
}

// ListFailedEvalResults calls gen.Querier.ListFailedEvalResults and translates its error.
func (w querier) ListFailedEvalResults(ctx context.Context, arg gen.ListFailedEvalResultsParams) ([]gen.EvalResult, error) {
	return translate(w.q.ListFailedEvalResults(ctx, arg))
}

// ListStudentMetricsInWindow calls gen.Querier.ListStudentMetricsInWindow and translates its error.
func (w querier) ListStudentMetricsInWindow(ctx context.Context, arg gen.ListStudentMetricsInWindowParams) ([]gen.PerformanceMetric, error) {
	return translate(w.q.ListStudentMetricsInWindow(ctx, arg))
}

// RecordPerformanceMetric calls gen.Querier.RecordPerformanceMetric and translates its error.
func (w querier) RecordPerformanceMetric(ctx context.Context, arg gen.RecordPerformanceMetricParams) (gen.PerformanceMetric, error) {
	return translate(w.q.RecordPerformanceMetric(ctx, arg))
}

// UpdateEvalRunStatus calls gen.Querier.UpdateEvalRunStatus and translates its error.
func (w querier) UpdateEvalRunStatus(ctx context.Context, arg gen.UpdateEvalRunStatusParams) (gen.EvalRun, error) {
	return translate(w.q.UpdateEvalRunStatus(ctx, arg))
}

// translate is the facade's single wrapping rule: the result as is, the
// error translated.
func translate[T any](v T, err error) (T, error) {
	return v, dberr.Translate(err)
}

package cachewrap

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

// fakeQuerier is a gen.Querier that counts calls per method and returns
// values stamped with the current version, so a test can tell a cached value
// from a fresh one. Set err to make every call fail; set block to make
// GetStudentWithMetrics wait for it to close.
type fakeQuerier struct {
	mu      sync.Mutex
	calls   map[string]int
	version int64
	err     error
	block   chan struct{}
	// hang makes GetStudentWithMetrics wait until its ctx ends and fail
	// with ctx's error, as a statement does whose per-statement deadline
	// (socket_timeout) passes on a stalled server.
	hang bool
}

var _ gen.Querier = (*fakeQuerier)(nil)

func newFake() *fakeQuerier { return &fakeQuerier{calls: map[string]int{}} }

func (f *fakeQuerier) call(name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	return f.version, f.err
}

func (f *fakeQuerier) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeQuerier) bumpVersion() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
}

func (f *fakeQuerier) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

var fakeTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeQuerier) run(v int64) gen.EvalRun {
	ft := fakeTime.Add(time.Duration(v) * time.Second)
	return gen.EvalRun{Name: fmt.Sprint("run-", v), Config: []byte(`{"v":1}`), StartedAt: fakeTime, FinishedAt: &ft}
}

func (f *fakeQuerier) CountConnectionsByState(ctx context.Context) ([]gen.CountConnectionsByStateRow, error) {
	v, err := f.call("CountConnectionsByState")
	return []gen.CountConnectionsByStateRow{{State: "idle", Connections: v}}, err
}

func (f *fakeQuerier) CreateStudentProfile(ctx context.Context, arg gen.CreateStudentProfileParams) (gen.StudentProfile, error) {
	v, err := f.call("CreateStudentProfile")
	return gen.StudentProfile{ID: v}, err
}

func (f *fakeQuerier) CreateUser(ctx context.Context, arg gen.CreateUserParams) (gen.User, error) {
	v, err := f.call("CreateUser")
	return gen.User{ID: v}, err
}

func (f *fakeQuerier) DeleteEvalRun(ctx context.Context, id uuid.UUID) (int64, error) {
	return f.call("DeleteEvalRun")
}

func (f *fakeQuerier) GetEvalRun(ctx context.Context, id uuid.UUID) (gen.EvalRun, error) {
	v, err := f.call("GetEvalRun")
	return f.run(v), err
}

func (f *fakeQuerier) GetEvalRunSummary(ctx context.Context, id uuid.UUID) (gen.GetEvalRunSummaryRow, error) {
	v, err := f.call("GetEvalRunSummary")
	return gen.GetEvalRunSummaryRow{ID: id, ResultCount: v}, err
}

func (f *fakeQuerier) GetStudentWithMetrics(ctx context.Context, studentID string) (gen.GetStudentWithMetricsRow, error) {
	if f.block != nil {
		<-f.block
	}
	if f.hang {
		f.call("GetStudentWithMetrics")
		<-ctx.Done()
		return gen.GetStudentWithMetricsRow{}, ctx.Err()
	}
	v, err := f.call("GetStudentWithMetrics")
	if err != nil {
		return gen.GetStudentWithMetricsRow{}, err
	}
	return studentRow(studentID, v, 3), nil
}

func studentRow(studentID string, v int64, n int) gen.GetStudentWithMetricsRow {
	cohort := "c-" + studentID
	r := gen.GetStudentWithMetricsRow{ID: v, StudentID: studentID, Cohort: &cohort, CreatedAt: fakeTime,
		MetricNames: []string{}, MetricValues: []float64{}, MetricRecordedAt: []time.Time{}}
	for i := range n {
		r.MetricNames = append(r.MetricNames, fmt.Sprint("m", i))
		r.MetricValues = append(r.MetricValues, float64(v)+float64(i)/10)
		r.MetricRecordedAt = append(r.MetricRecordedAt, fakeTime.Add(time.Duration(i)*time.Minute))
	}
	return r
}

func (f *fakeQuerier) GetUser(ctx context.Context, id int64) (gen.User, error) {
	v, err := f.call("GetUser")
	return gen.User{ID: id, Name: fmt.Sprint("user-", v)}, err
}

func (f *fakeQuerier) GetUserByEmail(ctx context.Context, email string) (gen.User, error) {
	v, err := f.call("GetUserByEmail")
	return gen.User{Email: email, Name: fmt.Sprint("user-", v)}, err
}

func (f *fakeQuerier) InsertEvalMetrics(ctx context.Context, arg []gen.InsertEvalMetricsParams) (int64, error) {
	return f.call("InsertEvalMetrics")
}

func (f *fakeQuerier) InsertEvalMetricsUnnest(ctx context.Context, arg gen.InsertEvalMetricsUnnestParams) (int64, error) {
	return f.call("InsertEvalMetricsUnnest")
}

func (f *fakeQuerier) InsertEvalResults(ctx context.Context, arg []gen.InsertEvalResultsParams) (int64, error) {
	return f.call("InsertEvalResults")
}

func (f *fakeQuerier) InsertEvalResultsUnnest(ctx context.Context, arg gen.InsertEvalResultsUnnestParams) (int64, error) {
	return f.call("InsertEvalResultsUnnest")
}

func (f *fakeQuerier) InsertEvalRun(ctx context.Context, arg gen.InsertEvalRunParams) (gen.EvalRun, error) {
	v, err := f.call("InsertEvalRun")
	return f.run(v), err
}

func (f *fakeQuerier) InsertPerformanceMetrics(ctx context.Context, arg []gen.InsertPerformanceMetricsParams) (int64, error) {
	return f.call("InsertPerformanceMetrics")
}

func (f *fakeQuerier) ListEvalMetrics(ctx context.Context, runID uuid.UUID) ([]gen.EvalMetric, error) {
	v, err := f.call("ListEvalMetrics")
	return []gen.EvalMetric{{RunID: runID, Name: "acc", Value: float64(v)}}, err
}

func (f *fakeQuerier) ListEvalResults(ctx context.Context, arg gen.ListEvalResultsParams) ([]gen.EvalResult, error) {
	v, err := f.call("ListEvalResults")
	e := "boom"
	return []gen.EvalResult{{RunID: arg.RunID, CaseID: fmt.Sprint("c", v), Error: &e}}, err
}

func (f *fakeQuerier) EvalLeaderboard(ctx context.Context, runIDs []uuid.UUID) ([]gen.EvalLeaderboardRow, error) {
	v, err := f.call("EvalLeaderboard")
	return []gen.EvalLeaderboardRow{{Model: fmt.Sprint("m", v), Runs: v}}, err
}

func (f *fakeQuerier) ListEvalRuns(ctx context.Context, arg gen.ListEvalRunsParams) ([]gen.EvalRun, error) {
	v, err := f.call("ListEvalRuns")
	return []gen.EvalRun{f.run(v), f.run(v + 1)}, err
}

func (f *fakeQuerier) ListFailedEvalResults(ctx context.Context, arg gen.ListFailedEvalResultsParams) ([]gen.EvalResult, error) {
	v, err := f.call("ListFailedEvalResults")
	return []gen.EvalResult{{RunID: arg.RunID, CaseID: fmt.Sprint("f", v)}}, err
}

func (f *fakeQuerier) ListStudentMetricsInWindow(ctx context.Context, arg gen.ListStudentMetricsInWindowParams) ([]gen.PerformanceMetric, error) {
	v, err := f.call("ListStudentMetricsInWindow")
	return []gen.PerformanceMetric{{ID: v, Name: "m"}}, err
}

func (f *fakeQuerier) RecordPerformanceMetric(ctx context.Context, arg gen.RecordPerformanceMetricParams) (gen.PerformanceMetric, error) {
	v, err := f.call("RecordPerformanceMetric")
	return gen.PerformanceMetric{ID: v}, err
}

func (f *fakeQuerier) UpdateEvalRunStatus(ctx context.Context, arg gen.UpdateEvalRunStatusParams) (gen.EvalRun, error) {
	v, err := f.call("UpdateEvalRunStatus")
	return f.run(v), err
}

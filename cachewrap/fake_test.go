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
// from a fresh one. Its methods are generated (fakeGen, from gen/querier.go);
// respond answers the queries the tests use, and any other query counts the
// call and returns the zero value. Set err to make every call fail; set block to make
// GetStudentWithMetrics wait for it to close.
type fakeQuerier struct {
	fakeGen // generated: one method per query, each calling answer
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

func newFake() *fakeQuerier {
	f := &fakeQuerier{calls: map[string]int{}}
	f.answer = f.respond
	return f
}

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

// respond answers a call of query name with args (those after ctx).
func (f *fakeQuerier) respond(ctx context.Context, name string, args []any) (any, error) {
	switch name {
	case "CountConnectionsByState":
		v, err := f.call("CountConnectionsByState")
		return []gen.CountConnectionsByStateRow{{State: "idle", Connections: v}}, err
	case "CreateStudentProfile":
		v, err := f.call("CreateStudentProfile")
		return gen.StudentProfile{ID: v}, err
	case "CreateUser":
		v, err := f.call("CreateUser")
		return gen.User{ID: v}, err
	case "DeleteEvalRun":
		return f.call("DeleteEvalRun")
	case "GetEvalRun":
		v, err := f.call("GetEvalRun")
		return f.run(v), err
	case "GetEvalRunSummary":
		id := args[0].(uuid.UUID)
		v, err := f.call("GetEvalRunSummary")
		return gen.GetEvalRunSummaryRow{ID: id, ResultCount: v}, err
	case "GetStudentWithMetrics":
		studentID := args[0].(string)
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
	case "GetUser":
		id := args[0].(int64)
		v, err := f.call("GetUser")
		return gen.User{ID: id, Name: fmt.Sprint("user-", v)}, err
	case "GetUserByEmail":
		email := args[0].(string)
		v, err := f.call("GetUserByEmail")
		return gen.User{Email: email, Name: fmt.Sprint("user-", v)}, err
	case "InsertEvalMetrics":
		return f.call("InsertEvalMetrics")
	case "InsertEvalMetricsUnnest":
		return f.call("InsertEvalMetricsUnnest")
	case "InsertEvalResults":
		return f.call("InsertEvalResults")
	case "InsertEvalResultsUnnest":
		return f.call("InsertEvalResultsUnnest")
	case "InsertEvalRun":
		v, err := f.call("InsertEvalRun")
		return f.run(v), err
	case "InsertPerformanceMetrics":
		return f.call("InsertPerformanceMetrics")
	case "ListEvalMetrics":
		runID := args[0].(uuid.UUID)
		v, err := f.call("ListEvalMetrics")
		return []gen.EvalMetric{{RunID: runID, Name: "acc", Value: float64(v)}}, err
	case "ListEvalResults":
		arg := args[0].(gen.ListEvalResultsParams)
		v, err := f.call("ListEvalResults")
		e := "boom"
		return []gen.EvalResult{{RunID: arg.RunID, CaseID: fmt.Sprint("c", v), Error: &e}}, err
	case "EvalLeaderboard":
		v, err := f.call("EvalLeaderboard")
		return []gen.EvalLeaderboardRow{{Model: fmt.Sprint("m", v), Runs: v}}, err
	case "ListEvalRuns":
		v, err := f.call("ListEvalRuns")
		return []gen.EvalRun{f.run(v), f.run(v + 1)}, err
	case "ListFailedEvalResults":
		arg := args[0].(gen.ListFailedEvalResultsParams)
		v, err := f.call("ListFailedEvalResults")
		return []gen.EvalResult{{RunID: arg.RunID, CaseID: fmt.Sprint("f", v)}}, err
	case "ListStudentMetricsInWindow":
		v, err := f.call("ListStudentMetricsInWindow")
		return []gen.PerformanceMetric{{ID: v, Name: "m"}}, err
	case "RecordPerformanceMetric":
		v, err := f.call("RecordPerformanceMetric")
		return gen.PerformanceMetric{ID: v}, err
	case "UpdateEvalRunStatus":
		v, err := f.call("UpdateEvalRunStatus")
		return f.run(v), err
	}
	return f.call(name)
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

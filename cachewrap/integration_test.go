package cachewrap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	pool     *pgxpool.Pool
	c        *Cache
	students []gen.StudentProfile
	runs     []uuid.UUID
}

func setupDB(t *testing.T, nStudents, nRuns int) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	q := gen.New(pool)
	c, err := New(q, &Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fx := &fixture{pool: pool, c: c}
	for i := range nStudents {
		u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: fmt.Sprintf("u%d@example.com", i), Name: fmt.Sprint("User ", i)})
		if err != nil {
			t.Fatalf("create user %d: %v", i, err)
		}
		sp, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: fmt.Sprint("S", i)})
		if err != nil {
			t.Fatalf("create student %d: %v", i, err)
		}
		fx.students = append(fx.students, sp)
	}
	for i := range nRuns {
		id := uuid.Must(uuid.NewV7())
		if _, err := q.InsertEvalRun(ctx, gen.InsertEvalRunParams{ID: id, Name: fmt.Sprint("run", i), Model: "m", Dataset: "d",
			Status: "running", Config: []byte(`{}`), StartedAt: time.Now()}); err != nil {
			t.Fatalf("insert run %d: %v", i, err)
		}
		fx.runs = append(fx.runs, id)
	}
	return fx
}

// inTx runs fn in a transaction through c.Tx and calls commit after COMMIT,
// as package txn does.
func inTx(ctx context.Context, fx *fixture, fn func(q gen.Querier) error) error {
	tx, err := fx.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	txq, commit := fx.c.Tx(gen.New(tx))
	if err := fn(txq); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	commit()
	return nil
}

// TestNoStaleReadAfterWrite runs writers and readers concurrently over the
// real queries and checks that no read returns data older than the last
// write that completed before the read began. Every write adds rows (metrics
// of a student, metrics or results of a run), so "older" means fewer rows
// than the writes completed so far; writes go through the Cache directly,
// through transactions (Tx + commit after COMMIT) and through COPY.
func TestNoStaleReadAfterWrite(t *testing.T) {
	t.Parallel()
	const (
		nStudents, nRuns = 3, 2
		writers          = 4
		writesPerWriter  = 30
		readers          = 4
	)
	fx := setupDB(t, nStudents, nRuns)
	ctx := context.Background()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)

	studentDone := make([]atomic.Int64, nStudents) // metrics whose write returned
	runMetricsDone := make([]atomic.Int64, nRuns)
	runResultsDone := make([]atomic.Int64, nRuns)
	var seq atomic.Int64
	var writersLeft atomic.Int32
	writersLeft.Store(writers)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			defer writersLeft.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for range writesPerWriter {
				n := seq.Add(1)
				var err error
				switch rng.IntN(5) {
				case 0: // plain write
					s := rng.IntN(nStudents)
					_, err = fx.c.RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{
						StudentProfileID: fx.students[s].ID, Name: "score", Value: float64(n), RecordedAt: time.Now()})
					if err == nil {
						studentDone[s].Add(1)
					}
				case 1: // COPY through the cache
					s := rng.IntN(nStudents)
					_, err = fx.c.InsertPerformanceMetrics(ctx, []gen.InsertPerformanceMetricsParams{
						{StudentProfileID: fx.students[s].ID, Name: "a", Value: 1, RecordedAt: time.Now()},
						{StudentProfileID: fx.students[s].ID, Name: "b", Value: 2, RecordedAt: time.Now()},
					})
					if err == nil {
						studentDone[s].Add(2)
					}
				case 2: // transaction, invalidated after COMMIT
					s := rng.IntN(nStudents)
					err = inTx(ctx, fx, func(q gen.Querier) error {
						_, err := q.RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{
							StudentProfileID: fx.students[s].ID, Name: "tx", Value: float64(n), RecordedAt: time.Now()})
						return err
					})
					if err == nil {
						studentDone[s].Add(1)
					}
				case 3: // run metrics, in a statement
					r := rng.IntN(nRuns)
					_, err = fx.c.InsertEvalMetricsUnnest(ctx, gen.InsertEvalMetricsUnnestParams{
						RunID: fx.runs[r], Names: []string{fmt.Sprint("m", n)}, MetricValues: []float64{float64(n)}})
					if err == nil {
						runMetricsDone[r].Add(1)
					}
				case 4: // run results by COPY in a transaction
					r := rng.IntN(nRuns)
					err = inTx(ctx, fx, func(q gen.Querier) error {
						_, err := q.InsertEvalResults(ctx, []gen.InsertEvalResultsParams{{
							RunID: fx.runs[r], CaseID: fmt.Sprint("c", n), Input: "i", Expected: "e", Output: "o",
							Score: 1, Passed: n%2 == 0, LatencyMs: int32(n)}})
						return err
					})
					if err == nil {
						runResultsDone[r].Add(1)
					}
				}
				if err != nil {
					t.Errorf("write %d: %v", n, err)
					return
				}
			}
		})
	}
	var reads atomic.Int64
	for r := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(100+r)))
			for writersLeft.Load() > 0 || rng.IntN(4) != 0 {
				reads.Add(1)
				switch rng.IntN(4) {
				case 0:
					s := rng.IntN(nStudents)
					before := studentDone[s].Load()
					row, err := fx.c.GetStudentWithMetrics(ctx, fx.students[s].StudentID)
					if err != nil {
						t.Errorf("GetStudentWithMetrics: %v", err)
						return
					}
					if got := int64(len(row.MetricNames)); got < before {
						t.Errorf("GetStudentWithMetrics(%s) has %d metrics, %d writes had completed before the read", row.StudentID, got, before)
					}
				case 1:
					s := rng.IntN(nStudents)
					before := studentDone[s].Load()
					ms, err := fx.c.ListStudentMetricsInWindow(ctx, gen.ListStudentMetricsInWindowParams{
						StudentID: fx.students[s].StudentID, RecordedFrom: time.Unix(0, 0), RecordedUntil: time.Now().Add(time.Hour).Truncate(time.Hour)})
					if err != nil {
						t.Errorf("ListStudentMetricsInWindow: %v", err)
						return
					}
					if got := int64(len(ms)); got < before {
						t.Errorf("ListStudentMetricsInWindow: %d metrics, %d writes had completed before the read", got, before)
					}
				case 2:
					i := rng.IntN(nRuns)
					before := runMetricsDone[i].Load()
					ms, err := fx.c.ListEvalMetrics(ctx, fx.runs[i])
					if err != nil {
						t.Errorf("ListEvalMetrics: %v", err)
						return
					}
					if got := int64(len(ms)); got < before {
						t.Errorf("ListEvalMetrics: %d metrics, %d writes had completed before the read", got, before)
					}
				case 3:
					i := rng.IntN(nRuns)
					before := runResultsDone[i].Load()
					sum, err := fx.c.GetEvalRunSummary(ctx, fx.runs[i])
					if err != nil {
						t.Errorf("GetEvalRunSummary: %v", err)
						return
					}
					if sum.ResultCount < before {
						t.Errorf("GetEvalRunSummary: %d results, %d writes had completed before the read", sum.ResultCount, before)
					}
				}
			}
		})
	}
	wg.Wait()
	s := fx.c.Stats()
	t.Logf("%d reads: %+v", reads.Load(), s.QueryStats)

	// Quiescent: a repeated read is a hit, so the test above exercised a
	// real cache and not a pass-through.
	fx.c.GetStudentWithMetrics(ctx, fx.students[0].StudentID)
	fx.c.Wait()
	hits := fx.c.Stats().Hits
	fx.c.GetStudentWithMetrics(ctx, fx.students[0].StudentID)
	if got := fx.c.Stats().Hits; got != hits+1 {
		t.Errorf("quiescent repeated read: hits %d -> %d, want +1", hits, got)
	}
}

func TestDeleteCascadeInvalidates(t *testing.T) {
	t.Parallel()
	fx := setupDB(t, 0, 1)
	ctx := context.Background()
	run := fx.runs[0]
	if _, err := fx.c.InsertEvalMetricsUnnest(ctx, gen.InsertEvalMetricsUnnestParams{RunID: run, Names: []string{"acc"}, MetricValues: []float64{0.5}}); err != nil {
		t.Fatal(err)
	}
	ms, err := fx.c.ListEvalMetrics(ctx, run)
	if err != nil || len(ms) != 1 {
		t.Fatalf("ListEvalMetrics() = %v, %v; want 1 metric", ms, err)
	}
	fx.c.Wait()
	if _, err := fx.c.DeleteEvalRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	ms, err = fx.c.ListEvalMetrics(ctx, run)
	if err != nil || len(ms) != 0 {
		t.Errorf("ListEvalMetrics() after DeleteEvalRun = %v, %v; want none (cascade)", ms, err)
	}
	if _, err := fx.c.GetEvalRun(ctx, run); err != pgx.ErrNoRows {
		t.Errorf("GetEvalRun() after delete error = %v, want pgx.ErrNoRows", err)
	}
}

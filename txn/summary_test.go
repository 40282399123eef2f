package txn_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

// storedSummary returns the run's row of eval_run_summaries and whether it
// has one.
func storedSummary(t *testing.T, admin *pgxpool.Pool, id uuid.UUID) (gen.EvalRunSummary, bool) {
	t.Helper()
	rows, err := admin.Query(t.Context(), `SELECT * FROM eval_run_summaries WHERE run_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[gen.EvalRunSummary])
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}

// liveSummary is the run's summary computed from its results now.
func liveSummary(t *testing.T, admin *pgxpool.Pool, id uuid.UUID) gen.EvalRunSummary {
	t.Helper()
	rows, err := admin.Query(t.Context(), `SELECT run_id, result_count, passed_count, pass_rate, mean_score, p50_latency_ms, p95_latency_ms
		FROM eval_run_summaries_live WHERE run_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[gen.EvalRunSummary])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRecordEvalRunStoresSummary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		n         int
		threshold int
	}{
		{"Batch", 300, -1},
		{"Copy", 3000, 1},
		{"NoResults", 0, -1},
		{"NoResultsCopy", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, admin := setup(t)
			run := makeRun(uuid.Nil, tc.n, 2)
			rec, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, &txn.Options{CopyThreshold: tc.threshold})
			if err != nil {
				t.Fatalf("RecordEvalRun() = %v", err)
			}
			got, ok := storedSummary(t, admin, rec.Run.ID)
			if !ok {
				t.Fatalf("RecordEvalRun stored no summary")
			}
			passed := 0
			for _, r := range run.Results {
				if r.Passed {
					passed++
				}
			}
			if got.ResultCount != int64(tc.n) || got.PassedCount != int64(passed) {
				t.Errorf("stored summary counts %d results, %d passed; want %d, %d", got.ResultCount, got.PassedCount, tc.n, passed)
			}
			if diff := cmp.Diff(liveSummary(t, admin, rec.Run.ID), got); diff != "" {
				t.Errorf("stored summary differs from the aggregate of the stored results (-aggregate +stored):\n%s", diff)
			}
			// GetEvalRunSummary returns it.
			sum, err := gen.New(admin).GetEvalRunSummary(t.Context(), rec.Run.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := gen.GetEvalRunSummaryRow{ID: got.RunID, Status: txn.StatusCompleted, ResultCount: got.ResultCount,
				PassedCount: got.PassedCount, PassRate: got.PassRate, MeanScore: got.MeanScore,
				P50LatencyMs: got.P50LatencyMs, P95LatencyMs: got.P95LatencyMs}
			if diff := cmp.Diff(want, sum); diff != "" {
				t.Errorf("GetEvalRunSummary (-stored +got):\n%s", diff)
			}
			// A retry finds the run and leaves its summary alone.
			run.ID = rec.Run.ID
			if again, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, &txn.Options{CopyThreshold: tc.threshold}); err != nil || !again.AlreadyRecorded {
				t.Fatalf("second RecordEvalRun() = %+v, %v; want AlreadyRecorded", again, err)
			}
			wantCounts(t, admin, tableCounts{1, tc.n, 2, 1})

			// Deleting the run deletes its summary.
			if n, err := gen.New(admin).DeleteEvalRun(t.Context(), rec.Run.ID); err != nil || n != 1 {
				t.Fatalf("DeleteEvalRun = %d, %v", n, err)
			}
			wantCounts(t, admin, tableCounts{})
		})
	}
}

// TestRecordEvalRunSummaryFailureLeavesNoTrace makes the database refuse
// the summary, the last statement of the recording: the run, its results
// and metrics are rolled back with it, and the error says which step failed.
func TestRecordEvalRunSummaryFailureLeavesNoTrace(t *testing.T) {
	t.Parallel()
	for _, threshold := range []int{-1, 1} {
		t.Run(fmt.Sprintf("CopyThreshold=%d", threshold), func(t *testing.T) {
			t.Parallel()
			db, admin := setup(t)
			if _, err := admin.Exec(t.Context(), `ALTER TABLE eval_run_summaries ADD CONSTRAINT test_no_summary CHECK (result_count < 0)`); err != nil {
				t.Fatal(err)
			}
			_, err := txn.RecordEvalRunWithOptions(t.Context(), db, makeRun(uuid.Nil, 50, 2), &txn.Options{CopyThreshold: threshold})
			if err == nil || !strings.Contains(err.Error(), "test_no_summary") || !strings.Contains(err.Error(), "summary") {
				t.Errorf("RecordEvalRun() = %v, want the check violation of the summary step", err)
			}
			wantCounts(t, admin, tableCounts{})
		})
	}
}

// TestRejectedRunLeavesNoSummary: a run validation refuses writes nothing,
// and one the database refuses (a duplicate case id inside the COPY)
// leaves no summary either.
func TestRejectedRunLeavesNoSummary(t *testing.T) {
	t.Parallel()
	db, admin := setup(t)
	bad := makeRun(uuid.Nil, 10, 1)
	bad.Results[3].Score = 0
	bad.Results[4].LatencyMs = -1
	var verr *txn.ValidationError
	if _, err := txn.RecordEvalRun(t.Context(), db, bad); !errors.As(err, &verr) {
		t.Errorf("RecordEvalRun(negative latency) = %v, want a *ValidationError", err)
	}
	if _, err := admin.Exec(t.Context(), `ALTER TABLE eval_results ADD CONSTRAINT test_no_case_7 CHECK (case_id <> 'case-000007')`); err != nil {
		t.Fatal(err)
	}
	for _, threshold := range []int{-1, 1} {
		if _, err := txn.RecordEvalRunWithOptions(t.Context(), db, makeRun(uuid.Nil, 10, 1), &txn.Options{CopyThreshold: threshold}); err == nil ||
			!strings.Contains(err.Error(), "test_no_case_7") {
			t.Errorf("RecordEvalRun(CopyThreshold=%d, refused case) = %v, want the check violation", threshold, err)
		}
	}
	wantCounts(t, admin, tableCounts{})
}

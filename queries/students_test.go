package queries_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// queryRecorder is a pgx.QueryTracer that records the SQL of every query.
type queryRecorder struct {
	mu   sync.Mutex
	sqls []string
}

func (r *queryRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sqls = append(r.sqls, data.SQL)
	return ctx
}

func (r *queryRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the recorded queries and forgets them.
func (r *queryRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sqls
	r.sqls = nil
	return s
}

// setupTraced is setup with a pool whose queries are recorded.
func setupTraced(t *testing.T) (*pgxpool.Pool, *gen.Queries, *queryRecorder) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	rec := &queryRecorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, gen.New(pool), rec
}

// mustStudent creates a user and its student profile.
func mustStudent(t *testing.T, q *gen.Queries, studentID string, cohort *string) gen.StudentProfile {
	t.Helper()
	ctx := context.Background()
	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: studentID + "@school.example", Name: "Student " + studentID})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	sp, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: studentID, Cohort: cohort})
	if err != nil {
		t.Fatalf("CreateStudentProfile(%q): %v", studentID, err)
	}
	return sp
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

func TestCreateStudentProfile(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()
	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "s1@example.com", Name: "S One"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	u2, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "s2@example.com", Name: "S Two"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}

	before := serverNow(t, pool)
	sp, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: "STU-001", Cohort: ptr("2025-spring")})
	if err != nil {
		t.Fatalf("CreateStudentProfile: %v", err)
	}
	after := serverNow(t, pool)
	if sp.CreatedAt.Before(before) || sp.CreatedAt.After(after) {
		t.Errorf("CreateStudentProfile: created_at %v not within server time [%v, %v]", sp.CreatedAt, before, after)
	}
	want := gen.StudentProfile{ID: sp.ID, UserID: u.ID, StudentID: "STU-001", Cohort: ptr("2025-spring"), CreatedAt: sp.CreatedAt}
	if diff := cmp.Diff(want, sp); diff != "" {
		t.Errorf("CreateStudentProfile() mismatch (-want +got):\n%s", diff)
	}

	t.Run("NullCohort", func(t *testing.T) {
		sp2, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u2.ID, StudentID: "STU-002"})
		if err != nil {
			t.Fatalf("CreateStudentProfile: %v", err)
		}
		got, err := q.GetStudentWithMetrics(ctx, "STU-002")
		if err != nil {
			t.Fatalf("GetStudentWithMetrics: %v", err)
		}
		if got.Cohort != nil || sp2.Cohort != nil {
			t.Errorf("cohort = %v (insert), %v (read); want nil", sp2.Cohort, got.Cohort)
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		u3, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "s3@example.com", Name: "S Three"})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		tests := []struct {
			name       string
			arg        gen.CreateStudentProfileParams
			code       string
			constraint string
		}{
			{"SecondProfileOfUser", gen.CreateStudentProfileParams{UserID: u.ID, StudentID: "STU-999"}, "23505", "student_profiles_user_id_key"},
			{"DuplicateStudentID", gen.CreateStudentProfileParams{UserID: u3.ID, StudentID: "STU-001"}, "23505", "student_profiles_student_id_key"},
			{"EmptyStudentID", gen.CreateStudentProfileParams{UserID: u3.ID, StudentID: ""}, "23514", "student_profiles_student_id_check"},
			{"UnknownUser", gen.CreateStudentProfileParams{UserID: u3.ID + 1000, StudentID: "STU-404"}, "23503", "student_profiles_user_id_fkey"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := q.CreateStudentProfile(ctx, tt.arg)
				wantPgError(t, "CreateStudentProfile", err, tt.code, tt.constraint)
			})
		}
	})
}

func TestGetStudentWithMetrics(t *testing.T) {
	t.Parallel()
	_, q, rec := setupTraced(t)
	ctx := context.Background()

	sp := mustStudent(t, q, "STU-A", ptr("c1"))
	other := mustStudent(t, q, "STU-B", nil)

	get := func(t *testing.T, studentID string) (gen.GetStudentWithMetricsRow, error) {
		t.Helper()
		rec.take()
		got, err := q.GetStudentWithMetrics(ctx, studentID)
		if diff := cmp.Diff([]string{gen.GetStudentWithMetrics}, rec.take()); diff != "" {
			t.Errorf("GetStudentWithMetrics(%q) is not exactly one query (-want +got):\n%s", studentID, diff)
		}
		return got, err
	}

	t.Run("NoMetricsEmptyNotNil", func(t *testing.T) {
		got, err := get(t, "STU-A")
		if err != nil {
			t.Fatalf("GetStudentWithMetrics: %v", err)
		}
		want := gen.GetStudentWithMetricsRow{
			ID: sp.ID, UserID: sp.UserID, StudentID: "STU-A", Cohort: ptr("c1"), CreatedAt: sp.CreatedAt,
			MetricNames: []string{}, MetricValues: []float64{}, MetricRecordedAt: []time.Time{},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetStudentWithMetrics(no metrics) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("MetricsInRecordedAtOrder", func(t *testing.T) {
		// Inserted out of order; two share a recorded_at and keep id
		// (insertion) order. The other student's metric stays out.
		in := []gen.InsertPerformanceMetricsParams{
			{StudentProfileID: sp.ID, Name: "quiz", Value: 7.5, RecordedAt: t0.Add(2 * time.Hour)},
			{StudentProfileID: sp.ID, Name: "attendance", Value: 1, RecordedAt: t0},
			{StudentProfileID: other.ID, Name: "quiz", Value: 3, RecordedAt: t0.Add(time.Hour)},
			{StudentProfileID: sp.ID, Name: "höhe ✓", Value: -2.25, RecordedAt: t0.Add(time.Hour)},
			{StudentProfileID: sp.ID, Name: "essay", Value: 88, RecordedAt: t0.Add(time.Hour)},
		}
		if n, err := q.InsertPerformanceMetrics(ctx, in); err != nil || n != int64(len(in)) {
			t.Fatalf("InsertPerformanceMetrics = %d, %v; want %d, nil", n, err, len(in))
		}
		got, err := get(t, "STU-A")
		if err != nil {
			t.Fatalf("GetStudentWithMetrics: %v", err)
		}
		want := gen.GetStudentWithMetricsRow{
			ID: sp.ID, UserID: sp.UserID, StudentID: "STU-A", Cohort: ptr("c1"), CreatedAt: sp.CreatedAt,
			MetricNames:      []string{"attendance", "höhe ✓", "essay", "quiz"},
			MetricValues:     []float64{1, -2.25, 88, 7.5},
			MetricRecordedAt: []time.Time{t0, t0.Add(time.Hour), t0.Add(time.Hour), t0.Add(2 * time.Hour)},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetStudentWithMetrics() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := get(t, "STU-missing")
		wantNoRows(t, "GetStudentWithMetrics(unknown student)", err)
	})
}

func TestListStudentMetricsInWindow(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	sp := mustStudent(t, q, "STU-W", nil)
	other := mustStudent(t, q, "STU-X", nil)

	record := func(p gen.RecordPerformanceMetricParams) gen.PerformanceMetric {
		t.Helper()
		m, err := q.RecordPerformanceMetric(ctx, p)
		if err != nil {
			t.Fatalf("RecordPerformanceMetric(%+v): %v", p, err)
		}
		return m
	}
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	m3 := record(gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "score", Value: 3, RecordedAt: h(3)})
	m0 := record(gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "score", Value: 0, RecordedAt: h(0)})
	m1a := record(gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "score", Value: 1, RecordedAt: h(1)})
	m1b := record(gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "time_on_task", Value: 42.5, RecordedAt: h(1)})
	m2 := record(gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "time_on_task", Value: 2, RecordedAt: h(2)})
	record(gen.RecordPerformanceMetricParams{StudentProfileID: other.ID, Name: "score", Value: 99, RecordedAt: h(1)})

	t.Run("RecordPerformanceMetricReturnsRow", func(t *testing.T) {
		want := gen.PerformanceMetric{ID: m1b.ID, StudentProfileID: sp.ID, Name: "time_on_task", Value: 42.5, RecordedAt: h(1)}
		if diff := cmp.Diff(want, m1b); diff != "" {
			t.Errorf("RecordPerformanceMetric() mismatch (-want +got):\n%s", diff)
		}
		if !(m3.ID < m0.ID && m0.ID < m1a.ID && m1a.ID < m1b.ID && m1b.ID < m2.ID) {
			t.Errorf("ids not increasing in insertion order: %d %d %d %d %d", m3.ID, m0.ID, m1a.ID, m1b.ID, m2.ID)
		}
	})

	tests := []struct {
		name     string
		student  string
		from, to time.Time
		metric   *string
		want     []gen.PerformanceMetric
	}{
		{"FromInclusiveUntilExclusive", "STU-W", h(1), h(3), nil, []gen.PerformanceMetric{m1a, m1b, m2}},
		{"Everything", "STU-W", h(-1), h(4), nil, []gen.PerformanceMetric{m0, m1a, m1b, m2, m3}},
		{"OneMicrosecondAfterFrom", "STU-W", h(1).Add(time.Microsecond), h(3).Add(time.Microsecond), nil, []gen.PerformanceMetric{m2, m3}},
		{"EmptyWindow", "STU-W", h(1), h(1), nil, []gen.PerformanceMetric{}},
		{"ReversedWindow", "STU-W", h(3), h(0), nil, []gen.PerformanceMetric{}},
		{"NameFilter", "STU-W", h(0), h(4), ptr("score"), []gen.PerformanceMetric{m0, m1a, m3}},
		{"NameFilterAndWindow", "STU-W", h(1), h(3), ptr("time_on_task"), []gen.PerformanceMetric{m1b, m2}},
		{"UnknownName", "STU-W", h(0), h(4), ptr("nope"), []gen.PerformanceMetric{}},
		{"EmptyNameIsAFilterNotNull", "STU-W", h(0), h(4), ptr(""), []gen.PerformanceMetric{}},
		{"UnknownStudent", "STU-none", h(0), h(4), nil, []gen.PerformanceMetric{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.ListStudentMetricsInWindow(ctx, gen.ListStudentMetricsInWindowParams{
				StudentID: tt.student, RecordedFrom: tt.from, RecordedUntil: tt.to, MetricName: tt.metric,
			})
			if err != nil {
				t.Fatalf("ListStudentMetricsInWindow: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ListStudentMetricsInWindow() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPerformanceMetricsRejected(t *testing.T) {
	t.Parallel()
	_, q := setup(t)
	ctx := context.Background()
	sp := mustStudent(t, q, "STU-R", nil)

	tests := []struct {
		name       string
		p          gen.RecordPerformanceMetricParams
		code       string
		constraint string
	}{
		{"NaN", gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "x", Value: math.NaN(), RecordedAt: t0}, "23514", "performance_metrics_value_check"},
		{"PosInf", gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "x", Value: math.Inf(1), RecordedAt: t0}, "23514", "performance_metrics_value_check"},
		{"NegInf", gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "x", Value: math.Inf(-1), RecordedAt: t0}, "23514", "performance_metrics_value_check"},
		{"EmptyName", gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "", Value: 1, RecordedAt: t0}, "23514", "performance_metrics_name_check"},
		{"UnknownProfile", gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID + 1000, Name: "x", Value: 1, RecordedAt: t0}, "23503", "performance_metrics_student_profile_id_fkey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := q.RecordPerformanceMetric(ctx, tt.p)
			wantPgError(t, "RecordPerformanceMetric", err, tt.code, tt.constraint)
			_, err = q.InsertPerformanceMetrics(ctx, []gen.InsertPerformanceMetricsParams{
				{StudentProfileID: sp.ID, Name: "ok", Value: 1, RecordedAt: t0},
				gen.InsertPerformanceMetricsParams(tt.p),
			})
			wantPgError(t, "InsertPerformanceMetrics", err, tt.code, tt.constraint)
		})
	}
	got, err := q.GetStudentWithMetrics(ctx, "STU-R")
	if err != nil {
		t.Fatalf("GetStudentWithMetrics: %v", err)
	}
	if diff := cmp.Diff([]string{}, got.MetricNames); diff != "" {
		t.Errorf("metrics stored despite rejections (-want +got):\n%s", diff)
	}

	t.Run("EmptyCopy", func(t *testing.T) {
		n, err := q.InsertPerformanceMetrics(ctx, nil)
		if err != nil || n != 0 {
			t.Errorf("InsertPerformanceMetrics(nil) = %d, %v; want 0, nil", n, err)
		}
	})
}

package cachewrap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// studentFake serves GetStudentWithMetrics with a fixed row of 5 metrics.
type studentFake struct {
	gen.Querier
	calls int
}

func (f *studentFake) GetStudentWithMetrics(ctx context.Context, studentID string) (gen.GetStudentWithMetricsRow, error) {
	f.calls++
	return studentRow(studentID, 1, 5), nil
}

// BenchmarkCachedGetStudentWithMetrics measures a hit: key build, lookup,
// freshness check and the private copy of a row with a cohort and 5 metrics.
func BenchmarkCachedGetStudentWithMetrics(b *testing.B) {
	c, err := New(&studentFake{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.GetStudentWithMetrics(ctx, "S123456"); err != nil {
		b.Fatal(err)
	}
	c.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetStudentWithMetrics(ctx, "S123456"); err != nil {
			b.Fatal(err)
		}
	}
	if s := c.Stats(); s.Misses != 1 {
		b.Fatalf("%d misses, want 1: the benchmark did not measure hits", s.Misses)
	}
}

// BenchmarkCachedHitCopyOrView measures a hit of a student with n metrics
// as gen.Querier returns it (read=copy: the private copy, one allocation)
// and as repo's Views does (read=view: the cached row itself, through the
// Shared twin, wrapped in its view), on a Cache over a fake.
func BenchmarkCachedHitCopyOrView(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{5, 20} {
		f := &fakeGen{answer: func(_ context.Context, _ string, args []any) (any, error) {
			return studentRow(args[0].(string), 1, n), nil
		}}
		c, err := New(f, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.GetStudentWithMetrics(ctx, "S123456"); err != nil {
			b.Fatal(err)
		}
		c.Wait()
		shared := GetStudentWithMetrics.Shared()
		b.Run(fmt.Sprintf("metrics=%d/read=copy", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.GetStudentWithMetrics(ctx, "S123456")
				if err != nil || len(r.MetricNames) != n {
					b.Fatal(err, len(r.MetricNames))
				}
			}
		})
		b.Run(fmt.Sprintf("metrics=%d/read=view", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := serve(ctx, c, shared, "S123456", gen.Querier.GetStudentWithMetrics)
				if v := NewGetStudentWithMetricsRowView(&r); err != nil || v.MetricNames.Len() != n {
					b.Fatal(err, v.MetricNames.Len())
				}
			}
		})
		if s := c.Stats(); s.Misses != 1 {
			b.Fatalf("%d misses, want 1: the benchmark did not measure hits", s.Misses)
		}
	}
}

// BenchmarkGetStudentWithMetricsDB compares the query on a real PostgreSQL
// uncached and as a cache miss (the cache invalidated before every read).
func BenchmarkGetStudentWithMetricsDB(b *testing.B) {
	pool := dbtest.Pool(b)
	ctx := context.Background()
	q := gen.New(pool)
	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "b@example.com", Name: "B"})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: "S1"})
	if err != nil {
		b.Fatal(err)
	}
	var ms []gen.InsertPerformanceMetricsParams
	for i := range 5 {
		ms = append(ms, gen.InsertPerformanceMetricsParams{StudentProfileID: sp.ID, Name: fmt.Sprint("m", i), Value: float64(i), RecordedAt: fakeTime})
	}
	if _, err := q.InsertPerformanceMetrics(ctx, ms); err != nil {
		b.Fatal(err)
	}
	c, err := New(q, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("Uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.GetStudentWithMetrics(ctx, "S1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Invalidate("performance_metrics")
			if _, err := c.GetStudentWithMetrics(ctx, "S1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Interleaved alternates the two, so that a machine whose load drifts
	// (other processes, PostgreSQL's own background work) weighs on both
	// alike; it reports each one's mean and the miss's extra cost.
	b.Run("Interleaved", func(b *testing.B) {
		var direct, miss time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			if _, err := q.GetStudentWithMetrics(ctx, "S1"); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			c.Invalidate("performance_metrics")
			if _, err := c.GetStudentWithMetrics(ctx, "S1"); err != nil {
				b.Fatal(err)
			}
			direct += t1.Sub(t0)
			miss += time.Since(t1)
			n++
		}
		b.ReportMetric(float64(direct.Nanoseconds())/float64(n), "uncached-ns/op")
		b.ReportMetric(float64(miss.Nanoseconds())/float64(n), "miss-ns/op")
		b.ReportMetric(100*(float64(miss)/float64(direct)-1), "miss-extra-%")
	})
}

// BenchmarkZipfHitRatio reads 100k students with Zipf-skewed popularity
// (s=1.1) through a 4 MiB cache and reports the hit ratio.
func BenchmarkZipfHitRatio(b *testing.B) {
	f := &studentFake{}
	c, err := New(f, &Options{MaxBytes: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const students = 100_000
	ids := make([]string, students)
	for i := range ids {
		ids[i] = fmt.Sprint("S", i)
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, students-1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetStudentWithMetrics(ctx, ids[z.Uint64()]); err != nil {
			b.Fatal(err)
		}
	}
	s := c.Stats()
	b.ReportMetric(float64(s.Hits)/float64(s.Hits+s.Misses), "hit-ratio")
	b.ReportMetric(float64(s.Evictions), "evictions")
}

// BenchmarkMissOverhead isolates what a miss adds to a query: the same fake
// query run directly and through the cache with its table invalidated before
// every read (key build, lookup, singleflight, size estimate, set, copy).
// Against a database round trip this is the miss's extra cost.
func BenchmarkMissOverhead(b *testing.B) {
	f := &studentFake{}
	c, err := New(f, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.Run("Direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.GetStudentWithMetrics(ctx, "S1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Invalidate("performance_metrics")
			if _, err := c.GetStudentWithMetrics(ctx, "S1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package bench

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkOverhead measures evaldb's cost over raw pgx on the three reads
// (PK read, page of 100, student with its metrics; uncached) in a way that
// survives a shared, noisy machine: every iteration times one pgx read and one evaldb read back to
// back (alternating which goes first), so both see the same load, and the
// benchmark reports the median of the per-pair ratios as
// "evaldb-vs-pgx-%" (0 means as fast as raw pgx; 5 means 5% slower).
// ns/op is the time of both reads together.
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	for _, r := range reads {
		b.Run("read="+r.name, func(b *testing.B) {
			floor, c := open(b, "pgx"), open(b, "evaldb")
			for _, x := range []contender{floor, c} {
				if _, err := r.fn(x, ctx); err != nil {
					b.Fatal(err)
				}
			}
			ratios := make([]float64, 0, 1024)
			i := 0
			for b.Loop() {
				order := [2]contender{floor, c}
				if i%2 == 1 {
					order = [2]contender{c, floor}
				}
				var d [2]time.Duration
				for k, x := range order {
					t0 := time.Now()
					if _, err := r.fn(x, ctx); err != nil {
						b.Fatal(err)
					}
					d[k] = time.Since(t0)
				}
				if i%2 == 1 {
					d[0], d[1] = d[1], d[0]
				}
				ratios = append(ratios, float64(d[1])/float64(d[0]))
				i++
			}
			slices.Sort(ratios)
			b.ReportMetric((ratios[len(ratios)/2]-1)*100, "evaldb-vs-pgx-%")
		})
	}
}

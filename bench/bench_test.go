package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/bench/seed"
)

// read is one of the read workloads of a contender.
type read func(c contender, ctx context.Context) (summary, error)

var reads = []struct {
	name string
	fn   read
}{
	{"pk", contender.PKRead},
	{"page", contender.Page},
	{"student", contender.Student},
}

func benchRead(b *testing.B, names []string, fn read) {
	ctx := context.Background()
	for _, name := range names {
		b.Run("db="+name, func(b *testing.B) {
			c := open(b, name)
			if _, err := fn(c, ctx); err != nil { // warm the pool, statement caches and cache
				b.Fatal(err)
			}
			warm(c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fn(c, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPKRead is workload 1: one eval run by primary key, uncached.
func BenchmarkPKRead(b *testing.B) { benchRead(b, contenderNames, contender.PKRead) }

// BenchmarkPage is workload 2: the first page of 100 results of a run, uncached.
func BenchmarkPage(b *testing.B) { benchRead(b, contenderNames, contender.Page) }

// BenchmarkStudent is workload 3: a student with its 20 performance metrics
// (Prisma's include), uncached for every contender, plus evaldb served from
// its cache (db=evaldb-cached: every read after the first is a hit) and
// through Repo.Views (db=evaldb-view: the same hits, not copied).
func BenchmarkStudent(b *testing.B) {
	benchRead(b, append(contenderNames[:len(contenderNames):len(contenderNames)], "evaldb-cached", "evaldb-view"), contender.Student)
}

// BenchmarkRecordRun is workload 4: recording a run with 10 to 10,000
// results and 5 metrics in one transaction. It reports rows/s (results per
// second). The recorded runs are deleted after each sub-benchmark, outside
// the timing.
func BenchmarkRecordRun(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 100, 1000, 10000} {
		run := recordRun(n)
		b.Run(fmt.Sprintf("results=%d", n), func(b *testing.B) {
			for _, name := range contenderNames {
				b.Run("db="+name, func(b *testing.B) {
					c := open(b, name)
					b.Cleanup(func() { deleteRecorded(b) })
					b.ReportAllocs()
					start := time.Now()
					for b.Loop() {
						if err := c.Record(ctx, run); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
				})
			}
		})
	}
}

// BenchmarkThroughput is workload 5: 64 goroutines share one contender (a
// pool of 10 connections), each doing reads 1 to 3 in turn (read=mix) or
// only primary-key reads (read=pk, pgbench -S's shape). ns/op is wall time
// per read across all goroutines; reads/s is its inverse. Compare with
// pgbench on the same server (run.sh).
func BenchmarkThroughput(b *testing.B) {
	const goroutines = 64
	ctx := context.Background()
	for _, mix := range []struct {
		name string
		fns  []read
	}{
		{"mix", []read{contender.PKRead, contender.Page, contender.Student}},
		{"pk", []read{contender.PKRead}},
	} {
		b.Run("read="+mix.name, func(b *testing.B) {
			for _, name := range append(contenderNames[:len(contenderNames):len(contenderNames)], "evaldb-cached") {
				b.Run("db="+name, func(b *testing.B) {
					c := open(b, name)
					for _, fn := range mix.fns {
						if _, err := fn(c, ctx); err != nil {
							b.Fatal(err)
						}
					}
					warm(c)
					b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					var next atomic.Uint64
					start := time.Now()
					b.RunParallel(func(pb *testing.PB) {
						i := next.Add(1)
						for pb.Next() {
							if _, err := mix.fns[i%uint64(len(mix.fns))](c, ctx); err != nil {
								b.Error(err)
								return
							}
							i++
						}
					})
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
				})
			}
		})
	}
}

// warm waits for a cached contender's cache to hold what was just read.
func warm(c contender) {
	if w, ok := c.(interface{ Wait() }); ok {
		w.Wait()
	}
}

func deleteRecorded(tb testing.TB) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, seed.DeleteRecordedSQL); err != nil {
		tb.Fatal(err)
	}
}

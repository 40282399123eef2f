package repo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
)

// BenchmarkReplicaWrite measures the cost of read-your-writes bookkeeping:
// the same CreateUser on the same primary, without replicas and with one
// (where each write is followed by a read of the primary's WAL position,
// coalesced across concurrent writers). "parallel" runs GOMAXPROCS*4
// writers.
//
//	go test ./repo -run '^$' -bench ReplicaWrite -benchtime=2000x -count=3
func BenchmarkReplicaWrite(b *testing.B) {
	c := startReplicated(b)
	ctx := context.Background()
	var seq atomic.Int64
	for _, withReplica := range []bool{false, true} {
		cfg := &repo.Config{URL: c.url + "&connection_limit=8", Env: repo.Test, DisableCache: true}
		if withReplica {
			cfg.ReplicaURLs = []string{c.replicaURL}
		}
		r, err := repo.Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		q := r.Queries()
		write := func() {
			n := seq.Add(1)
			if _, err := q.CreateUser(ctx, gen.CreateUserParams{Email: fmt.Sprintf("bench-%d@example.com", n), Name: "B"}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("replica=%v/serial", withReplica), func(b *testing.B) {
			for b.Loop() {
				write()
			}
			if st := r.ReplicaStats(); st != nil {
				b.ReportMetric(float64(st.WALFetchTime.Microseconds())/float64(max(st.WALFetches, 1)), "µs/walfetch")
			}
		})
		b.Run(fmt.Sprintf("replica=%v/parallel", withReplica), func(b *testing.B) {
			var before int64
			if st := r.ReplicaStats(); st != nil {
				before = st.WALFetches
			}
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					write()
				}
			})
			if st := r.ReplicaStats(); st != nil {
				b.ReportMetric(float64(st.WALFetches-before)/float64(b.N), "walfetches/write")
			}
		})
		r.Close()
	}
}

package repo

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

// coherenceModes are the modes the coherence benchmarks compare, with the
// helper environment that selects each.
var coherenceModes = []struct {
	name   string
	mode   Coherence
	bound  time.Duration
	direct bool // readers get the direct URL (for their LISTEN)
}{
	{"listen", CoherenceListen, 0, true},
	{"poll-100ms", CoherencePoll, 100 * time.Millisecond, false},
}

func startReaders(b *testing.B, n int, pooled, direct string, mode Coherence, bound time.Duration, listen bool) []*helper {
	b.Helper()
	env := []string{"EVALDB_HELPER_COHERENCE=" + string(mode)}
	if bound > 0 {
		env = append(env, "EVALDB_HELPER_STALENESS="+bound.String())
	}
	d := ""
	if listen {
		d = direct
	}
	hs := make([]*helper, n)
	var wg sync.WaitGroup
	for i := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs[i] = startHelper(b, pooled, d, env...)
			if listen {
				hs[i].do("listen")
			}
		}()
	}
	wg.Wait()
	return hs
}

// BenchmarkCoherenceServerLoad starts 50 instances (processes), each with
// its own pool of 2 through one PgBouncer, and reports, per mode: the
// server connections the database had at most while all were busy serving
// cached reads (server-conns; PgBouncer's pool is dbtest.PgBouncerPoolSize),
// the coherence checks per second all of them made while busy and while
// idle, and the cached reads per second they served.
//
//	go test ./repo -run '^$' -bench CoherenceServerLoad -benchtime=1x
func BenchmarkCoherenceServerLoad(b *testing.B) {
	const instances = 50
	for _, m := range coherenceModes {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			direct := dbtest.URL(b)
			pooled := dbtest.PgBouncerURL(b, direct) + "&pgbouncer=true&connection_limit=2"
			setup, err := Open(ctx, &Config{URL: direct, Env: Test, DisableCache: true})
			if err != nil {
				b.Fatal(err)
			}
			seedStudent(b, setup.Queries(), "S-load")
			setup.Close() // so that the server connections counted are the instances' alone
			hs := startReaders(b, instances, pooled, direct, m.mode, m.bound, m.direct)
			admin, err := pgx.Connect(ctx, dbtest.GetServer(b).AdminURL)
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close(ctx)
			db := strings.TrimPrefix(strings.SplitN(strings.SplitN(direct, "?", 2)[0], "/", 4)[3], "/")
			const busy = 3 * time.Second
			b.ResetTimer()
			for range b.N {
				answers := make([]string, len(hs))
				var wg sync.WaitGroup
				for i, h := range hs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						answers[i] = h.do(fmt.Sprintf("busy S-load %d", busy.Milliseconds()))
					}()
				}
				maxConns := 0
				for start := time.Now(); time.Since(start) < busy-500*time.Millisecond; time.Sleep(50 * time.Millisecond) {
					var n int
					if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", db).Scan(&n); err != nil {
						b.Fatal(err)
					}
					maxConns = max(maxConns, n)
				}
				wg.Wait()
				reads, checks := 0, 0
				for _, a := range answers {
					var r, c int
					if _, err := fmt.Sscanf(a, "%d %d", &r, &c); err != nil {
						b.Fatalf("busy answer %q: %v", a, err)
					}
					reads, checks = reads+r, checks+c
				}
				idleBefore := sumLooks(b, hs)
				time.Sleep(2 * time.Second)
				idle := sumLooks(b, hs) - idleBefore
				b.ReportMetric(float64(maxConns), "server-conns")
				b.ReportMetric(float64(checks)/busy.Seconds(), "busy-checks/s")
				b.ReportMetric(float64(idle)/2, "idle-checks/s")
				b.ReportMetric(float64(reads)/busy.Seconds(), "cached-reads/s")
			}
		})
	}
}

func sumLooks(b *testing.B, hs []*helper) int {
	n := 0
	for _, h := range hs {
		v, err := strconv.Atoi(h.do("looks"))
		if err != nil {
			b.Fatal(err)
		}
		n += v
	}
	return n
}

// BenchmarkCoherenceLatency measures how long after a commit by one
// instance another instance's cached read shows it: b.N plain-SQL inserts
// through PgBouncer, each watched by 4 reader processes that read the
// student every 0.2 ms through their cache. Reported: p50 and p99 from the
// commit's acknowledgement to the first read that saw it, per mode and
// bound.
//
//	go test ./repo -run '^$' -bench CoherenceLatency -benchtime=50x
func BenchmarkCoherenceLatency(b *testing.B) {
	modes := []struct {
		name  string
		mode  Coherence
		bound time.Duration
	}{
		{"listen", CoherenceListen, 0},
		{"poll-10ms", CoherencePoll, 10 * time.Millisecond},
		{"poll-50ms", CoherencePoll, 50 * time.Millisecond},
		{"poll-250ms", CoherencePoll, 250 * time.Millisecond},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			direct := dbtest.URL(b)
			pooled := dbtest.PgBouncerURL(b, direct) + "&pgbouncer=true"
			setup, err := Open(ctx, &Config{URL: direct, Env: Test, DisableCache: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(setup.Close)
			sp := seedStudent(b, setup.Queries(), "S-lat")
			hs := startReaders(b, 4, pooled, direct, m.mode, m.bound, m.mode == CoherenceListen)
			for _, h := range hs {
				h.do("watch S-lat 0") // cache the read
			}
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				answers := make([]string, len(hs))
				var wg sync.WaitGroup
				for j, h := range hs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						answers[j] = h.do(fmt.Sprintf("watch S-lat %d", i+1))
					}()
				}
				time.Sleep(time.Duration(i%7) * time.Millisecond) // commits at varied phases of the bound
				if _, err := setup.DB().Exec(ctx, "INSERT INTO performance_metrics (student_profile_id, name, value) VALUES ($1, 'w', 1)", sp.ID); err != nil {
					b.Fatal(err)
				}
				acked := time.Now()
				wg.Wait()
				for _, a := range answers {
					ns, err := strconv.ParseInt(a, 10, 64)
					if err != nil {
						b.Fatalf("watch answer %q: %v", a, err)
					}
					lat = append(lat, time.Unix(0, ns).Sub(acked))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkCoherenceWriterCost measures what the coherence triggers cost
// writers: 16 goroutines on a pool of 16 (direct), each recording runs of
// 1,000 results (RecordEvalRun) or single-row writes (RecordPerformanceMetric),
// with the notification triggers dropped (none), with the NOTIFY-only
// function of migration 00003 (notify), and with NOTIFY plus the sharded
// change counters that both modes share (counters), and with the counters
// alone (counters-only: evaldb.notify = 'off', for a deployment whose every
// instance polls).
//
//	go test ./repo -run '^$' -bench CoherenceWriterCost -benchtime=2000x
func BenchmarkCoherenceWriterCost(b *testing.B) {
	const writers = 16
	for _, variant := range []string{"none", "notify", "counters", "counters-only"} {
		for _, work := range []string{"record1000", "single"} {
			b.Run(variant+"/"+work, func(b *testing.B) {
				ctx := context.Background()
				url := dbtest.URL(b)
				if variant == "counters-only" {
					admin, err := pgx.Connect(ctx, url)
					if err != nil {
						b.Fatal(err)
					}
					_, err = admin.Exec(ctx, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET evaldb.notify = off', current_database()); END $$")
					admin.Close(ctx)
					if err != nil {
						b.Fatal(err)
					}
				}
				r, err := Open(ctx, &Config{URL: url + "&connection_limit=16", Env: Test, DisableCache: true})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(r.Close)
				setTriggers(b, r, variant)
				sp := seedStudent(b, r.Queries(), "S-w")
				run := txn.Run{Name: "w", Model: "m", Dataset: "bench-writers"}
				for i := range 1000 {
					run.Results = append(run.Results, txn.Result{CaseID: fmt.Sprintf("c%04d", i), Input: "q", Expected: "a", Output: "a", Passed: true, LatencyMs: 10})
				}
				n := b.N
				if work == "record1000" {
					n = max(writers, b.N/50) // a run is 1,000 rows: fewer of them
				}
				var next sync.Mutex
				left := n
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							next.Lock()
							if left == 0 {
								next.Unlock()
								return
							}
							left--
							next.Unlock()
							var err error
							if work == "single" {
								_, err = r.Queries().RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{StudentProfileID: sp.ID, Name: "m", Value: 1, RecordedAt: time.Now()})
							} else {
								_, err = r.RecordEvalRun(ctx, run, nil)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "ops/s")
			})
		}
	}
}

// setTriggers puts the notification triggers of r's database in the state
// a BenchmarkCoherenceWriterCost variant names.
func setTriggers(b *testing.B, r *Repo, variant string) {
	b.Helper()
	ctx := context.Background()
	switch variant {
	case "none":
		rows, err := r.DB().Query(ctx, "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE '%_notify_invalidate'")
		if err != nil {
			b.Fatal(err)
		}
		var stmts []string
		var name, table string
		if _, err := pgx.ForEachRow(rows, []any{&name, &table}, func() error {
			stmts = append(stmts, fmt.Sprintf("DROP TRIGGER %s ON %s", pgx.Identifier{name}.Sanitize(), table))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if len(stmts) == 0 {
			b.Fatal("no notification triggers to drop")
		}
		for _, s := range stmts {
			if _, err := r.DB().Exec(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	case "notify":
		if _, err := r.DB().Exec(ctx, `CREATE OR REPLACE FUNCTION evaldb_notify_invalidate() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('evaldb_invalidate', TG_TABLE_NAME); RETURN NULL; END; $$`); err != nil {
			b.Fatal(err)
		}
	}
}

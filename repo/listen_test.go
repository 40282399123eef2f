package repo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// helperMain is the body of a helper process: it opens a Repo on
// EVALDB_HELPER_URL (DirectURL EVALDB_HELPER_DIRECT), says "ready", then
// answers one line per command read from stdin:
//
//	hold N           keep N connections busy with short queries; "ok" once all are open
//	release          stop them; "ok"
//	queries          how many queries the holders ran
//	listen           "ok" once the cache invalidation listener is listening
//	metrics S        the number of metrics of student S, read through the cache
//	hits             GetStudentWithMetrics cache hits so far
//	notified N       "ok" once the listener has applied N notifications
//	nextinv          the wall-clock time (Unix ns) at which the listener next
//	                 applied a performance_metrics notification
//	busy S MS        read student S's metrics through the cache in a loop for
//	                 MS milliseconds; "<reads> <coherence checks>" (the
//	                 Poller's looks during the loop; 0 without a Poller)
//	looks            the Poller's looks so far (0 without a Poller)
//	watch S N        read student S's metrics every 0.2 ms until there are
//	                 N; the Unix ns of the read that first saw them
//	readloop S MS    read student S's metrics through the cache about once a
//	                 millisecond for MS milliseconds; one line of
//	                 "start,end,count" triples (Unix ns), space-separated
//
// EVALDB_HELPER_COHERENCE and EVALDB_HELPER_STALENESS set Config.Coherence
// and Config.MaxStaleness.
func helperMain() int {
	ctx := context.Background()
	invs := make(chan int64, 4096)
	listenHook = func(table string) {
		if table == "performance_metrics" {
			invs <- time.Now().UnixNano()
		}
	}
	staleness, _ := time.ParseDuration(os.Getenv("EVALDB_HELPER_STALENESS"))
	r, err := Open(ctx, &Config{URL: os.Getenv("EVALDB_HELPER_URL"), DirectURL: os.Getenv("EVALDB_HELPER_DIRECT"), Env: Test,
		Coherence: Coherence(os.Getenv("EVALDB_HELPER_COHERENCE")), MaxStaleness: staleness})
	if err != nil {
		fmt.Printf("> error open: %v\n", err)
		return 1
	}
	defer r.Close()
	fmt.Println("> ready")

	var (
		stop    chan struct{}
		wg      sync.WaitGroup
		queries atomic.Int64
	)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		n, _ := strconv.Atoi(arg)
		answer := func() string {
			switch cmd {
			case "hold":
				stop = make(chan struct{})
				var started sync.WaitGroup
				for range n {
					started.Add(1)
					wg.Add(1)
					go func() {
						defer wg.Done()
						first := true
						for {
							if _, err := r.DB().Exec(ctx, "SELECT pg_sleep(0.02)"); err != nil {
								fmt.Printf("> error hold: %v\n", err)
								os.Exit(1)
							}
							queries.Add(1)
							if first {
								started.Done()
								first = false
							}
							select {
							case <-stop:
								return
							default:
							}
						}
					}()
				}
				started.Wait()
				for r.PoolStats().TotalConns < int32(n) {
					time.Sleep(10 * time.Millisecond)
				}
				return "ok"
			case "release":
				close(stop)
				wg.Wait()
				return "ok"
			case "queries":
				return strconv.FormatInt(queries.Load(), 10)
			case "listen":
				if r.Listener() == nil {
					return "error no listener"
				}
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := r.Listener().WaitListening(wctx); err != nil {
					return "error " + err.Error()
				}
				return "ok"
			case "metrics":
				s, err := r.Queries().GetStudentWithMetrics(ctx, arg)
				if err != nil {
					return "error " + err.Error()
				}
				return strconv.Itoa(len(s.MetricValues))
			case "hits":
				r.Cache().Wait()
				return strconv.FormatUint(r.Cache().Stats().Queries["GetStudentWithMetrics"].Hits, 10)
			case "notified":
				deadline := time.Now().Add(30 * time.Second)
				for r.Listener().Stats().Notifications < uint64(n) {
					if time.Now().After(deadline) {
						return fmt.Sprintf("error only %d notifications after 30s", r.Listener().Stats().Notifications)
					}
					time.Sleep(time.Millisecond)
				}
				return "ok"
			case "busy":
				student, ms, _ := strings.Cut(arg, " ")
				d, _ := strconv.Atoi(ms)
				before, reads := pollerLooks(r), 0
				for end := time.Now().Add(time.Duration(d) * time.Millisecond); time.Now().Before(end); reads++ {
					if _, err := r.Queries().GetStudentWithMetrics(ctx, student); err != nil {
						return "error " + err.Error()
					}
				}
				return fmt.Sprintf("%d %d", reads, pollerLooks(r)-before)
			case "looks":
				return strconv.FormatUint(pollerLooks(r), 10)
			case "watch":
				student, want, _ := strings.Cut(arg, " ")
				n, _ := strconv.Atoi(want)
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
					s, err := r.Queries().GetStudentWithMetrics(ctx, student)
					if err != nil {
						return "error " + err.Error()
					}
					if len(s.MetricValues) >= n {
						return strconv.FormatInt(time.Now().UnixNano(), 10)
					}
					time.Sleep(200 * time.Microsecond)
				}
				return "error the write was not seen within 30s"
			case "writeloop":
				// writeloop SP MS SEED: TestCoherenceRandomized's writes, with
				// plain SQL on EVALDB_HELPER_WRITE_URL; the commits it made as
				// "started,acked" pairs (Unix ns).
				f := strings.Fields(arg)
				if len(f) != 3 {
					return "error writeloop SP MS SEED"
				}
				sp, _ := strconv.ParseInt(f[0], 10, 64)
				ms, _ := strconv.Atoi(f[1])
				seed, _ := strconv.ParseInt(f[2], 10, 64)
				cfg, err := pgx.ParseConfig(os.Getenv("EVALDB_HELPER_WRITE_URL"))
				if err != nil {
					return "error " + err.Error()
				}
				cfg.DefaultQueryExecMode = pgx.QueryExecModeExec // no prepared statements through PgBouncer
				var log commitLog
				if err := write(ctx, cfg, sp, seed, time.Duration(ms)*time.Millisecond, &log); err != nil {
					return "error " + err.Error()
				}
				var b strings.Builder
				for i := range log.acked {
					fmt.Fprintf(&b, "%d,%d ", log.started[i], log.acked[i])
				}
				return strings.TrimSpace(b.String())
			case "readloop":
				student, ms, _ := strings.Cut(arg, " ")
				d, _ := strconv.Atoi(ms)
				var b strings.Builder
				for end := time.Now().Add(time.Duration(d) * time.Millisecond); time.Now().Before(end); {
					start := time.Now()
					s, err := r.Queries().GetStudentWithMetrics(ctx, student)
					if err != nil {
						return "error " + err.Error()
					}
					fmt.Fprintf(&b, "%d,%d,%d ", start.UnixNano(), time.Now().UnixNano(), len(s.MetricValues))
					time.Sleep(time.Millisecond)
				}
				return strings.TrimSpace(b.String())
			case "nextinv":
				select {
				case ns := <-invs:
					return strconv.FormatInt(ns, 10)
				case <-time.After(30 * time.Second):
					return "error no invalidation within 30s"
				}
			}
			return "error unknown command " + cmd
		}()
		fmt.Println("> " + answer)
	}
	return 0
}

func pollerLooks(r *Repo) uint64 {
	if r.Poller() == nil {
		return 0
	}
	return r.Poller().Stats().Looks
}

// seedStudent creates a user with student profile studentID.
func seedStudent(t testing.TB, q gen.Querier, studentID string) gen.StudentProfile {
	t.Helper()
	ctx := context.Background()
	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: studentID + "@example.com", Name: studentID})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := q.CreateStudentProfile(ctx, gen.CreateStudentProfileParams{UserID: u.ID, StudentID: studentID})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestListenAcrossProcesses runs a second instance in another process,
// both through PgBouncer with their listeners on the direct URL: a write
// through this instance invalidates the other's cached read, and so does a
// write by plain SQL from a connection of its own (as psql would make).
func TestListenAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pooled, direct := bouncedURLs(t, "")
	r := open(t, &Config{URL: pooled, DirectURL: direct, Env: Test})
	sp := seedStudent(t, r.Queries(), "S-1")
	other := startHelper(t, pooled, direct)
	if got := other.do("listen"); got != "ok" {
		t.Fatal(got)
	}
	read := func(want string) {
		t.Helper()
		if got := other.do("metrics S-1"); got != want {
			t.Fatalf("other instance: GetStudentWithMetrics has %s metrics, want %s", got, want)
		}
	}
	// Cache the read in the other instance, and check it is served from
	// the cache (so that what follows tests invalidation).
	read("0")
	hits := other.do("hits")
	read("0")
	if got := other.do("hits"); got == hits {
		t.Fatalf("other instance: second read was not a cache hit (hits stayed %s)", got)
	}

	// A write through this instance.
	if _, err := r.Queries().RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{
		StudentProfileID: sp.ID, Name: "score", Value: 1, RecordedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := other.do("notified 1"); got != "ok" {
		t.Fatal(got)
	}
	read("1")

	// A write by plain SQL, not through evaldb.
	conn, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO performance_metrics (student_profile_id, name, value) VALUES ($1, 'psql', 2)", sp.ID); err != nil {
		t.Fatal(err)
	}
	if got := other.do("notified 2"); got != "ok" {
		t.Fatal(got)
	}
	read("2")
}

// BenchmarkCrossInstanceInvalidation measures how long after one instance's
// write another instance (a separate process) has invalidated its cache:
// b.N sequential RecordPerformanceMetric calls (autocommit, so the
// statement's return is its COMMIT's), each waiting for the other process
// to report the wall-clock time its listener applied the notification.
// Reported: p50/p99 from the write's return (commit acknowledged) and from
// the moment it was sent, in µs. Both processes go through PgBouncer; the
// listener uses the direct URL.
//
//	go test ./repo -run '^$' -bench CrossInstanceInvalidation -benchtime=200x
func BenchmarkCrossInstanceInvalidation(b *testing.B) {
	ctx := context.Background()
	direct := dbtest.URL(b)
	pooled := dbtest.PgBouncerURL(b, direct) + "&pgbouncer=true"
	r, err := Open(ctx, &Config{URL: pooled, DirectURL: direct, Env: Test, DisableListen: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	sp := seedStudent(b, r.Queries(), "S-bench")
	other := startHelper(b, pooled, direct)
	if got := other.do("listen"); got != "ok" {
		b.Fatal(got)
	}
	fromSent := make([]time.Duration, 0, b.N)
	fromCommit := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		sent := time.Now()
		if _, err := r.Queries().RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{
			StudentProfileID: sp.ID, Name: "m", Value: float64(i), RecordedAt: sent}); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		ns, err := strconv.ParseInt(other.do("nextinv"), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		inv := time.Unix(0, ns)
		fromSent = append(fromSent, inv.Sub(sent))
		fromCommit = append(fromCommit, inv.Sub(committed))
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds())
	}
	b.ReportMetric(pct(fromCommit, 0.50), "p50-after-commit-µs")
	b.ReportMetric(pct(fromCommit, 0.99), "p99-after-commit-µs")
	b.ReportMetric(pct(fromSent, 0.50), "p50-after-send-µs")
	b.ReportMetric(pct(fromSent, 0.99), "p99-after-send-µs")
}

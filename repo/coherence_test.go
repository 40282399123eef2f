package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/txn"
)

func TestResolveCoherence(t *testing.T) {
	direct := "postgres://app:pw@db.internal:5432/evaldb"
	bounced := "postgres://app:pw@bouncer:6432/evaldb?pgbouncer=true"
	for _, tc := range []struct {
		name string
		cfg  Config
		want Coherence
		why  string // a part of the reason
	}{
		{"direct URL", Config{URL: direct}, CoherenceListen, "direct URL"},
		{"PgBouncer alone", Config{URL: bounced}, CoherencePoll, "no direct URL"},
		{"PgBouncer, DirectURL the same", Config{URL: bounced, DirectURL: bounced}, CoherencePoll, "no direct URL"},
		{"PgBouncer with a direct URL", Config{URL: bounced, DirectURL: direct}, CoherenceListen, "long-running"},
		{"PgBouncer with a direct URL, serverless", Config{URL: bounced, DirectURL: direct, Serverless: true}, CoherencePoll, "serverless"},
		{"explicit ttl", Config{URL: direct, Coherence: CoherenceTTL}, CoherenceTTL, "Config.Coherence"},
		{"explicit poll on a direct URL", Config{URL: direct, Coherence: CoherencePoll}, CoherencePoll, "Config.Coherence"},
		{"DisableListen", Config{URL: direct, DisableListen: true}, CoherenceTTL, "DisableListen"},
		{"cache off", Config{URL: bounced, DisableCache: true}, CoherenceTTL, "cache is off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why, err := ResolveCoherence(&tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("ResolveCoherence = %q (%s), want %q with a reason naming %q", got, why, tc.want, tc.why)
			}
			if strings.Contains(why, "pw") {
				t.Errorf("reason %q holds the password", why)
			}
		})
	}
}

func TestConfigFromLookupCoherence(t *testing.T) {
	env := map[string]string{EnvDatabaseURL: "postgres://h/db", EnvCacheCoherence: "poll", EnvCacheMaxStaleness: "250ms", "VERCEL": "1"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := ConfigFromLookup(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Coherence != CoherencePoll || cfg.MaxStaleness != 250*time.Millisecond || !cfg.Serverless {
		t.Errorf("Config = Coherence %q, MaxStaleness %s, Serverless %v; want poll, 250ms, true", cfg.Coherence, cfg.MaxStaleness, cfg.Serverless)
	}
	for k, v := range map[string]string{EnvCacheCoherence: "notify", EnvCacheMaxStaleness: "0s"} {
		bad := map[string]string{EnvDatabaseURL: "postgres://h/db", k: v}
		if _, err := ConfigFromLookup(func(k string) (string, bool) { v, ok := bad[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: err = %v, want an error naming %s", k, v, err, k)
		}
	}
}

// pollRepo opens a Repo in CoherencePoll mode on url whose Poller counts
// its looks, and returns it with a reader of its student's metric count.
func pollRepo(t *testing.T, url string, bound time.Duration) *Repo {
	t.Helper()
	return open(t, &Config{URL: url, Env: Test, Coherence: CoherencePoll, MaxStaleness: bound})
}

// TestPollCoherence checks the session-free mode against what another
// writer does with plain SQL on its own connection: once the bound has
// passed, a committed write is seen; a rolled-back one changes nothing; a
// write still uncommitted is not seen, and the read that cached the old
// rows meanwhile does not outlive its commit.
func TestPollCoherence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	const bound = 20 * time.Millisecond
	r := pollRepo(t, url, bound)
	sp := seedStudent(t, r.Queries(), "S-poll")
	count := func() int {
		t.Helper()
		s, err := r.Queries().GetStudentWithMetrics(ctx, "S-poll")
		if err != nil {
			t.Fatal(err)
		}
		return len(s.MetricValues)
	}
	afterBound := func() { time.Sleep(bound + 5*time.Millisecond) }
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	insert := "INSERT INTO performance_metrics (student_profile_id, name, value) VALUES ($1, 'm', 1)"

	if got := count(); got != 0 {
		t.Fatalf("metrics = %d, want 0", got)
	}
	r.Cache().Wait()
	hits := r.Cache().Stats().Hits
	if got := count(); got != 0 || r.Cache().Stats().Hits == hits {
		t.Fatalf("second read: %d metrics, hits %d → %d; want a cache hit of 0", got, hits, r.Cache().Stats().Hits)
	}

	// Committed elsewhere: seen once the bound has passed.
	if _, err := other.Exec(ctx, insert, sp.ID); err != nil {
		t.Fatal(err)
	}
	afterBound()
	if got := count(); got != 1 {
		t.Fatalf("after a committed write and the bound: %d metrics, want 1", got)
	}

	// Rolled back: nothing changes, and nothing is invalidated.
	invs := r.Poller().Stats().Invalidations
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, insert, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	afterBound()
	if got := count(); got != 1 {
		t.Fatalf("after a rolled-back write: %d metrics, want 1", got)
	}
	if got := r.Poller().Stats().Invalidations; got != invs {
		t.Errorf("a rolled-back write invalidated %d tables, want none", got-invs)
	}

	// Uncommitted: not seen, and the read cached meanwhile (of the old
	// rows) is dropped once the write commits.
	tx, err = other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, insert, sp.ID); err != nil {
		t.Fatal(err)
	}
	afterBound()
	if got := count(); got != 1 {
		t.Fatalf("during an uncommitted write: %d metrics, want 1", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	afterBound()
	if got := count(); got != 2 {
		t.Fatalf("after the write committed and the bound: %d metrics, want 2", got)
	}
	if s := r.Poller().Stats(); s.Looks == 0 || s.Failures != 0 {
		t.Errorf("Poller stats %+v, want looks and no failures", s)
	}
}

// TestChangeCountersDoNotSerializeWriters checks that two transactions on
// different server connections can both write one table and stay open:
// each increments its own shard of the table's change counter. With one
// counter row per table, the second would wait for the first's row lock.
func TestChangeCountersDoNotSerializeWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	r := pollRepo(t, url, time.Second)
	sp := seedStudent(t, r.Queries(), "S-shard")
	// Two connections on different shards (pids differ modulo the shards).
	var conns []*pgx.Conn
	shards := map[uint32]bool{}
	for len(conns) < 2 {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if s := c.PgConn().PID() % cachewrap.ChangeShards; !shards[s] {
			shards[s] = true
			conns = append(conns, c)
		}
	}
	var txs []pgx.Tx
	for i, c := range conns {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '2s'"); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "INSERT INTO performance_metrics (student_profile_id, name, value) VALUES ($1, 'm', $2)", sp.ID, i)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
			t.Fatalf("writer %d waited for another open transaction's lock: the change counters serialize writers", i)
		}
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	var before int64
	if err := r.DB().QueryRow(ctx, "SELECT coalesce(sum(version), 0)::int8 FROM evaldb_changes WHERE table_name = 'performance_metrics'").Scan(&before); err != nil {
		t.Fatal(err)
	}
	for _, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var after int64
	if err := r.DB().QueryRow(ctx, "SELECT sum(version)::int8 FROM evaldb_changes WHERE table_name = 'performance_metrics'").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after-before != 2 {
		t.Errorf("the counter of performance_metrics rose by %d over two committed statements, want 2 (uncommitted increments must not show)", after-before)
	}
}

// commitLog is the history of one student's committed metrics, as the
// writers of TestCoherenceRandomized saw it.
type commitLog struct {
	mu      sync.Mutex
	started []int64 // Unix ns before each COMMIT (or autocommit statement) was sent
	acked   []int64 // Unix ns after each returned
}

func (l *commitLog) add(started, acked time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started = append(l.started, started.UnixNano())
	l.acked = append(l.acked, acked.UnixNano())
}

// bounds returns how many commits had surely happened by ns (acked) and
// how many may have (started).
func (l *commitLog) bounds(ackedBy, startedBy int64) (low, high int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.acked {
		if l.acked[i] < ackedBy {
			low++
		}
		if l.started[i] < startedBy {
			high++
		}
	}
	return low, high
}

// TestCoherenceRandomized runs three reader processes, each with its own
// Repo through one PgBouncer, while two writer processes change the
// student they read with plain SQL through the same PgBouncer (autocommit
// inserts, transactions committed after being left open for up to 150 ms,
// and transactions rolled back) and this process writes through its own
// Repo (autocommit, and transactions rolled back). Every read must count at least the metrics
// committed (acknowledged) more than the mode's bound before it started, and
// at most those whose COMMIT had been sent by the time it returned. In TTL
// mode the same check must find stale reads, which shows that it can.
func TestCoherenceRandomized(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode  Coherence
		bound time.Duration // how much older than the latest commits a read may be
	}{
		// LISTEN has no hard bound: a notification takes about a
		// millisecond (BENCHMARKS.md); 500 ms covers a loaded test machine.
		{CoherenceListen, 500 * time.Millisecond},
		{CoherencePoll, 50 * time.Millisecond},
		{CoherenceTTL, 50 * time.Millisecond},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pooled, direct := bouncedURLs(t, "")
			setup := open(t, &Config{URL: direct, Env: Test, DisableCache: true})
			sp := seedStudent(t, setup.Queries(), "S-rand")
			readerDirect := ""
			if tc.mode == CoherenceListen {
				readerDirect = direct
			}
			var readers []*helper
			for range 3 {
				h := startHelper(t, pooled, readerDirect,
					"EVALDB_HELPER_COHERENCE="+string(tc.mode), "EVALDB_HELPER_STALENESS="+tc.bound.String())
				if tc.mode == CoherenceListen {
					if got := h.do("listen"); got != "ok" {
						t.Fatal(got)
					}
				}
				readers = append(readers, h)
			}
			var writers []*helper
			for range 2 {
				writers = append(writers, startHelper(t, pooled, "", "EVALDB_HELPER_COHERENCE=ttl",
					"EVALDB_HELPER_WRITE_URL="+dbtest.PgBouncerURL(t, direct)))
			}
			own := open(t, &Config{URL: pooled, Env: Test, Coherence: CoherenceTTL})
			const runFor = 2500 * time.Millisecond
			var log commitLog
			var wg sync.WaitGroup
			writerErr := make(chan error, 1)
			writerLogs := make([]string, len(writers))
			for w, h := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					writerLogs[w] = h.do(fmt.Sprintf("writeloop %d %d %d", sp.ID, runFor.Milliseconds(), w))
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				writerErr <- writeThroughRepo(ctx, own, sp.ID, runFor, &log)
			}()
			answers := make([]string, len(readers))
			var rg sync.WaitGroup
			for i, h := range readers {
				rg.Add(1)
				go func() {
					defer rg.Done()
					answers[i] = h.do(fmt.Sprintf("readloop S-rand %d", runFor.Milliseconds()))
				}()
			}
			rg.Wait()
			wg.Wait()
			close(writerErr)
			for err := range writerErr {
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, wl := range writerLogs {
				for _, f := range strings.Fields(wl) {
					var started, acked int64
					if _, err := fmt.Sscanf(f, "%d,%d", &started, &acked); err != nil {
						t.Fatalf("writer answer %q: %v", f, err)
					}
					log.add(time.Unix(0, started), time.Unix(0, acked))
				}
			}
			slack := int64(2 * time.Millisecond) // the reader's clock read precedes the cache's own
			reads, stale, phantom := 0, 0, 0
			var example string
			for _, a := range answers {
				for _, f := range strings.Fields(a) {
					var start, end int64
					var n int
					if _, err := fmt.Sscanf(f, "%d,%d,%d", &start, &end, &n); err != nil {
						t.Fatalf("reader answer %q: %v", f, err)
					}
					reads++
					low, high := log.bounds(start-int64(tc.bound)-slack, end)
					if n < low {
						stale++
						if example == "" {
							example = fmt.Sprintf("a read at +%s saw %d metrics; %d had committed more than %s before", time.Duration(start-log.acked[0]), n, low, tc.bound)
						}
					}
					if n > high {
						phantom++
					}
				}
			}
			t.Logf("%s: %d reads, %d commits, %d stale, %d phantom", tc.mode, reads, len(log.acked), stale, phantom)
			if reads < 100 || len(log.acked) < 20 {
				t.Fatalf("only %d reads and %d commits: the test did not exercise anything", reads, len(log.acked))
			}
			if phantom > 0 {
				t.Errorf("%d reads saw metrics that were not committed yet", phantom)
			}
			switch {
			case tc.mode == CoherenceTTL && stale == 0:
				t.Errorf("TTL mode: no stale read found; the check cannot tell coherence from its absence")
			case tc.mode != CoherenceTTL && stale > 0:
				t.Errorf("%d of %d reads were older than the bound allows; for example %s", stale, reads, example)
			}
		})
	}
}

// writeThroughRepo changes student sp's metrics through r until runFor has
// passed: autocommit writes, logged, and transactions rolled back.
func writeThroughRepo(ctx context.Context, r *Repo, sp int64, runFor time.Duration, log *commitLog) error {
	rng := rand.New(rand.NewPCG(99, 17))
	errRollback := errors.New("roll back")
	for end := time.Now().Add(runFor); time.Now().Before(end); {
		if rng.IntN(4) == 0 {
			err := r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
				if _, err := tx.RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{StudentProfileID: sp, Name: "r", Value: 1, RecordedAt: time.Now()}); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				return fmt.Errorf("rolled-back transaction: %v", err)
			}
		} else {
			started := time.Now()
			if _, err := r.Queries().RecordPerformanceMetric(ctx, gen.RecordPerformanceMetricParams{StudentProfileID: sp, Name: "r", Value: 1, RecordedAt: started}); err != nil {
				return err
			}
			log.add(started, time.Now())
		}
		time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
	}
	return nil
}

// write changes student sp's metrics with plain SQL on its own connection
// until runFor has passed, logging each commit.
func write(ctx context.Context, cfg *pgx.ConnConfig, sp, seed int64, runFor time.Duration, log *commitLog) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	insert := "INSERT INTO performance_metrics (student_profile_id, name, value) VALUES ($1, 'w', 1)"
	for end := time.Now().Add(runFor); time.Now().Before(end); {
		switch p := rng.IntN(10); {
		case p < 4: // autocommit
			started := time.Now()
			if _, err := conn.Exec(ctx, insert, sp); err != nil {
				return err
			}
			log.add(started, time.Now())
		default: // a transaction, left open a while, then committed or rolled back
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, insert, sp); err != nil {
				return err
			}
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
			if p < 6 {
				if err := tx.Rollback(ctx); err != nil {
					return err
				}
				break
			}
			started := time.Now()
			if err := tx.Commit(ctx); err != nil {
				return err
			}
			log.add(started, time.Now())
		}
		time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
	}
	return nil
}

// TestNotifyOffPolls checks that a database with evaldb.notify = 'off'
// sends no notifications but still counts changes, and that Open polls
// there instead of listening for what never comes (and refuses an explicit
// listen).
func TestNotifyOffPolls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET evaldb.notify = 'off'"); err != nil {
		t.Fatal(err)
	}
	r := open(t, &Config{URL: url, Env: Test})
	if mode, why := r.Coherence(); mode != CoherencePoll || !strings.Contains(why, "evaldb.notify") {
		t.Errorf("Coherence() = %q (%s), want poll because of evaldb.notify", mode, why)
	}
	if _, err := Open(ctx, &Config{URL: url, Env: Test, Coherence: CoherenceListen}); err == nil || !strings.Contains(err.Error(), "evaldb.notify") {
		t.Errorf("Open with Coherence listen: err = %v, want a refusal naming evaldb.notify", err)
	}
	// A write notifies nobody, but moves the counter.
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+cachewrap.DefaultChannel); err != nil {
		t.Fatal(err)
	}
	seedStudent(t, r.Queries(), "S-off")
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if n, err := listener.WaitForNotification(wctx); err == nil {
		t.Errorf("got notification %+v with evaldb.notify = 'off'", n)
	}
	var users int64
	if err := r.DB().QueryRow(ctx, "SELECT coalesce(sum(version), 0)::int8 FROM evaldb_changes WHERE table_name = 'users'").Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users == 0 {
		t.Error("the users counter did not move")
	}
}

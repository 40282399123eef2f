package repo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/schema"
	"github.com/aah/evaldb/txn"
)

// replicated is a private primary with a streaming replica (the shared
// dbtest server is never touched: these tests pause and stop the replica).
type replicated struct {
	primary, replica *pgcluster.Cluster
	url, replicaURL  string
	admin, standby   *pgx.Conn  // superuser sessions on each server
	t                testing.TB // the test that owns the pair (cleanups)
}

func startReplicated(t testing.TB) *replicated {
	t.Helper()
	ctx := context.Background()
	p, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatalf("pgcluster.Start() error = %v", err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	c := &replicated{primary: p, url: p.URL("postgres"), t: t}
	if _, err := schema.Migrate(ctx, c.url); err != nil {
		t.Fatalf("schema.Migrate() error = %v", err)
	}
	if c.replica, err = p.StartReplica(ctx); err != nil {
		t.Fatalf("StartReplica() error = %v", err)
	}
	t.Cleanup(func() { _ = c.replica.Stop() })
	c.replicaURL = c.replica.URL("postgres")
	if c.admin, err = pgx.Connect(ctx, c.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.admin.Close(context.Background()) })
	c.connectStandby(t)
	return c
}

// connectStandby (re)connects the superuser session on the replica; it
// lives until the pair's test ends.
func (c *replicated) connectStandby(t testing.TB) {
	t.Helper()
	var err error
	if c.standby, err = pgx.Connect(context.Background(), c.replicaURL); err != nil {
		t.Fatal(err)
	}
	conn := c.standby
	c.t.Cleanup(func() { _ = conn.Close(context.Background()) })
}

func (c *replicated) exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pause stops WAL replay on the replica (it keeps receiving), so that
// anything written afterwards exists only on the primary.
func (c *replicated) pause(t *testing.T) {
	t.Helper()
	c.exec(t, c.standby, "SELECT pg_wal_replay_pause()")
	t.Cleanup(func() { _, _ = c.standby.Exec(context.Background(), "SELECT pg_wal_replay_resume()") })
}

func (c *replicated) resume(t *testing.T) {
	t.Helper()
	c.exec(t, c.standby, "SELECT pg_wal_replay_resume()")
}

// caughtUp waits (bounded) until the replica has replayed everything the
// primary has written so far.
func (c *replicated) caughtUp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var lsn string
	if err := c.admin.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "replica replays "+lsn, func() bool {
		var ok bool
		err := c.standby.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok)
		return err == nil && ok
	})
}

// eventually polls cond until it holds, failing the test after limit
// (a bound on a broken build, not a timing assertion).
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openReplicated(t *testing.T, c *replicated, cfg repo.Config) *repo.Repo {
	t.Helper()
	cfg.URL = c.url
	cfg.ReplicaURLs = []string{c.replicaURL}
	cfg.Env = repo.Test
	r, err := repo.Open(context.Background(), &cfg)
	if err != nil {
		t.Fatalf("repo.Open() error = %v", err)
	}
	t.Cleanup(r.Close)
	eventually(t, 30*time.Second, "the replica is healthy", func() bool { return r.ReplicaStats().Replicas[0].Healthy })
	return r
}

// replicaReads is how many reads the replica served so far.
func replicaReads(r *repo.Repo) int64 { return r.ReplicaStats().Replicas[0].Reads }

// TestReplicas runs against one private primary+replica pair, so its
// subtests run one after the other (they pause and stop the replica).
func TestReplicas(t *testing.T) {
	t.Parallel()
	c := startReplicated(t)
	ctx := context.Background()
	long := &repo.ReplicaOptions{MaxLag: time.Hour} // replay is paused on purpose below

	t.Run("ReadsGoToReplica", func(t *testing.T) {
		r := openReplicated(t, c, repo.Config{DisableCache: true, Replicas: long})
		q := r.Queries()
		// Written behind the Repo's back while replay is paused: only the
		// primary has it, so a read that finds nothing ran on the replica.
		c.pause(t)
		c.exec(t, c.admin, "INSERT INTO users (email, name) VALUES ('routing@example.com', 'Routing')")
		before := replicaReads(r)
		if _, err := q.GetUserByEmail(ctx, "routing@example.com"); !errors.Is(err, repo.ErrNotFound) {
			t.Fatalf("GetUserByEmail() on a paused replica: error = %v, want ErrNotFound (the read went to the primary)", err)
		}
		if got := replicaReads(r) - before; got != 1 {
			t.Errorf("replica reads = %d, want 1", got)
		}
		c.resume(t)
		c.caughtUp(t)
		u, err := q.GetUserByEmail(ctx, "routing@example.com")
		if err != nil {
			t.Fatalf("GetUserByEmail() after replay: %v", err)
		}
		if u.Name != "Routing" {
			t.Errorf("GetUserByEmail().Name = %q, want Routing", u.Name)
		}
		// Not read-only: stays on the primary (pg_stat_activity of the primary
		// sees the Repo's own pool connections).
		st, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Replicas == nil || st.Replicas.ReplicaReads != replicaReads(r) {
			t.Errorf("Stats().Replicas = %+v, want the replica figures", st.Replicas)
		}
	})

	// Another process's write, relayed by the cache listener, must not let
	// the refilling read come from a replica that has not replayed it: the
	// invalidation records the primary's WAL position first.
	t.Run("OtherProcessWriteWhileReplicaPaused", func(t *testing.T) {
		r := openReplicated(t, c, repo.Config{Replicas: long})
		if err := r.Listener().WaitListening(ctx); err != nil {
			t.Fatal(err)
		}
		email := "other-" + uuid.NewString()[:8] + "@example.com"
		c.exec(t, c.admin, "INSERT INTO users (email, name) VALUES ($1, 'Before')", email)
		c.resume(t)
		c.caughtUp(t)
		eventually(t, 30*time.Second, "the Repo sees the replica caught up", func() bool {
			rs := r.ReplicaStats()
			return lsnAtLeast(rs.Replicas[0].ReplayLSN, rs.NeedLSN)
		})
		q := r.Queries()
		if u, err := q.GetUserByEmail(ctx, email); err != nil || u.Name != "Before" {
			t.Fatalf("GetUserByEmail() = %+v, %v; want Before", u, err)
		}
		r.Cache().Wait()
		c.pause(t)
		seen := r.Listener().Stats().Notifications
		c.exec(t, c.admin, "UPDATE users SET name = 'After' WHERE email = $1", email)
		eventually(t, 30*time.Second, "the listener relays the update", func() bool {
			return r.Listener().Stats().Notifications > seen
		})
		u, err := q.GetUserByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "After" {
			t.Errorf("GetUserByEmail().Name after another process's update = %q, want After (refilled from the paused replica)", u.Name)
		}
		c.resume(t)
	})

	t.Run("ReadYourWritesWhileReplicaPaused", func(t *testing.T) {
		for _, cached := range []bool{false, true} {
			t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) {
				r := openReplicated(t, c, repo.Config{DisableCache: !cached, Replicas: long})
				q := r.Queries()
				tag := uuid.NewString()[:8]

				// Each write starts from a replica that has replayed all of the
				// Repo's earlier writes (so only this write can send the read to
				// the primary) and whose replay is then paused: the write exists
				// only on the primary, and the read right after it must find it.
				fresh := func(t *testing.T) {
					t.Helper()
					c.resume(t)
					c.caughtUp(t)
					eventually(t, 30*time.Second, "the Repo sees the replica caught up", func() bool {
						rs := r.ReplicaStats()
						return lsnAtLeast(rs.Replicas[0].ReplayLSN, rs.NeedLSN)
					})
					c.pause(t)
				}
				// toPrimary counts the reads sent to the primary because of
				// this Repo's writes: the replica is behind the write's WAL
				// position, or the position is not fetched yet (a write read
				// through DB()'s rows leaves it to the poller, so that no
				// Close or Scan makes a round trip).
				toPrimary := func() int64 {
					st := r.ReplicaStats()
					return st.FallbacksBehind + st.FallbacksUnknown
				}
				behind := func(t *testing.T, what string, before int64) {
					t.Helper()
					if got := toPrimary(); got <= before {
						t.Errorf("%s: FallbacksBehind+FallbacksUnknown = %d, want > %d (the read should have gone to the primary because the replica is behind)", what, got, before)
					}
				}

				// A plain write through Queries (it would fail on the read-only
				// standby, so it ran on the primary).
				fresh(t)
				fb := toPrimary()
				u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "ryw-" + tag + "@example.com", Name: "RYW"})
				if err != nil {
					t.Fatalf("CreateUser() error = %v", err)
				}
				got, err := q.GetUser(ctx, u.ID)
				if err != nil {
					t.Fatalf("GetUser() right after CreateUser: %v (read a replica that had not replayed the write)", err)
				}
				if diff := cmp.Diff(u, got); diff != "" {
					t.Errorf("GetUser() mismatch (-want +got):\n%s", diff)
				}
				behind(t, "CreateUser", fb)

				// RecordEvalRun (a transaction).
				fresh(t)
				fb = toPrimary()
				rec, err := r.RecordEvalRun(ctx, txn.Run{Name: "ryw-" + tag, Model: "m", Dataset: "d", Status: txn.StatusRunning,
					Results: []txn.Result{{CaseID: "a", Score: 1, Passed: true}, {CaseID: "b", Score: 0}},
					Metrics: []txn.Metric{{Name: "acc", Value: 0.5}}}, nil)
				if err != nil {
					t.Fatalf("RecordEvalRun() error = %v", err)
				}
				run, err := q.GetEvalRun(ctx, rec.Run.ID)
				if err != nil {
					t.Fatalf("GetEvalRun() right after RecordEvalRun: %v", err)
				}
				if run.Status != txn.StatusRunning {
					t.Errorf("GetEvalRun().Status = %q, want running", run.Status)
				}
				res, err := q.ListEvalResults(ctx, gen.ListEvalResultsParams{RunID: rec.Run.ID, RowLimit: 10})
				if err != nil || len(res) != 2 {
					t.Fatalf("ListEvalResults() = %d rows, %v; want 2 rows", len(res), err)
				}
				behind(t, "RecordEvalRun", fb)

				// An update of a row that was just read from the replica (and,
				// with the cache on, cached).
				fresh(t)
				before := replicaReads(r)
				if run, err = q.GetEvalRun(ctx, rec.Run.ID); err != nil || run.Status != txn.StatusRunning {
					t.Fatalf("GetEvalRun() before the update = %q, %v; want running", run.Status, err)
				}
				if !cached && replicaReads(r) == before {
					t.Errorf("GetEvalRun() before the update did not read the replica: %+v", r.ReplicaStats())
				}
				fb = toPrimary()
				now := time.Now()
				if _, err := q.UpdateEvalRunStatus(ctx, gen.UpdateEvalRunStatusParams{ID: rec.Run.ID, Status: txn.StatusCompleted, FinishedAt: &now}); err != nil {
					t.Fatalf("UpdateEvalRunStatus() error = %v", err)
				}
				if run, err = q.GetEvalRun(ctx, rec.Run.ID); err != nil || run.Status != txn.StatusCompleted {
					t.Errorf("GetEvalRun() after UpdateEvalRunStatus = %q, %v; want completed", run.Status, err)
				}
				behind(t, "UpdateEvalRunStatus", fb)

				// A write through DB().
				fresh(t)
				fb = toPrimary()
				var id int64
				if err := r.DB().QueryRow(ctx, "INSERT INTO users (email, name) VALUES ($1, 'DB') RETURNING id", "db-"+tag+"@example.com").Scan(&id); err != nil {
					t.Fatal(err)
				}
				if cached {
					r.Cache().Invalidate("users") // the cache does not see DB() writes
				}
				if _, err := q.GetUser(ctx, id); err != nil {
					t.Errorf("GetUser() after a DB() insert: %v", err)
				}
				behind(t, "DB().QueryRow", fb)

				// A write in Repo.Tx.
				fresh(t)
				fb = toPrimary()
				var txUser gen.User
				if err := r.Tx(ctx, nil, func(ctx context.Context, tx *txn.Tx) error {
					var err error
					txUser, err = tx.CreateUser(ctx, gen.CreateUserParams{Email: "tx-" + tag + "@example.com", Name: "Tx"})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := q.GetUserByEmail(ctx, txUser.Email); err != nil {
					t.Errorf("GetUserByEmail() after Tx: %v", err)
				}
				behind(t, "Tx", fb)

				// A batch write, then a read-only batch right after it: the
				// read must not come from the paused replica.
				fresh(t)
				fb = toPrimary()
				batchStatus := func(what string) string {
					t.Helper()
					var status string
					q.GetEvalRuns(ctx, []uuid.UUID{rec.Run.ID}).QueryRow(func(_ int, run gen.EvalRun, err error) {
						if err != nil {
							t.Errorf("GetEvalRuns() %s: %v", what, err)
						}
						status = run.Status
					})
					return status
				}
				set := q.SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{{ID: rec.Run.ID, Status: txn.StatusFailed}})
				set.Exec(func(_ int, err error) {
					if err != nil {
						t.Errorf("SetEvalRunStatuses(): %v", err)
					}
				})
				if got := batchStatus("after a batch write"); got != txn.StatusFailed {
					t.Errorf("GetEvalRuns() right after SetEvalRunStatuses = %q, want failed (read a replica that had not replayed the batch)", got)
				}
				behind(t, "SetEvalRunStatuses", fb)
				if run, err = q.GetEvalRun(ctx, rec.Run.ID); err != nil || run.Status != txn.StatusFailed {
					t.Errorf("GetEvalRun() after SetEvalRunStatuses = %q, %v; want failed", run.Status, err)
				}
				// A read-only batch goes to a replica that has replayed.
				fresh(t)
				before = replicaReads(r)
				if got := batchStatus("on the caught-up replica"); got != txn.StatusFailed {
					t.Errorf("GetEvalRuns() = %q, want failed", got)
				}
				if replicaReads(r) != before+1 {
					t.Errorf("replica reads grew by %d for a read-only batch, want 1", replicaReads(r)-before)
				}

				// Once the replica has replayed, reads go back to it.
				fresh(t)
				before = replicaReads(r)
				if _, err := q.GetUserByEmail(ctx, "nobody-"+tag+"@example.com"); !errors.Is(err, repo.ErrNotFound) {
					t.Fatalf("GetUserByEmail(nobody) error = %v, want ErrNotFound", err)
				}
				if replicaReads(r) == before {
					t.Errorf("replica reads did not grow after it replayed the writes: %+v", r.ReplicaStats())
				}
				if st := r.ReplicaStats(); st.WALFetches == 0 {
					t.Errorf("ReplicaStats().WALFetches = 0, want the writes' WAL position reads counted")
				}
				c.resume(t)
			})
		}
	})

	t.Run("FallbackWhileReplicaDown", func(t *testing.T) {
		r := openReplicated(t, c, repo.Config{DisableCache: true, Replicas: &repo.ReplicaOptions{CheckInterval: 20 * time.Millisecond}})
		q := r.Queries()
		u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "down-" + uuid.NewString()[:8] + "@example.com", Name: "Down"})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "reads use the replica", func() bool {
			before := replicaReads(r)
			_, err := q.GetUser(ctx, u.ID)
			return err == nil && replicaReads(r) > before
		})
		if err := c.replica.Halt(); err != nil {
			t.Fatalf("Halt() error = %v", err)
		}
		for i := range 20 { // every read succeeds, from the primary
			if got, err := q.GetUser(ctx, u.ID); err != nil || got.ID != u.ID {
				t.Fatalf("GetUser() #%d with the replica down = %v, %v", i, got.ID, err)
			}
		}
		st := r.ReplicaStats()
		if st.Replicas[0].Healthy || st.FallbacksFailed+st.FallbacksUnhealthy == 0 {
			t.Errorf("ReplicaStats() with the replica down = %+v, want it unhealthy and fallbacks counted", st)
		}
		if err := c.replica.Resume(ctx); err != nil {
			t.Fatalf("Resume() error = %v", err)
		}
		c.connectStandby(t)
		eventually(t, 30*time.Second, "the replica is used again", func() bool {
			before := replicaReads(r)
			_, err := q.GetUser(ctx, u.ID)
			return err == nil && replicaReads(r) > before
		})
	})

	t.Run("LagBeyondMaxLagFallsBack", func(t *testing.T) {
		maxLag := 200 * time.Millisecond
		r := openReplicated(t, c, repo.Config{DisableCache: true, Replicas: &repo.ReplicaOptions{MaxLag: maxLag, CheckInterval: 20 * time.Millisecond}})
		q := r.Queries()
		c.pause(t)
		// Another client writes steadily; the Repo itself writes nothing, so
		// only the lag bound can take the replica out of rotation.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, c.url)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if _, err := conn.Exec(ctx, "INSERT INTO users (email, name) VALUES ($1, 'Lag')", fmt.Sprintf("lag-%d-%s@example.com", i, uuid.NewString()[:8])); err != nil {
					t.Error(err)
					return
				}
			}
		})
		defer func() { close(stop); wg.Wait() }()
		var lagAtFallback time.Duration
		eventually(t, 30*time.Second, "the lagging replica leaves rotation", func() bool {
			rs := r.ReplicaStats().Replicas[0]
			lagAtFallback = rs.Lag
			return !rs.Healthy
		})
		t.Logf("replica left rotation at a measured lag of %s (MaxLag %s, check every 20ms)", lagAtFallback, maxLag)
		if lagAtFallback <= maxLag {
			t.Errorf("replica left rotation at lag %s, want > MaxLag %s", lagAtFallback, maxLag)
		}
		c.exec(t, c.admin, "INSERT INTO users (email, name) VALUES ('lagcheck@example.com', 'LagCheck')")
		if _, err := q.GetUserByEmail(ctx, "lagcheck@example.com"); err != nil {
			t.Errorf("GetUserByEmail() with the replica out of rotation: %v (want the primary's row)", err)
		}
		c.resume(t)
		eventually(t, 30*time.Second, "the replica catches up and returns", func() bool { return r.ReplicaStats().Replicas[0].Healthy })
	})

	t.Run("PasswordsRedactedAndReplicaDownAtOpen", func(t *testing.T) {
		var logs bytes.Buffer
		const secret = "s3cr3t-replica-pw"
		cfg := &repo.Config{URL: c.url, Env: repo.Development, DisableCache: true,
			Logger:      slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			ReplicaURLs: []string{"postgres://u:" + secret + "@127.0.0.1:1/db?connect_timeout=1&sslmode=disable"}}
		c.exec(t, c.admin, "INSERT INTO users (email, name) VALUES ('redact@example.com', 'Redact') ON CONFLICT DO NOTHING")
		r, err := repo.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open() with an unreachable replica: %v (want success, reads on the primary)", err)
		}
		defer r.Close()
		if _, err := r.Queries().GetUserByEmail(ctx, "redact@example.com"); err != nil {
			t.Errorf("GetUserByEmail() = %v, want the primary's row", err)
		}
		st := r.ReplicaStats()
		if st.Replicas[0].Healthy || st.PrimaryReads != 1 {
			t.Errorf("ReplicaStats() = %+v, want the replica unhealthy and 1 primary read", st)
		}
		if !strings.Contains(logs.String(), "replica is out of rotation") {
			t.Errorf("no warning about the unreachable replica in the log:\n%s", logs.String())
		}
		text := logs.String() + st.Replicas[0].Reason + fmt.Sprint(st)
		if strings.Contains(text, secret) {
			t.Errorf("password leaked:\n%s", text)
		}
		cfg.ReplicaURLs = []string{"postgres://u:" + secret + "@127.0.0.1:1/db?connection_limit=abc"}
		_, err = repo.Open(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "ReplicaURLs[0]") || !strings.Contains(err.Error(), "connection_limit") || strings.Contains(err.Error(), secret) {
			t.Errorf("Open() with a bad replica URL: error = %v, want one naming ReplicaURLs[0] and connection_limit, without the password", err)
		}
	})
}

// lsnAtLeast compares two pg_lsn texts.
func lsnAtLeast(a, b string) bool {
	var ah, al, bh, bl uint64
	if _, err := fmt.Sscanf(a, "%x/%x", &ah, &al); err != nil {
		return false
	}
	if _, err := fmt.Sscanf(b, "%x/%x", &bh, &bl); err != nil {
		return false
	}
	return ah<<32|al >= bh<<32|bl
}

// TestUnreachableReplicaBacksOff: a replica that cannot be reached is
// checked with exponential backoff (internal/backoff, as the listener and
// txn retry), not dialled on every check of the primary. The assertion
// counts checks, not time: with a 5 ms CheckInterval, the backoff doubling
// from it sends a handful of checks while the primary is checked dozens of
// times; without it both counts are equal.
func TestUnreachableReplicaBacksOff(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that refuses: taken, then closed
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	ru := *u
	ru.Host = dead
	r, err := repo.Open(ctx, &repo.Config{URL: u.String(), ReplicaURLs: []string{ru.String()}, Env: repo.Test, DisableCache: true,
		Replicas: &repo.ReplicaOptions{CheckInterval: 5 * time.Millisecond, MaxRetryInterval: time.Minute}})
	if err != nil {
		t.Fatalf("repo.Open() with an unreachable replica error = %v, want nil (reads use the primary)", err)
	}
	t.Cleanup(r.Close)
	start := r.ReplicaStats()
	eventually(t, time.Minute, "the primary is checked 60 more times", func() bool {
		return r.ReplicaStats().WALFetches >= start.WALFetches+60
	})
	st := r.ReplicaStats()
	rep := st.Replicas[0]
	if rep.Healthy || !strings.Contains(rep.Reason, "unreachable") {
		t.Errorf("replica state = %+v, want unhealthy and unreachable", rep)
	}
	checks := rep.Checks - start.Replicas[0].Checks
	if primary := st.WALFetches - start.WALFetches; checks < 1 || checks*4 > primary {
		t.Errorf("unreachable replica checked %d times while the primary was checked %d times; want at least once and under a quarter as often (backoff)", checks, primary)
	}
	if got, err := r.Queries().GetUser(ctx, 1); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("GetUser() with the replica unreachable = %+v, %v; want ErrNotFound from the primary", got, err)
	}
}

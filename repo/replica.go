package repo

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/internal/backoff"
)

// Read replicas.
//
// With Config.ReplicaURLs, Open opens one pool per replica (each URL parsed
// by ParseURL like the primary's) and routes statements:
//
//   - Queries() sends the sqlc queries that cachewrap.ReadOnly reports as
//     read-only to a replica, round-robin, and everything else (writes,
//     locking reads, system-catalog reads, SQL it does not know) to the
//     primary. Prisma's readReplicas extension routes the same way.
//   - DB(), Tx and RecordEvalRun always use the primary.
//   - Read-your-writes, process-wide: after every write through the Repo
//     (a statement outside a transaction, or a COMMIT) it fetches the
//     primary's WAL insert position and keeps the highest. A read uses a
//     replica only when that replica's replay position, polled in the
//     background, has reached it; otherwise it goes to the primary. No
//     delay is guessed. Because the position is recorded before the write
//     returns, and so before the cache invalidates, a read that follows an
//     invalidation cannot re-cache rows from a replica that has not replayed
//     the write.
//   - A replica that is unreachable, not a standby, or lagging more than
//     ReplicaOptions.MaxLag serves nothing; reads go to the primary
//     (counted as fallbacks) until a background check finds it healthy
//     again. A read that fails on a replica because the replica went away
//     is run again on the primary (it only reads, so that is safe).

// ReplicaOptions tune read-replica routing. A nil *ReplicaOptions means
// the defaults.
type ReplicaOptions struct {
	// MaxLag is the staleness beyond which a replica serves no reads. Lag
	// is measured against the primary's WAL position samples (taken after
	// each write and every CheckInterval): the time since the primary first
	// had WAL the replica has not replayed. Default: 5 s.
	MaxLag time.Duration

	// PollInterval is how often a replica's replay position is polled
	// while it is behind this Repo's latest write (nothing is polled at
	// this rate otherwise). It bounds how long reads keep going to the
	// primary after the replica caught up. Default: 5 ms.
	PollInterval time.Duration

	// CheckInterval is how often every replica's health and replay
	// position and the primary's WAL position are checked, and so how
	// quickly a replica that failed a read, or lags, is used again once it
	// is healthy. Default: 100 ms.
	CheckInterval time.Duration

	// MaxRetryInterval caps the backoff of a replica that cannot be
	// reached or is not a standby: after each failed check its next check
	// waits twice as long as the last, from CheckInterval up to this (with
	// jitter), so that a dead host is not dialled every CheckInterval and
	// replicas that failed together are not retried together. A replica
	// that answers but lags is checked every CheckInterval. It bounds how
	// long a replica that came back waits to be used again. Default: 5 s.
	MaxRetryInterval time.Duration
}

// Defaults of ReplicaOptions.
const (
	DefaultReplicaMaxLag        = 5 * time.Second
	DefaultReplicaPollInterval  = 5 * time.Millisecond
	DefaultReplicaCheckInterval = 100 * time.Millisecond
	DefaultReplicaMaxRetry      = 5 * time.Second
)

func (o *ReplicaOptions) resolve() (ReplicaOptions, error) {
	var c ReplicaOptions
	if o != nil {
		c = *o
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"MaxLag", c.MaxLag}, {"PollInterval", c.PollInterval}, {"CheckInterval", c.CheckInterval}, {"MaxRetryInterval", c.MaxRetryInterval}} {
		if f.v < 0 {
			return c, fmt.Errorf("Config.Replicas.%s must be >= 0 (got %s); 0 means the default", f.name, f.v)
		}
	}
	c.MaxLag = cmp.Or(c.MaxLag, DefaultReplicaMaxLag)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultReplicaPollInterval)
	c.CheckInterval = cmp.Or(c.CheckInterval, DefaultReplicaCheckInterval)
	c.MaxRetryInterval = max(cmp.Or(c.MaxRetryInterval, DefaultReplicaMaxRetry), c.CheckInterval)
	return c, nil
}

// SplitReplicaURLs splits the value of DATABASE_REPLICA_URLS: URLs
// separated by commas and/or white space. A comma followed by something
// other than a postgres:// or postgresql:// URL belongs to the URL before
// it (pgx's multi-host form, postgres://u@h1:5432,h2:5432/db). Empty items
// are dropped.
func SplitReplicaURLs(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		for _, p := range strings.Split(f, ",") {
			switch {
			case p == "":
			case strings.HasPrefix(p, "postgres://") || strings.HasPrefix(p, "postgresql://") || len(out) == 0:
				out = append(out, p)
			default:
				out[len(out)-1] += "," + p
			}
		}
	}
	return out
}

// replica is one standby's pool and what the poller knows about it.
type replica struct {
	t       *target
	replay  atomic.Uint64 // last polled replay position (only grows)
	healthy atomic.Bool
	checked atomic.Bool  // polled at least once
	lag     atomic.Int64 // nanoseconds, last computed
	reads   atomic.Int64 // reads served
	fails   atomic.Int64 // reads that failed here and went to the primary
	checks  atomic.Int64 // health checks (polls) sent to it

	// The backoff of a replica that cannot be reached, owned by the
	// poller's goroutine: consecutive failed checks, and when the next may run.
	down    int
	retryAt time.Time

	mu     sync.Mutex
	reason string // why it is not healthy ("" when healthy)
}

// replicaSet routes the statements of a Repo that has replicas. Safe for
// concurrent use.
type replicaSet struct {
	r    *Repo
	opts ReplicaOptions
	reps []*replica
	wal  walState
	grp  lsnGroup
	next atomic.Uint32

	primaryReads                     atomic.Int64 // read-only queries the primary served
	fbBehind, fbUnhealthy, fbUnknown atomic.Int64 // fallbacks by reason
	fbFailed                         atomic.Int64

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// openReplicas parses and opens the replicas of cfg after the primary
// pool is up. A replica that cannot be reached now does not fail Open (it
// is marked unhealthy, reads use the primary, and the background check
// picks it up when it answers); a URL that does not parse does.
func (r *Repo) openReplicas(ctx context.Context, cfg *Config) error {
	if len(cfg.ReplicaURLs) == 0 {
		return nil
	}
	opts, err := cfg.Replicas.resolve()
	if err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	s := &replicaSet{r: r, opts: opts, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for i, u := range cfg.ReplicaURLs {
		rep, err := r.openReplica(ctx, i, u)
		if err != nil {
			s.closePools()
			return err
		}
		s.reps = append(s.reps, rep)
	}
	r.rep = s
	s.check(ctx)
	go s.run()
	return nil
}

func (r *Repo) openReplica(ctx context.Context, i int, u string) (*replica, error) {
	st, err := ParseURL(u, r.cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("repo: Config.ReplicaURLs[%d]: %w", i, err)
	}
	t, err := r.newPool(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("repo: create pool for replica %s: %w", st.Redacted, err)
	}
	rep := &replica{t: t}
	rep.reason = "not checked yet"
	return rep, nil
}

func (s *replicaSet) closePools() {
	for _, rep := range s.reps {
		rep.t.pool.Close()
	}
}

// close stops the poller and closes the replica pools. Nil-safe.
func (s *replicaSet) close() {
	if s == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.closePools()
}

// pick returns a replica fresh enough for a read now, or nil (and counts
// the fallback).
func (s *replicaSet) pick() *replica {
	if s.wal.unknown() {
		s.fbUnknown.Add(1)
		return nil
	}
	need := s.wal.need.Load()
	n := uint32(len(s.reps))
	start := s.next.Add(1)
	behind := false
	for i := range n {
		rep := s.reps[(start+i)%n]
		if !rep.healthy.Load() {
			continue
		}
		if rep.replay.Load() < need {
			behind = true
			continue
		}
		return rep
	}
	if behind {
		s.fbBehind.Add(1)
	} else {
		s.fbUnhealthy.Add(1)
	}
	return nil
}

// markDown takes a replica out of rotation after a read failed on it.
func (s *replicaSet) markDown(ctx context.Context, rep *replica, err error) {
	rep.fails.Add(1)
	s.fbFailed.Add(1)
	if rep.healthy.CompareAndSwap(true, false) {
		rep.setReason("read failed: " + err.Error())
		s.r.log.WarnContext(ctx, "evaldb: replica failed a read; reads go to the primary until it answers again",
			"replica", rep.t.name, "error", err)
	}
}

func (rep *replica) setReason(why string) {
	rep.mu.Lock()
	rep.reason = why
	rep.mu.Unlock()
}

func (rep *replica) getReason() string {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.reason
}

// markUnknown makes reads use the primary until the poller has fetched the
// primary's WAL position again, for a write whose end gives no chance of a
// round trip (rows or a batch closed after a hand-written write). It makes
// no network call.
func (s *replicaSet) markUnknown() {
	s.wal.lost.Add(1)
	s.poke()
}

// noteWrite records the primary's WAL position after a write ended (with
// or without an error: a failed statement may have committed). It is
// called before the write returns to its caller, and so before the cache
// invalidates. When the position cannot be fetched, reads use the primary
// until a later fetch succeeds.
func (s *replicaSet) noteWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noteTimeout)
	defer cancel()
	_, err := s.grp.do(func() (uint64, error) { return s.fetchPrimary(ctx, true) })
	if err != nil {
		s.wal.lost.Add(1)
		s.r.log.WarnContext(ctx, "evaldb: cannot read the primary's WAL position after a write; reads use the primary until it can",
			"error", err)
		return fmt.Errorf("read primary WAL position: %w", err)
	}
	s.poke()
	return nil
}

// poke wakes the poller, unless a wake-up is already pending.
func (s *replicaSet) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// noteTimeout bounds the WAL position fetch after a write.
const noteTimeout = 5 * time.Second

// fetchPrimary reads the primary's WAL insert position and records it.
//
// After a write (asWrite) the position becomes the one reads must see. A
// background sample only feeds the lag history, unless a write's position
// was lost: then it stands in for it (it was read after that write ended).
func (s *replicaSet) fetchPrimary(ctx context.Context, asWrite bool) (uint64, error) {
	lost := s.wal.lost.Load() // losses before this fetch starts are covered by it
	t0 := time.Now()
	row, err := queryOne(ctx, s.r.primary, sqlWALInsertLSN)
	t1 := time.Now()
	s.wal.fetches.Add(1)
	s.wal.fetchNanos.Add(int64(t1.Sub(t0)))
	if err != nil {
		s.wal.fetchErrors.Add(1)
		return 0, err
	}
	lsn, err := parseLSN(row[0])
	if err != nil {
		s.wal.fetchErrors.Add(1)
		return 0, err
	}
	if asWrite || lost > s.wal.cleared.Load() {
		maxUint64(&s.wal.need, lsn)
		maxUint64(&s.wal.cleared, lost)
	}
	s.wal.sample(t1, lsn)
	return lsn, nil
}

// run is the background poller: a full check every CheckInterval, and a
// replay poll every PollInterval of the replicas that are behind this
// Repo's latest write.
func (s *replicaSet) run() {
	defer close(s.done)
	ctx := context.Background()
	nextCheck := time.Now().Add(s.opts.CheckInterval)
	t := time.NewTimer(s.opts.CheckInterval)
	defer t.Stop()
	for {
		wait := time.Until(nextCheck)
		if s.behind() {
			wait = min(wait, s.opts.PollInterval)
		}
		t.Reset(max(wait, 0))
		select {
		case <-s.stop:
			return
		case <-s.wake:
			if !t.Stop() {
				<-t.C
			}
			continue
		case <-t.C:
		}
		if !time.Now().Before(nextCheck) {
			s.check(ctx)
			nextCheck = time.Now().Add(s.opts.CheckInterval)
		} else {
			s.pollBehind(ctx)
		}
	}
}

// behind reports whether some healthy replica has not replayed the latest
// write, or a write's position is unknown: the fast poll is needed.
func (s *replicaSet) behind() bool {
	if s.wal.unknown() {
		return true
	}
	need := s.wal.need.Load()
	for _, rep := range s.reps {
		if rep.healthy.Load() && rep.replay.Load() < need {
			return true
		}
	}
	return false
}

// check samples the primary's position and polls every replica.
func (s *replicaSet) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.opts.CheckInterval, time.Second))
	defer cancel()
	_, _ = s.fetchPrimary(ctx, false) // a failure only coarsens the lag; writes record their own
	now := time.Now()
	var wg sync.WaitGroup
	for _, rep := range s.reps {
		if rep.down > 0 && now.Before(rep.retryAt) {
			continue // backing off a replica that could not be reached
		}
		wg.Go(func() { s.poll(ctx, rep) })
	}
	wg.Wait()
	s.prune()
}

// retryPolicy is the backoff of a replica that cannot be reached (see
// ReplicaOptions.MaxRetryInterval).
func (s *replicaSet) retryPolicy() backoff.Policy {
	return backoff.Policy{Base: s.opts.CheckInterval, Max: s.opts.MaxRetryInterval}
}

// pollBehind polls the healthy replicas that have not replayed the latest
// write (and, when a write's position is unknown, the primary).
func (s *replicaSet) pollBehind(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.opts.CheckInterval, time.Second))
	defer cancel()
	if s.wal.unknown() {
		_, _ = s.fetchPrimary(ctx, false)
	}
	need := s.wal.need.Load()
	for _, rep := range s.reps {
		if rep.healthy.Load() && rep.replay.Load() < need {
			s.poll(ctx, rep)
		}
	}
}

func (s *replicaSet) prune() {
	lowest := ^uint64(0)
	for _, rep := range s.reps {
		lowest = min(lowest, rep.replay.Load())
	}
	s.wal.prune(lowest)
}

// poll reads one replica's replay position and decides its health.
func (s *replicaSet) poll(ctx context.Context, rep *replica) {
	rep.checks.Add(1)
	row, err := queryOne(ctx, rep.t, sqlReplayLSN)
	var lsn uint64
	if err == nil && row[0] != "true" {
		err = errNotStandby
	}
	if err == nil {
		lsn, err = parseLSN(row[1])
	}
	if err != nil {
		rep.down++
		rep.retryAt = time.Now().Add(s.retryPolicy().Delay(rep.down))
		s.setHealth(ctx, rep, false, "unreachable or failing: "+err.Error())
		return
	}
	rep.down = 0
	maxUint64(&rep.replay, lsn)
	lag := s.wal.lag(time.Now(), rep.replay.Load())
	rep.lag.Store(int64(lag))
	if lag > s.opts.MaxLag {
		s.setHealth(ctx, rep, false, fmt.Sprintf("lagging %s behind the primary (MaxLag %s)", lag.Round(time.Millisecond), s.opts.MaxLag))
		return
	}
	s.setHealth(ctx, rep, true, "")
}

func (s *replicaSet) setHealth(ctx context.Context, rep *replica, ok bool, why string) {
	rep.setReason(why)
	first := !rep.checked.Swap(true)
	if rep.healthy.Swap(ok) == ok && !(first && !ok) {
		return // no change (a replica failing its very first check is still reported)
	}
	if ok {
		s.r.log.InfoContext(ctx, "evaldb: replica is healthy; reads use it again", "replica", rep.t.name)
	} else {
		s.r.log.WarnContext(ctx, "evaldb: replica is out of rotation; reads go to the primary", "replica", rep.t.name, "reason", why)
	}
}

// MarkWritten records the primary's current WAL position as one this
// Repo's reads must see: until a replica has replayed that far, Queries
// reads from the primary. Writes made through the Repo do this by
// themselves; call it after writes made elsewhere (another service, psql,
// or an invalidation notice from another instance) and before telling the
// cache (Cache().Invalidate), so that the next miss cannot re-cache rows
// from a replica that has not replayed those writes. Without replicas it
// does nothing and returns nil. Safe for concurrent use.
func (r *Repo) MarkWritten(ctx context.Context) error {
	if r.rep == nil {
		return nil
	}
	return r.rep.noteWrite(ctx)
}

// ReplicaState is one replica's routing state.
type ReplicaState struct {
	// Name is the replica's host:port.
	Name string
	// Healthy is whether it serves reads (reachable, a standby, within MaxLag).
	Healthy bool
	// Reason says why it is not healthy ("" when it is).
	Reason string
	// ReplayLSN is its last polled replay position ("0/0" before the first poll).
	ReplayLSN string
	// Lag is its last computed lag behind the primary (a lower bound; see
	// ReplicaOptions.MaxLag).
	Lag time.Duration
	// Reads is the number of reads it served; Failovers the number that
	// failed on it and were run on the primary.
	Reads, Failovers int64
	// Checks is the number of health checks sent to it (fewer than the
	// primary's while it cannot be reached: see ReplicaOptions.MaxRetryInterval).
	Checks int64
	// Pool are its pool's figures.
	Pool PoolStats
}

// ReplicaStats are the routing figures of a Repo with replicas.
type ReplicaStats struct {
	// Replicas are the replicas in Config.ReplicaURLs order.
	Replicas []ReplicaState
	// ReplicaReads is the number of read-only queries the replicas served;
	// PrimaryReads the number the primary served instead.
	ReplicaReads, PrimaryReads int64
	// Fallbacks by reason: FallbacksBehind (no healthy replica had
	// replayed this Repo's latest write yet), FallbacksUnhealthy (no
	// healthy replica), FallbacksUnknown (a write's WAL position could not
	// be read), FallbacksFailed (the read failed on a replica and ran
	// again on the primary).
	FallbacksBehind, FallbacksUnhealthy, FallbacksUnknown, FallbacksFailed int64
	// NeedLSN is the WAL position reads must see (this Repo's latest write).
	NeedLSN string
	// WALFetches is the number of primary WAL position reads (after writes
	// and in background checks), WALFetchErrors how many failed, and
	// WALFetchTime their total duration: the cost of read-your-writes.
	WALFetches, WALFetchErrors int64
	WALFetchTime               time.Duration
}

// ReplicaStats returns the read-replica routing figures without a round
// trip, or nil when the Repo has no replicas. Safe for concurrent use.
func (r *Repo) ReplicaStats() *ReplicaStats {
	s := r.rep
	if s == nil {
		return nil
	}
	st := &ReplicaStats{
		PrimaryReads:       s.primaryReads.Load(),
		FallbacksBehind:    s.fbBehind.Load(),
		FallbacksUnhealthy: s.fbUnhealthy.Load(),
		FallbacksUnknown:   s.fbUnknown.Load(),
		FallbacksFailed:    s.fbFailed.Load(),
		NeedLSN:            formatLSN(s.wal.need.Load()),
		WALFetches:         s.wal.fetches.Load(),
		WALFetchErrors:     s.wal.fetchErrors.Load(),
		WALFetchTime:       time.Duration(s.wal.fetchNanos.Load()),
	}
	for _, rep := range s.reps {
		rs := ReplicaState{Name: rep.t.name, Healthy: rep.healthy.Load(), Reason: rep.getReason(),
			ReplayLSN: formatLSN(rep.replay.Load()), Lag: time.Duration(rep.lag.Load()),
			Reads: rep.reads.Load(), Failovers: rep.fails.Load(), Checks: rep.checks.Load(), Pool: poolStats(rep.t)}
		if rs.Healthy {
			rs.Reason = ""
		}
		st.ReplicaReads += rs.Reads
		st.Replicas = append(st.Replicas, rs)
	}
	return st
}

func poolStats(t *target) PoolStats {
	if t.pool == nil {
		return PoolStats{}
	}
	s := t.pool.Stat()
	return PoolStats{
		TotalConns: s.TotalConns(), IdleConns: s.IdleConns(), AcquiredConns: s.AcquiredConns(),
		ConstructingConns: s.ConstructingConns(), MaxConns: s.MaxConns(),
		AcquireCount: s.AcquireCount(), AcquireDuration: s.AcquireDuration(),
		EmptyAcquireCount: s.EmptyAcquireCount(), EmptyAcquireWaitTime: s.EmptyAcquireWaitTime(),
		CanceledAcquireCount: s.CanceledAcquireCount(), NewConnsCount: s.NewConnsCount(),
		AcquireTimeouts: t.timeouts.Load(),
	}
}

func replicaDescs(labels prometheus.Labels) map[string]*prometheus.Desc {
	d := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, variable, labels)
	}
	return map[string]*prometheus.Desc{
		"reads":     d("evaldb_replica_reads_total", "Read-only queries served by a replica.", "replica"),
		"failovers": d("evaldb_replica_failovers_total", "Reads that failed on a replica and ran again on the primary.", "replica"),
		"healthy":   d("evaldb_replica_healthy", "1 when the replica serves reads (reachable, a standby, within MaxLag).", "replica"),
		"lag":       d("evaldb_replica_lag_seconds", "The replica's last measured lag behind the primary (a lower bound).", "replica"),
		"primary":   d("evaldb_replica_primary_reads_total", "Read-only queries served by the primary instead of a replica."),
		"fallbacks": d("evaldb_replica_fallbacks_total", "Reads sent to the primary, by reason (behind, unhealthy, unknown, failed).", "reason"),
		"checks":    d("evaldb_replica_checks_total", "Health checks sent to a replica (backing off while it cannot be reached).", "replica"),
		"fetches":   d("evaldb_replica_wal_fetches_total", "Reads of the primary's WAL position (after writes and in checks)."),
		"fetchsec":  d("evaldb_replica_wal_fetch_seconds_total", "Time spent reading the primary's WAL position."),
	}
}

// collectReplicas adds the replica families, of descriptors d built once
// by Collector, to the Repo's collector (nothing when st is nil).
func collectReplicas(ch chan<- prometheus.Metric, d map[string]*prometheus.Desc, st *ReplicaStats) {
	if st == nil {
		return
	}
	m := func(k string, t prometheus.ValueType, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d[k], t, v, lv...)
	}
	for _, rs := range st.Replicas {
		m("reads", prometheus.CounterValue, float64(rs.Reads), rs.Name)
		m("failovers", prometheus.CounterValue, float64(rs.Failovers), rs.Name)
		m("checks", prometheus.CounterValue, float64(rs.Checks), rs.Name)
		h := 0.0
		if rs.Healthy {
			h = 1
		}
		m("healthy", prometheus.GaugeValue, h, rs.Name)
		m("lag", prometheus.GaugeValue, rs.Lag.Seconds(), rs.Name)
	}
	m("primary", prometheus.CounterValue, float64(st.PrimaryReads))
	m("fallbacks", prometheus.CounterValue, float64(st.FallbacksBehind), "behind")
	m("fallbacks", prometheus.CounterValue, float64(st.FallbacksUnhealthy), "unhealthy")
	m("fallbacks", prometheus.CounterValue, float64(st.FallbacksUnknown), "unknown")
	m("fallbacks", prometheus.CounterValue, float64(st.FallbacksFailed), "failed")
	m("fetches", prometheus.CounterValue, float64(st.WALFetches))
	m("fetchsec", prometheus.CounterValue, st.WALFetchTime.Seconds())
}

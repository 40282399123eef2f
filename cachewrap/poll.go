package cachewrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ChangesTable is the table of change counters that schema/'s notification
// triggers keep (schema.ChangesTable, made by schema.NotifySQL): one row per table and shard, whose version every
// committing statement that changes the table increments. A writer updates
// the shard of its server backend (pg_backend_pid() % ChangeShards), so
// concurrent writers on different connections do not wait for each other's
// row locks; a reader sums the shards. A committed change always raises its
// table's sum, and only committed changes are visible to a reader, so the
// sum moves exactly when a committed write changed the table.
const ChangesTable = "evaldb_changes"

// ChangeShards is the number of counter rows per table.
const ChangeShards = 64

// ChangesQuery reads the sums that a Poller compares. It is an ordinary
// read: it runs through any pool, PgBouncer's transaction pooling included.
const ChangesQuery = "SELECT table_name, sum(version)::int8 FROM " + ChangesTable + " GROUP BY table_name"

// PollerOptions configures a Poller.
type PollerOptions struct {
	// Look runs ChangesQuery on the primary, through the ordinary pool, and
	// returns each table's sum. Required.
	Look func(ctx context.Context) (map[string]int64, error)
	// MaxStaleness is the bound: a cached read is served only if the last
	// look started at most this long ago; otherwise the Poller looks first.
	// Default 100 ms.
	MaxStaleness time.Duration
	// Logger receives a line when a look fails (Warn). nil discards it.
	Logger *slog.Logger
	// Now is the clock; tests set it. Default time.Now.
	Now func() time.Time
}

// PollerStats is a snapshot of a Poller's counters, monotonic since
// NewPoller.
type PollerStats struct {
	// Looks counts the change-counter queries that succeeded.
	Looks uint64
	// Failures counts the looks that failed; each time, the reads waiting
	// for it went to the database instead of the cache.
	Failures uint64
	// Invalidations counts the tables found changed by a look.
	Invalidations uint64
}

// Poller keeps a cache coherent with writes made anywhere without holding
// a session: the session-free alternative to Listener, for PgBouncer's
// transaction pooling and serverless instances, where a LISTEN connection
// per instance would exhaust the server.
//
// It costs nothing while the instance is idle. Before a cached read is
// served, the cache calls Fresh; when the last look started more than
// MaxStaleness ago, Fresh runs ChangesQuery (one small read through the
// ordinary pool, shared by all concurrent readers) and invalidates every
// table whose counter moved. So no read served is older than the writes
// that committed MaxStaleness before it. When a look fails, Fresh returns
// the error and the read goes to the database: the cache never serves
// beyond the bound.
//
// Its methods are safe for concurrent use.
type Poller struct {
	target Invalidator
	o      PollerOptions

	looks, failures, invalidations atomic.Uint64

	base time.Time    // the clock's origin: times are nanoseconds since base, monotonic
	last atomic.Int64 // start of the last successful look; math.MinInt64: never

	mu       sync.Mutex
	sums     map[string]int64 // as of the last successful look; nil before the first
	inflight *look
}

type look struct {
	started int64
	done    chan struct{}
	err     error
}

// NewPoller returns a Poller that tells target about changed tables. It
// does no I/O.
func NewPoller(target Invalidator, opts *PollerOptions) (*Poller, error) {
	if target == nil {
		return nil, errors.New("cachewrap: NewPoller needs an Invalidator such as a *Cache (got nil)")
	}
	if opts == nil || opts.Look == nil {
		return nil, errors.New("cachewrap: PollerOptions.Look is required: a function running cachewrap.ChangesQuery through the pool")
	}
	o := *opts
	if o.MaxStaleness < 0 {
		return nil, fmt.Errorf("cachewrap: PollerOptions.MaxStaleness must be > 0 (got %s)", o.MaxStaleness)
	}
	o.MaxStaleness = cmp.Or(o.MaxStaleness, 100*time.Millisecond)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Poller{target: target, o: o, base: o.Now()}
	p.last.Store(never)
	return p, nil
}

// never is Poller.last before the first successful look.
const never = math.MinInt64

func (p *Poller) clock() int64 { return int64(p.o.Now().Sub(p.base)) }

// MaxStaleness returns the bound in use.
func (p *Poller) MaxStaleness() time.Duration { return p.o.MaxStaleness }

// Fresh returns nil once the cache may serve a read: the last look started
// no more than MaxStaleness ago, looking now when it did not. Concurrent
// callers share one look; each stops waiting when its own ctx ends. A
// non-nil error means the read must not be served from the cache.
func (p *Poller) Fresh(ctx context.Context) error {
	now := p.clock()
	if last := p.last.Load(); last != never && now-last <= int64(p.o.MaxStaleness) {
		return nil
	}
	p.mu.Lock()
	if last := p.last.Load(); last != never && now-last <= int64(p.o.MaxStaleness) {
		// A look finished while this reader waited for the lock.
		p.mu.Unlock()
		return nil
	}
	l := p.inflight
	if l == nil || l.started < now-int64(p.o.MaxStaleness) {
		// No look in flight, or one too old to vouch for this read (it
		// started before the bound): start one.
		l = &look{started: now, done: make(chan struct{})}
		p.inflight = l
		go p.run(context.WithoutCancel(ctx), l)
	}
	p.mu.Unlock()
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lookTimeout bounds one look, which runs on behalf of every reader that
// waits for it.
const lookTimeout = 5 * time.Second

func (p *Poller) run(ctx context.Context, l *look) {
	defer close(l.done)
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()
	sums, err := p.o.Look(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == l {
		p.inflight = nil
	}
	if err != nil {
		p.failures.Add(1)
		l.err = fmt.Errorf("cachewrap: read the change counters: %w", err)
		p.o.Logger.WarnContext(ctx, "evaldb: cache coherence check failed; reads go to the database until one succeeds",
			"error", err)
		return
	}
	p.looks.Add(1)
	if l.started < p.last.Load() {
		return // a later look already applied a newer state
	}
	// Reads cached before the first look may be older than any bound, and
	// counters gone from the table were reset by hand: assume anything changed.
	reset := p.sums == nil
	for t := range p.sums {
		if _, ok := sums[t]; !ok {
			reset = true
			break
		}
	}
	if reset {
		p.target.InvalidateAll()
	} else {
		var changed []string
		for t, v := range sums {
			if p.sums[t] != v {
				changed = append(changed, t)
			}
		}
		if len(changed) > 0 {
			p.target.Invalidate(changed...)
			p.invalidations.Add(uint64(len(changed)))
		}
	}
	p.sums = maps.Clone(sums)
	p.last.Store(l.started)
}

// Stats returns a snapshot of the Poller's counters.
func (p *Poller) Stats() PollerStats {
	return PollerStats{Looks: p.looks.Load(), Failures: p.failures.Load(), Invalidations: p.invalidations.Load()}
}

var (
	descPollLooks = prometheus.NewDesc("evaldb_cache_coherence_checks_total",
		"Change-counter reads of the session-free cache coherence mode, by outcome.", []string{"outcome"}, nil)
	descPollInvalidations = prometheus.NewDesc("evaldb_cache_coherence_invalidations_total",
		"Tables that a change-counter read found changed (each invalidates that table's cached reads).", nil, nil)
)

type pollerCollector struct{ p *Poller }

// Collector returns a prometheus.Collector exporting Stats as
// evaldb_cache_coherence_checks_total{outcome="ok"|"failed"} and
// evaldb_cache_coherence_invalidations_total. The caller registers it.
func (p *Poller) Collector() prometheus.Collector { return pollerCollector{p} }

// Describe implements prometheus.Collector.
func (pollerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPollLooks
	ch <- descPollInvalidations
}

// Collect implements prometheus.Collector.
func (k pollerCollector) Collect(ch chan<- prometheus.Metric) {
	s := k.p.Stats()
	ch <- prometheus.MustNewConstMetric(descPollLooks, prometheus.CounterValue, float64(s.Looks), "ok")
	ch <- prometheus.MustNewConstMetric(descPollLooks, prometheus.CounterValue, float64(s.Failures), "failed")
	ch <- prometheus.MustNewConstMetric(descPollInvalidations, prometheus.CounterValue, float64(s.Invalidations))
}

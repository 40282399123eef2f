package cachewrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/querymeta"
)

// Options configures a Cache. A nil *Options means every default.
type Options struct {
	// MaxBytes bounds the estimated size of the cached values, keys and
	// bookkeeping. Default 64 MiB.
	MaxBytes int64
	// TTL is how long a read without a "cache: ttl=" line in queries/ is
	// served without asking PostgreSQL again. It bounds how stale a read can
	// be after a write made outside this process. Default 1 minute.
	TTL time.Duration
	// SWR is the stale-while-revalidate window of reads without a
	// "cache: swr=" line: for SWR after the TTL ends, a read returns the
	// expired value at once and refreshes it in the background. Default 0
	// (off).
	SWR time.Duration
	// TTLOnly lists tables ("*" for all) whose reads are cached even when
	// the database lacks their notification trigger (see
	// Cache.CheckTriggers): other processes' writes to them then show only
	// when cached reads expire. Default none: such reads are not cached.
	TTLOnly []string
	// Off lists query names (gen.Querier method names) that must not be
	// cached, on top of those whose comment says "cache: off". An unknown
	// name is an error. Default none.
	Off []string
	// NumCounters is ristretto's number of admission counters; about ten
	// per entry the cache is expected to hold. Default MaxBytes/100 (ten
	// counters per KiB), at least 1000.
	NumCounters int64
	// RefreshTimeout bounds a background stale-while-revalidate refresh,
	// which outlives the read that started it. Default 30 seconds.
	RefreshTimeout time.Duration
	// LoadTimeout bounds a load that concurrent misses of one key share.
	// It runs under a context of its own (so the first caller giving up
	// does not fail the others), and each caller waits for it at most until
	// its own context ends. Package repo sets it to the per-statement
	// deadline (socket_timeout) when there is one. Default RefreshTimeout.
	LoadTimeout time.Duration
	// Now is the clock deciding freshness; tests set it. Default: the
	// monotonic clock.
	Now func() time.Time
}

// entry is a cached result. It holds its full key: ristretto stores only
// 64-bit hashes, so a lookup whose hash matches but whose key does not is a
// miss, never someone else's value.
type entry struct {
	key          string
	val          any // a *R, immutable once stored; readers get copies
	fresh, stale int64
	qid          querymeta.ID
	refreshing   atomic.Bool
}

// Cache is a gen.Querier serving reads from a ristretto cache and passing
// writes through, generated from gen/ by tools/cachegen. Build it with New.
//
// Keys hold a generation number for every table the query reads; a write
// made through the Cache (or a transaction's commit callback from Tx, or
// Invalidate) bumps the generations of the tables it writes after the write
// returned, so a read that starts afterwards builds a new key and cannot see
// a value cached before the write. Nothing relies on deleting entries: old
// ones age out by TTL or eviction.
//
// A Cache is safe for concurrent use. Every value it returns is a private
// deep copy: callers may change it.
type Cache struct {
	q       gen.Querier
	rc      *ristretto.Cache[uint64, *entry]
	seed    maphash.Seed
	gens    [querymeta.NumTables]atomic.Uint64
	off     [querymeta.NumQueries]bool
	ttl     [querymeta.NumQueries]int64
	swr     [querymeta.NumQueries]int64
	now     func() time.Time // nil: monotonic time since base
	base    time.Time
	refresh time.Duration
	// loadTimeout bounds a shared load (Options.LoadTimeout).
	loadTimeout time.Duration
	sf          singleflight.Group
	waiting     atomic.Int64 // callers waiting for a shared load (for tests)
	bg          sync.WaitGroup
	m           counters
	gate        Gate // nil: every read may use the cache
}

// entryOverhead approximates the bytes of an entry beyond its key and value:
// the entry struct, the value's interface box and ristretto's bookkeeping.
const entryOverhead = 128

// New returns a Cache over q. opts may be nil for the defaults. It returns an
// error naming the field when an option is invalid. New does no I/O; call
// Close when done to stop ristretto's goroutines.
func New(q gen.Querier, opts *Options) (*Cache, error) {
	if q == nil {
		return nil, errors.New("cachewrap: New needs a gen.Querier (got nil)")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxBytes < 0:
		return nil, fmt.Errorf("cachewrap: MaxBytes must be > 0 (got %d)", o.MaxBytes)
	case o.TTL < 0:
		return nil, fmt.Errorf("cachewrap: TTL must be > 0 (got %s)", o.TTL)
	case o.SWR < 0:
		return nil, fmt.Errorf("cachewrap: SWR must be >= 0 (got %s)", o.SWR)
	case o.NumCounters < 0:
		return nil, fmt.Errorf("cachewrap: NumCounters must be > 0 (got %d)", o.NumCounters)
	case o.RefreshTimeout < 0:
		return nil, fmt.Errorf("cachewrap: RefreshTimeout must be > 0 (got %s)", o.RefreshTimeout)
	case o.LoadTimeout < 0:
		return nil, fmt.Errorf("cachewrap: LoadTimeout must be > 0 (got %s)", o.LoadTimeout)
	}
	o.MaxBytes = cmp.Or(o.MaxBytes, 64<<20)
	o.TTL = cmp.Or(o.TTL, time.Minute)
	o.NumCounters = cmp.Or(o.NumCounters, max(o.MaxBytes/100, 1000))
	o.RefreshTimeout = cmp.Or(o.RefreshTimeout, 30*time.Second)
	o.LoadTimeout = cmp.Or(o.LoadTimeout, o.RefreshTimeout)
	c := &Cache{q: q, seed: maphash.MakeSeed(), now: o.Now, base: time.Now(), refresh: o.RefreshTimeout, loadTimeout: o.LoadTimeout}
	if c.now != nil {
		c.base = c.now()
	}
	for i := range querymeta.Queries {
		qi := &querymeta.Queries[i]
		c.off[i] = !qi.Cached()
		c.ttl[i] = int64(cmp.Or(qi.Cache.TTL, o.TTL))
		c.swr[i] = int64(cmp.Or(qi.Cache.SWR, o.SWR))
	}
	for _, name := range o.Off {
		qi := querymeta.ByName(name)
		if qi == nil {
			return nil, fmt.Errorf("cachewrap: Off: no query named %q (use a gen.Querier method name)", name)
		}
		c.off[qi.ID] = true
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters:        o.NumCounters,
		MaxCost:            o.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true, // costs are bytes; ristretto's own per-item overhead is in entryOverhead
		OnEvict:            func(*ristretto.Item[*entry]) { c.m.evictions.Add(1) },
		OnReject:           func(*ristretto.Item[*entry]) { c.m.rejected.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cachewrap: ristretto: %w", err)
	}
	c.rc = rc
	return c, nil
}

// Close waits for background refreshes and stops the cache's goroutines.
// The Cache must not be used afterwards.
func (c *Cache) Close() {
	c.bg.Wait()
	c.rc.Close()
}

// Gate is what a Cache asks before each cached read, when one is set with
// UseCoherence. *Poller implements it.
type Gate interface {
	// Fresh returns nil when the cache may serve a read now; an error
	// sends the read to the database instead.
	Fresh(ctx context.Context) error
}

// UseCoherence makes every cached read ask g first, and go to the database
// (uncached) when g says no. It must be called before the Cache is used.
// package repo sets it to the Poller in CoherencePoll mode.
func (c *Cache) UseCoherence(g Gate) { c.gate = g }

// admit reports whether the Gate lets a read be served from (and stored
// in) the cache. Callers check c.gate != nil first, inline: a Cache without
// a Gate pays no call.
func (c *Cache) admit(ctx context.Context) bool {
	if err := c.gate.Fresh(ctx); err != nil {
		c.m.bypassed.Add(1)
		return false
	}
	return true
}

// Wait blocks until the values stored so far are visible to reads (ristretto
// applies sets asynchronously) and background refreshes have finished.
// Tests use it; production code has no need to. Like sync.WaitGroup.Wait,
// it must not race with reads that may start a background refresh.
func (c *Cache) Wait() {
	c.bg.Wait()
	c.rc.Wait()
}

// Invalidate makes every cached read of the named tables a miss, for callers
// who changed them other than through this Cache. Names are schema/'s table
// names, optionally prefixed "public."; an unknown name invalidates
// everything, since what it stands for cannot be known. Safe for concurrent
// use.
func (c *Cache) Invalidate(tables ...string) {
	for _, name := range tables {
		id, ok := querymeta.TableByName(strings.TrimPrefix(name, "public."))
		if !ok {
			c.InvalidateAll()
			continue
		}
		c.gens[id].Add(1)
	}
}

// InvalidateAll makes every cached read a miss. Safe for concurrent use.
func (c *Cache) InvalidateAll() {
	for i := range c.gens {
		c.gens[i].Add(1)
	}
}

// Tx returns a gen.Querier for a transaction whose queries run on q, and
// the commit callback. Reads go straight to q, never through the cache (a
// transaction may see its own uncommitted writes, which must not be cached).
// Writes go to q and are recorded; commit, called after COMMIT succeeded,
// invalidates the tables they wrote. After a rollback, skip commit. commit
// may be called more than once; it invalidates only what was written since.
// This is the interface package txn uses.
func (c *Cache) Tx(q gen.Querier) (txq gen.Querier, commit func()) {
	w := &txWrites{}
	return &txQuerier{q: q, w: w}, func() {
		for i := range w.tables {
			if w.tables[i].Swap(false) {
				c.gens[i].Add(1)
			}
		}
	}
}

// txWrites records the tables a transaction wrote.
type txWrites struct {
	tables [querymeta.NumTables]atomic.Bool
}

func (w *txWrites) record(qid querymeta.ID) {
	for _, t := range querymeta.Queries[qid].WriteTables {
		w.tables[t].Store(true)
	}
}

// Wrote invalidates the cached reads of the tables query qid writes. Package
// repo calls it after every write it runs (and after the WAL position was
// recorded), whether or not the write failed: a failed write may have
// reached the server. Safe for concurrent use.
func (c *Cache) Wrote(qid querymeta.ID) {
	for _, t := range querymeta.Queries[qid].WriteTables {
		c.gens[t].Add(1)
	}
}

// Outcome is what Lookup found.
type Outcome uint8

const (
	// Miss: nothing usable is cached; Load the value.
	Miss Outcome = iota
	// Fresh: the value is cached and fresh.
	Fresh
	// Stale: the value is cached, expired but within its
	// stale-while-revalidate window; serve it and Refresh it.
	Stale
	// Off: the cache never serves this query (Options.Off); run it.
	Off
)

// Query is the cache's view of one cached query: how to key its argument
// and how to copy and size its result. cachegen generates one per cached
// query (GetEvalRun, ListEvalResults, ...).
type Query[A, R any] struct {
	id querymeta.ID
	// key builds the key of a read with argument A and, with find set,
	// returns its entry (nil when absent), else the key itself.
	key  func(c *Cache, arg A, find bool) (*entry, string)
	copy func(*R) R // nil: hand out the cached value itself (Shared)
	size func(R) int64
}

// give stores in *v what a reader of the cached value *p gets: a private
// copy, or for a Shared twin (copy nil) the value itself, moved without a
// call.
func (q *Query[A, R]) give(v, p *R) {
	if q.copy == nil {
		*v = *p
		return
	}
	*v = q.copy(p)
}

// ID returns the query's ID.
func (q *Query[A, R]) ID() querymeta.ID { return q.id }

// Key is what Lookup found, for Refresh.
type Key struct {
	e *entry // the stale entry
}

// find returns the entry of key k, or nil.
func (c *Cache) find(k []byte) *entry {
	e, ok := c.rc.Get(maphash.Bytes(c.seed, k))
	if !ok || e.key != string(k) {
		return nil
	}
	return e
}

// Lookup looks up the read of q with argument arg. On Fresh and Stale it
// stores a private copy of the cached value in *v; on Stale, k is what
// Refresh needs. It returns Off when the query is never cached, c is nil, or
// the coherence Gate (UseCoherence) says the cache may not be used now. Safe
// for concurrent use.
func Lookup[A, R any](ctx context.Context, c *Cache, q *Query[A, R], arg A, k *Key, v *R) Outcome {
	if c == nil || c.off[q.id] || (c.gate != nil && !c.admit(ctx)) {
		return Off
	}
	e, _ := q.key(c, arg, true)
	if e != nil && c.clock() < e.fresh {
		c.m.q[q.id].hits.Add(1)
		q.give(v, e.val.(*R))
		return Fresh
	}
	return lookupStale(c, q, e, k, v)
}

// lookupStale is Lookup past a fresh hit, out of its frame.
func lookupStale[A, R any](c *Cache, q *Query[A, R], e *entry, k *Key, v *R) Outcome {
	if e != nil && c.clock() < e.stale {
		c.m.q[q.id].stale.Add(1)
		k.e = e
		q.give(v, e.val.(*R))
		return Stale
	}
	c.m.q[q.id].misses.Add(1)
	return Miss
}

// Load runs fn once for all concurrent misses of the read of q with
// argument arg (see Cache.load), caches its result unless it failed and
// returns a private copy. The key is built again here, with the generations
// of now: a write that ended since Lookup is older than this load.
func Load[A, R any](ctx context.Context, c *Cache, q *Query[A, R], arg A, fn func(context.Context) (R, error)) (R, error) {
	_, key := q.key(c, arg, false)
	v, err := c.load(ctx, q.id, key, q.loader(fn))
	if err != nil {
		var zero R
		return zero, err
	}
	var r R
	q.give(&r, v.(*R))
	return r, nil
}

// Refresh reloads the stale entry Lookup found in the background, once at
// a time, bounded by Options.RefreshTimeout.
func Refresh[A, R any](ctx context.Context, c *Cache, q *Query[A, R], k *Key, fn func(context.Context) (R, error)) {
	c.revalidate(ctx, k.e, q.loader(fn))
}

// loader adapts fn to the cache's loads: the value, boxed, and its size.
func (q *Query[A, R]) loader(fn func(context.Context) (R, error)) loader {
	return func(ctx context.Context) (any, int64, error) {
		v, err := fn(ctx)
		return &v, q.size(v), err
	}
}

// serve is a cached read of Cache's own gen.Querier.
func serve[A, R any](ctx context.Context, c *Cache, q *Query[A, R], arg A, call func(gen.Querier, context.Context, A) (R, error)) (R, error) {
	var (
		k Key
		v R
	)
	switch Lookup(ctx, c, q, arg, &k, &v) {
	case Fresh:
		return v, nil
	case Stale:
		a := arg // captured here, so that a hit does not move arg to the heap
		Refresh(ctx, c, q, &k, func(ctx context.Context) (R, error) { return call(c.q, ctx, a) })
		return v, nil
	case Miss:
		a := arg
		return Load(ctx, c, q, arg, func(ctx context.Context) (R, error) { return call(c.q, ctx, a) })
	}
	return call(c.q, ctx, arg)
}

// write is a write of Cache's own gen.Querier.
func write[A, R any](ctx context.Context, c *Cache, qid querymeta.ID, arg A, call func(gen.Querier, context.Context, A) (R, error)) (R, error) {
	defer c.Wrote(qid)
	return call(c.q, ctx, arg)
}

// errOnly drops the result of a statement that returns only an error.
func errOnly[R any](_ R, err error) error { return err }

// clock returns nanoseconds since New: from Options.Now when set, else
// from the monotonic clock (one clock read, immune to wall-clock steps).
func (c *Cache) clock() int64 {
	if c.now != nil {
		return int64(c.now().Sub(c.base))
	}
	return int64(time.Since(c.base))
}

// loader runs a query and estimates its result's size.
type loader func(ctx context.Context) (val any, size int64, err error)

// load runs fn once for all concurrent misses of k and caches its result
// unless it failed. The shared load runs on a goroutine of its own under a
// context of its own: ctx's values without its cancellation, bounded by
// Options.LoadTimeout. So the caller that started it cannot cancel it for
// the others, and each caller stops waiting when its own ctx ends. A load
// that fails fails for every caller that waited for it; none runs the query
// again.
func (c *Cache) load(ctx context.Context, qid querymeta.ID, key string, fn loader) (any, error) {
	ch := c.sf.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.loadTimeout)
		defer cancel()
		v, size, err := fn(lctx)
		if err != nil {
			return nil, err
		}
		c.store(qid, key, v, size)
		return v, nil
	})
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Cache) store(qid querymeta.ID, key string, v any, size int64) {
	now := c.clock()
	ttl, swr := c.ttl[qid], c.swr[qid]
	e := &entry{key: key, val: v, fresh: now + ttl, stale: now + ttl + swr, qid: qid}
	// No ristretto TTL: freshness is decided by our own clock read in
	// lookup, and a ristretto TTL would cost a second clock read on every
	// hit. Expired and superseded entries are never read again, so TinyLFU
	// evicts them first when MaxBytes is reached.
	if !c.rc.Set(maphash.String(c.seed, key), e, size+int64(len(key))+entryOverhead) {
		c.m.rejected.Add(1)
	}
}

// revalidate refreshes a stale entry in the background, once at a time.
func (c *Cache) revalidate(ctx context.Context, e *entry, fn loader) {
	if !e.refreshing.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.refresh)
		defer cancel()
		if _, err := c.load(ctx, e.qid, e.key, fn); err != nil {
			e.refreshing.Store(false) // let a later read try again
		}
	}()
}

// QueryTables returns the tables the named query (a gen.Querier method name)
// reads and writes, as tools/cachegen derived them from its SQL, and whether
// the Cache ever caches it. ok is false for an unknown name. It reads
// package querymeta's table.
func QueryTables(name string) (reads, writes []string, cached, ok bool) {
	qi := querymeta.ByName(name)
	if qi == nil {
		return nil, nil, false, false
	}
	return slices.Clone(qi.Reads), slices.Clone(qi.Writes), qi.Cached(), true
}

// ReadOnly reports whether the sqlc query named name (gen.Querier's method
// name) only reads tables of schema/, so that it may run on a read replica
// (querymeta.Query.ReadOnly). Any other name reports false.
func ReadOnly(name string) bool {
	qi := querymeta.ByName(name)
	return qi != nil && qi.ReadOnly
}

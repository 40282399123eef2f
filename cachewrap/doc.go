// Package cachewrap provides Cache, the ristretto v2 read cache of evaldb,
// coherent with writes. Package repo's statement path uses it through
// Lookup, Load, Refresh and Wrote; a Cache is also a gen.Querier of its own
// over any gen.Querier given to New (reads served from the cache, writes
// passed through), whose methods go through the same functions.
//
// What it knows about each query comes from package querymeta, and the
// keys, copies and sizes are generated (querier_gen.go, by tools/cachegen
// through `go generate ./...`) from sqlc's output: for each query the
// generator derives from its SQL, with PostgreSQL's own parser, the tables it reads and
// writes (joins, subqueries and CTEs included; a DELETE or UPDATE also writes
// the tables its cascading foreign keys reach), and reads the query's cache
// policy from a line of its comment in queries/:
//
//	-- cache: ttl=30s swr=10s
//	-- cache: off
//
// Reads without a policy get Options.TTL and Options.SWR. Writes, queries of
// system catalogs (pg_stat_activity) and locking reads are never cached.
//
// # Coherence
//
// Each table has a generation number, and the key of a cached read holds the
// generations of the tables it reads. A write through the Cache bumps the
// generations of the tables it writes after it returned; a transaction's
// writes (see Tx) bump them after COMMIT. A read that starts after a write
// returned therefore builds a key no earlier read could have filled, and
// never sees data older than that write. Entries are never deleted to
// invalidate (ristretto's Del can be overtaken by a Set already in flight);
// superseded entries age out by TTL or eviction. Writes made outside the
// process (other instances, psql, migrations) are seen as soon as a Listener
// relays the database's commit-time notifications (repo.Open starts one);
// without a listener, within the TTL, or at once after Invalidate.
//
// # Keys
//
// A key is the query's id, the generations, and the arguments encoded
// injectively (length-prefixed strings, a presence byte for NULL, times as
// instant plus zone), built by generated code into a stack buffer: no fmt or
// reflection. Ristretto keeps only a 64-bit hash of the key (maphash with a
// per-Cache seed); the entry holds the full key and a lookup compares it, so
// a hash collision is a miss, never another query's value.
//
// # Values
//
// Concurrent misses of one key run the query once (singleflight): the shared
// load runs under a context of its own, bounded by Options.LoadTimeout (the
// per-statement deadline in repo), so the first caller giving up does not
// cancel it, each caller stops waiting on its own context, and a load that
// failed is not run again once per waiter. Errors are never cached; every
// value returned is a deep copy (generated per type), so a caller may
// change it freely. Within a query's stale-while-revalidate window an
// expired value is returned at once and refreshed in the background.
//
// # Views
//
// A copy of a row with slices is an allocation that costs more than the
// rest of a hit. Package repo's Views therefore reads through each query's
// Shared twin, which hands out the cached value itself, and wraps it at once
// in a read-only view (view.go: Slice, List, Ptr, RawJSON and the generated
// <Type>View structs): no copy, no allocation, and still nothing a caller
// can change.
package cachewrap

// Package querymeta is what tools/cachegen knows about each sqlc query of
// gen/: its name, SQL and annotation, the tables of schema/ it reads and
// writes (cascades and data-modifying CTEs included), whether it only reads
// (and so may run on a read replica) and its cache policy from the
// "-- cache:" line of its comment in queries/. A batch query (:batchexec,
// :batchmany, :batchone) is never cached.
//
// The table is generated (queries_gen.go) by `go generate ./...`; any
// package may read it. repo routes, retries and invalidates by it, cachewrap
// keys and invalidates by it, and a service can use it to label its own
// metrics or to check at start-up which queries are cached. It imports only
// package gen (for sqlc's SQL constants).
package querymeta

import "time"

// ID indexes Queries: querymeta.GetEvalRun is the ID of gen's GetEvalRun.
type ID uint16

// Table indexes Tables.
type Table uint16

// Kind is a query's sqlc annotation.
type Kind string

// The annotations evaldb's generated code accepts. A batch query
// (BatchExec, BatchMany, BatchOne) is never cached: its Policy.Uncacheable
// says so, since its results are read by the caller after the method
// returns. Its Reads and Writes are derived from its SQL as for any other
// query (one statement of the batch), so the tables it writes invalidate
// cached reads exactly as a single statement's writes do, when the batch
// is closed; a read-only one may run on a replica.
const (
	One        Kind = ":one"
	Many       Kind = ":many"
	Exec       Kind = ":exec"
	ExecRows   Kind = ":execrows"
	ExecResult Kind = ":execresult"
	CopyFrom   Kind = ":copyfrom"
	BatchExec  Kind = ":batchexec"
	BatchMany  Kind = ":batchmany"
	BatchOne   Kind = ":batchone"
)

// Query is what cachegen derived from one query.
type Query struct {
	ID   ID
	Name string // gen.Querier's method name
	// SQL is the statement as gen/ sends it (for :copyfrom, the INSERT in
	// queries/ that sqlc turns into COPY).
	SQL  string
	Kind Kind
	// Operation is the SQL verb: SELECT, INSERT, UPDATE, DELETE, COPY, WITH
	// (a data-modifying CTE), ...
	Operation string
	// Reads and Writes are the schema/ tables the query reads and writes,
	// in name order; ReadTables and WriteTables the same as indexes of
	// Tables.
	Reads, Writes           []string
	ReadTables, WriteTables []Table
	// ReadOnly reports that the query writes nothing (also through a
	// data-modifying CTE), takes no row locks and reads no system catalog or
	// statistics view: it gives the same answer on a streaming replica that
	// has replayed far enough.
	ReadOnly bool
	// Cache is its cache policy.
	Cache Policy
}

// Policy is a query's cache policy.
type Policy struct {
	// Uncacheable says why the query is never cached ("writes", "reads
	// system catalog pg_stat_activity", "cache: off", ...); "" when it is
	// cached.
	Uncacheable string
	// TTL and SWR come from the query's "-- cache: ttl=… swr=…" line; zero
	// means cachewrap.Options' default.
	TTL, SWR time.Duration
}

// Cached reports whether the cache may serve the query.
func (q *Query) Cached() bool { return q.Cache.Uncacheable == "" }

// ByName returns the query of gen.Querier's method name, or nil.
func ByName(name string) *Query {
	for i := range Queries {
		if Queries[i].Name == name {
			return &Queries[i]
		}
	}
	return nil
}

// TableByName returns the index of a schema/ table, and false for a name
// that is not one.
func TableByName(name string) (Table, bool) {
	for i, n := range Tables {
		if n == name {
			return Table(i), true
		}
	}
	return 0, false
}

// Package observe defines the hooks through which evaldb reports what it
// does: each statement (cache lookups included), each transaction and each
// eval-run recording. It is a leaf package with no dependencies, so that
// repo and txn can call an Observer and a tracing package such as
// github.com/aah/evaldb/evalotel can implement one, while a service that
// uses neither links nothing of OpenTelemetry.
//
// An Observer must be safe for concurrent use and cheap: evaldb calls it on
// every statement, including cache hits. No event carries a statement's
// arguments or a connection URL, so no secret can reach an Observer.
package observe

import (
	"context"
	"time"
)

// Observer receives evaldb's events. Set it with repo.Config.Observer (and
// txn.Options.Observer for transactions run outside a Repo). Each Start
// method returns the context the work runs under (a tracing Observer puts
// its span there, so statements inside a transaction become its children)
// and a function that evaldb calls exactly once when the work ends.
type Observer interface {
	StartStatement(ctx context.Context, s *Statement) (context.Context, func(*StatementEnd))
	StartTx(ctx context.Context, t *Tx) (context.Context, TxSpan)
	StartRecord(ctx context.Context, r *Record) (context.Context, func(*RecordEnd))
}

// Server identifies the database a Repo talks to. It never holds a user
// name or a password.
type Server struct {
	Address  string // host name or socket directory of the primary
	Port     int
	Database string // db.namespace
}

// Statement describes one statement before it runs.
type Statement struct {
	// Name is the sqlc query name ("GetEvalRun"): low-cardinality, fit for
	// a span name. Hand-written SQL gets the name of its "-- name:" comment,
	// "BEGIN", "COMMIT" or "ROLLBACK", or "other".
	Name string
	// SQL is the parametrised text. Arguments are never reported.
	SQL string
	// Operation is the SQL verb (SELECT, INSERT, UPDATE, DELETE, COPY, …).
	Operation string
	// ReadOnly says the generator proved the statement only reads.
	ReadOnly bool
	Server   Server
}

// CacheOutcome is what the read cache did for a statement.
type CacheOutcome string

const (
	CacheNone  CacheOutcome = ""      // not a cached query, or the cache is off
	CacheHit   CacheOutcome = "hit"   // served from memory; no connection used
	CacheMiss  CacheOutcome = "miss"  // loaded from the database
	CacheStale CacheOutcome = "stale" // served stale while a refresh runs
)

// StatementEnd describes how a statement ended.
type StatementEnd struct {
	Cache CacheOutcome
	// ConnWait is the time spent waiting for a pooled connection (zero on a
	// cache hit or inside a transaction).
	ConnWait time.Duration
	// Replica reports that a read replica served the statement.
	Replica bool
	// Retries is how many times the statement was run again (never sent,
	// read-only on a dead connection, replica failover).
	Retries int
	// Err is the error returned to the caller (translated: errors.As finds
	// the *pgconn.PgError when the server reported one), nil on success.
	Err error
}

// Tx describes a transaction run by txn.Do.
type Tx struct {
	Isolation string // "" for the server's default
	ReadOnly  bool
	Server    Server
}

// TxSpan follows one transaction through its attempts.
type TxSpan interface {
	// Retry is called before attempt (2, 3, …) starts, with the error that
	// ended the previous one.
	Retry(attempt int, err error)
	// End is called once with the error txn.Do returns.
	End(err error)
}

// Record describes one RecordEvalRun call.
type Record struct {
	Results int // number of results in the run
	Metrics int // number of summary metrics
	Server  Server
}

// Method says how a run's results were sent.
type Method string

const (
	MethodBatch Method = "batch" // one pipelined batch (unnest)
	MethodCopy  Method = "copy"  // COPY inside the transaction
)

// RecordEnd describes how a recording ended.
type RecordEnd struct {
	Method          Method
	AlreadyRecorded bool // identical content was already there
	Err             error
}

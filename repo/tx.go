package repo

import (
	"context"
	"time"

	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/txn"
)

// Tx runs fn in a transaction on the pool with package txn's semantics
// (commit on nil, rollback on error or panic, retries of serialization
// failures and deadlocks, so fn must be safe to run again). opts nil means
// txn's defaults. The transaction waits for a connection exactly as a query
// does: within the pool timeout, failing with a *PoolTimeoutError that
// PoolStats counts, or with pool_timeout=0 for as long as ctx allows
// (opts.MaxWait, when set, bounds it further). When opts.Cache is nil the
// Repo's cache is told what the transaction wrote, after COMMIT (and after
// the WAL position, with replicas); opts.Logger and opts.Observer default to
// the Repo's. Errors are txn.Do's. Safe for concurrent use.
func (r *Repo) Tx(ctx context.Context, opts *txn.Options, fn func(ctx context.Context, tx *txn.Tx) error) error {
	return txn.Do(ctx, r.DB(), r.txOptions(opts), fn)
}

// RecordEvalRun stores a run with its results and metrics atomically, with
// txn.RecordEvalRunWithOptions, and invalidates the cached reads of those
// tables after COMMIT. opts as for Tx.
func (r *Repo) RecordEvalRun(ctx context.Context, run txn.Run, opts *txn.Options) (txn.Recorded, error) {
	return txn.RecordEvalRunWithOptions(ctx, r.DB(), run, r.txOptions(opts))
}

func (r *Repo) txOptions(opts *txn.Options) *txn.Options {
	var o txn.Options
	if opts != nil {
		o = *opts
	}
	if o.Cache == nil && r.cache != nil {
		o.Cache = r.cache
	}
	if o.Logger == nil {
		o.Logger = r.log
	}
	if o.Observer == nil && r.obs != nil {
		o.Observer = serverObserver{Observer: r.obs, server: r.server}
	}
	return &o
}

// PoolTimeout is how long a statement or a transaction's BEGIN through DB()
// waits for a connection (0: as long as ctx allows). txn.Do reads it to
// leave the wait to DB().
func (h handle) PoolTimeout() time.Duration { return h.r.primary.poolTimeout }

// serverObserver fills in the server of the transactions txn reports.
type serverObserver struct {
	observe.Observer
	server observe.Server
}

// StartStatement fills in the server of the statements a transaction runs
// through its typed queries (txn reports them without one).
func (o serverObserver) StartStatement(ctx context.Context, s *observe.Statement) (context.Context, func(*observe.StatementEnd)) {
	if s.Server == (observe.Server{}) {
		s.Server = o.server
	}
	return o.Observer.StartStatement(ctx, s)
}

func (o serverObserver) StartTx(ctx context.Context, t *observe.Tx) (context.Context, observe.TxSpan) {
	t.Server = o.server
	return o.Observer.StartTx(ctx, t)
}

func (o serverObserver) StartRecord(ctx context.Context, rec *observe.Record) (context.Context, func(*observe.RecordEnd)) {
	rec.Server = o.server
	return o.Observer.StartRecord(ctx, rec)
}

package repo

import (
	"context"

	"github.com/aah/evaldb/txn"
)

// Tx runs fn in a transaction on the pool with package txn's semantics
// (commit on nil, rollback on error or panic, retries of serialization
// failures and deadlocks, so fn must be safe to run again). opts nil means
// txn's defaults, except that MaxWait (waiting for a connection and BEGIN)
// defaults to the pool timeout when that is longer than txn's 2 s, so that a
// configured pool_timeout means the same for transactions as for queries;
// when opts.Cache is nil the Repo's cache is told what the transaction
// wrote, after COMMIT, and opts.Logger defaults to the Repo's.
// Errors are txn.Do's. Safe for concurrent use.
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
	if o.MaxWait == 0 && r.settings != nil && r.settings.PoolTimeout > txn.DefaultMaxWait {
		o.MaxWait = r.settings.PoolTimeout
	}
	return &o
}

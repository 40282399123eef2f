// Package txn runs evaldb's transactions: Do runs a function in one
// transaction with Prisma's interactive-transaction knobs (isolation level,
// MaxWait, Timeout) plus bounded retries of serialization failures,
// deadlocks and lost connections, and RecordEvalRun records an evaluation
// run with all of its results and metrics atomically and idempotently.
//
// Both accept anything that can begin a transaction (Beginner): a
// *pgxpool.Pool, a *pgx.Conn, a pgx.Tx (nested: a savepoint, never retried)
// or a pgxmock pool. Errors come back translated by internal/dberr, so
// errors.Is(err, repo.ErrNotFound) and friends work on them.
//
// # Retries
//
// An attempt is BEGIN, fn, COMMIT. It is retried, with exponential backoff
// and jitter, when it failed with SQLSTATE 40001 (serialization failure),
// 40P01 (deadlock detected) or a lost connection before COMMIT was sent, up to
// Options.MaxAttempts and within ctx. fn therefore may run more than once and
// must not have effects outside the transaction that cannot be repeated. When
// the connection is lost while COMMIT is in flight nobody knows whether the
// transaction committed: Do never retries then and returns ErrCommitUnknown.
// RecordEvalRun can do better because the run id is an idempotency key: it
// retries, finds the run already recorded, compares it and returns it.
//
// # Cache coherence
//
// When Options.Cache is set, fn's typed queries go through Cache.Tx, and
// the tables written are invalidated only after COMMIT succeeded, so no
// reader can re-cache a value the transaction is about to replace and see it
// survive the commit. If the outcome of COMMIT is unknown, the tables are
// invalidated too: a needless miss is cheap, a stale entry is not.
package txn

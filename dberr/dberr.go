// Package dberr holds every error evaldb's packages return that a caller may
// want to recognise: sentinels for errors.Is and types for errors.As. It is a
// leaf package (standard library only), like river's rivertype, so that
// repo, txn and cachewrap share the same values and a caller can name them
// without importing the package that returned them: code that only calls
// txn.Do can test errors.Is(err, dberr.ErrPoolTimeout) without importing
// repo (which imports txn).
//
// repo and txn re-export these under their old names (repo.ErrNotFound is
// dberr.ErrNotFound, txn.ErrCommitUnknown is dberr.ErrCommitUnknown), so
// either name works with errors.Is and errors.As.
//
// What each package returns:
//
//   - Every statement (repo.Queries, repo.DB, txn): ErrNotFound,
//     *ConflictError, ErrPoolTimeout (as a *PoolTimeoutError),
//     ErrUnreachable, ErrConnClosed, the caller's context.Canceled or
//     context.DeadlineExceeded, and otherwise the server's
//     *pgconn.PgError, reachable with errors.As.
//   - A batch (sqlc's :batch* queries) adds ErrBatchAborted, for the
//     statements after the one that failed, and ErrSimpleProtocolBatch.
//   - txn.Do and txn.RecordEvalRun add ErrCommitUnknown, ErrTxTimeout and
//     ErrRunConflict (and txn.ValidationError for a run that is not valid).
//   - repo.ParseURL and repo.Open return a *URLError for a bad connection
//     URL parameter.
package dberr

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound means a query that returns one row found none. It plays the
	// part of database/sql's ErrNoRows; the error also wraps pgx.ErrNoRows.
	ErrNotFound = errors.New("evaldb: not found")

	// ErrPoolTimeout means every pooled connection stayed busy for the whole
	// pool timeout (Prisma's P2024). The error is a *PoolTimeoutError, which
	// gives the connection limit and the timeout. Nothing was sent to the
	// server, so the statement may be retried.
	ErrPoolTimeout = errors.New("evaldb: timed out waiting for a free connection from the pool")

	// ErrUnreachable means no connection to the server could be made (wrong
	// host or port, server down, network or firewall, TLS or authentication
	// refused). The error wraps the driver's *pgconn.ConnectError.
	ErrUnreachable = errors.New("evaldb: database server unreachable")

	// ErrConnClosed means the server or the network closed the connection
	// while it was in use. Whether the statement ran is unknown, so a
	// statement that may have written is never retried automatically.
	ErrConnClosed = errors.New("evaldb: connection closed")

	// ErrCommitUnknown means the connection was lost while COMMIT was in
	// flight, so whether the transaction committed is unknown. txn.Do does
	// not retry it; the caller must find out (txn.RecordEvalRun does so by
	// itself). The error also wraps ErrConnClosed.
	ErrCommitUnknown = errors.New("evaldb: connection lost during COMMIT, the transaction may or may not have committed")

	// ErrTxTimeout means a transaction ran longer than txn.Options.Timeout
	// and was rolled back. The error also wraps context.DeadlineExceeded.
	// txn.ErrTimeout is this value.
	ErrTxTimeout = errors.New("evaldb: transaction timed out")

	// ErrBatchAborted is the error of a statement of a batch (sqlc's
	// :batchexec, :batchmany, :batchone) that did not run because an earlier
	// statement of the same batch failed: the server skips the rest of a
	// batch after an error, and the batch's statements are one transaction
	// (outside an explicit transaction, an implicit one), so none of them
	// took effect. The failed statement's own callback gets the cause, and
	// so does the batch's Close. The message names the failed statement.
	ErrBatchAborted = errors.New("evaldb: not run: an earlier statement of the batch failed, and none of its statements took effect")

	// ErrSimpleProtocolBatch means a batch was refused, not sent, because
	// its connection runs in the simple protocol
	// (default_query_exec_mode=simple_protocol), where pgx sends a batch as
	// one multi-statement string with its arguments interpolated by the
	// client.
	ErrSimpleProtocolBatch = errors.New("evaldb: batch refused: its connection is in the simple protocol " +
		"(default_query_exec_mode=simple_protocol), where pgx would send it as one multi-statement string " +
		"with the arguments interpolated by the client; use pgx.QueryExecModeExec (what pgbouncer=true selects) " +
		"or leave the mode at its default")

	// ErrRunConflict means an eval run with the same id is already recorded
	// with different content. The error names the first differences.
	// Recording the same content twice is not an error.
	ErrRunConflict = errors.New("evaldb: eval run already recorded with different content")
)

// ConflictError is a unique-constraint violation (SQLSTATE 23505). Get it
// with errors.As; it unwraps to the server's *pgconn.PgError.
type ConflictError struct {
	// Constraint is the violated constraint's name, e.g. "users_email_key".
	Constraint string
	// Table is the table the constraint belongs to.
	Table string
	// Detail is the server's detail message (it names the duplicate key).
	Detail string
	// Err is the underlying *pgconn.PgError.
	Err error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("evaldb: conflict: %s on %s violates unique constraint %q", e.Detail, e.Table, e.Constraint)
}

func (e *ConflictError) Unwrap() error { return e.Err }

// PoolTimeoutError is the error of a statement (or of a transaction's BEGIN)
// that waited the whole pool timeout for a free connection.
// errors.Is(err, ErrPoolTimeout) holds for it, and so does
// errors.Is(err, context.DeadlineExceeded): Unwrap returns the acquire's
// error, the pool timeout's deadline. Its text gives the connection limit
// and the timeout, as Prisma's P2024 does.
type PoolTimeoutError struct {
	// MaxConns is the pool's connection limit.
	MaxConns int32
	// Timeout is the pool timeout that elapsed.
	Timeout time.Duration
	// Err is the acquire's error.
	Err error
}

func (e *PoolTimeoutError) Error() string {
	return fmt.Sprintf("evaldb: timed out fetching a new connection from the pool "+
		"(connection limit %d, pool timeout %s): every connection stayed busy; "+
		"shorten long queries and transactions, or raise connection_limit or pool_timeout in the database URL",
		e.MaxConns, e.Timeout)
}

// Is makes errors.Is(err, ErrPoolTimeout) hold.
func (e *PoolTimeoutError) Is(target error) bool { return target == ErrPoolTimeout }

// Unwrap returns the acquire's error.
func (e *PoolTimeoutError) Unwrap() error { return e.Err }

// URLError is a connection URL that evaldb refuses: a parameter with a value
// out of range, an unknown or conflicting setting, or a malformed URL. It
// never holds the password. repo.ParseURL and repo.Open return it (wrapped);
// get it with errors.As.
type URLError struct {
	// Param is the parameter's name, or "url" when the URL itself is malformed.
	Param string
	// Value is the offending value (empty for a malformed URL).
	Value string
	// Reason says what is accepted or what to do.
	Reason string
}

func (e *URLError) Error() string {
	if e.Param == "url" {
		return "database URL: " + e.Reason
	}
	return fmt.Sprintf("database URL parameter %s=%q: %s", e.Param, e.Value, e.Reason)
}

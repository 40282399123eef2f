package repo

import "github.com/aah/evaldb/dberr"

// Errors returned by every Repo method and by the accessors of Queries. They
// are the values of the leaf package github.com/aah/evaldb/dberr, which
// documents each one; either name works with errors.Is and errors.As.
var (
	// ErrNotFound is dberr.ErrNotFound: a query that returns one row found
	// none. The error also wraps pgx.ErrNoRows.
	ErrNotFound = dberr.ErrNotFound

	// ErrPoolTimeout is dberr.ErrPoolTimeout: every connection of the pool
	// stayed busy for the whole pool timeout (Prisma's P2024). The error is a
	// *PoolTimeoutError. Nothing was sent to the server: the query may be
	// retried.
	ErrPoolTimeout = dberr.ErrPoolTimeout

	// ErrUnreachable is dberr.ErrUnreachable: no connection to the server
	// could be made.
	ErrUnreachable = dberr.ErrUnreachable

	// ErrConnClosed is dberr.ErrConnClosed: the connection was closed while
	// in use, so whether the statement ran is unknown.
	ErrConnClosed = dberr.ErrConnClosed

	// ErrBatchAborted is dberr.ErrBatchAborted: a statement of a batch did
	// not run because an earlier one failed; none of the batch took effect.
	ErrBatchAborted = dberr.ErrBatchAborted

	// ErrSimpleProtocolBatch is dberr.ErrSimpleProtocolBatch: a batch was
	// refused, unsent, on a connection in the simple protocol.
	ErrSimpleProtocolBatch = dberr.ErrSimpleProtocolBatch
)

// ConflictError is dberr.ConflictError, a unique-constraint violation
// (SQLSTATE 23505); its Constraint field names the constraint.
type ConflictError = dberr.ConflictError

// PoolTimeoutError is dberr.PoolTimeoutError, the error behind
// ErrPoolTimeout: MaxConns and Timeout say which limit was hit.
type PoolTimeoutError = dberr.PoolTimeoutError

// URLError is dberr.URLError, the error of ParseURL (and Open) for a URL or
// parameter evaldb refuses: Param names the parameter.
type URLError = dberr.URLError

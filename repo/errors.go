package repo

import "github.com/aah/evaldb/internal/dberr"

// Errors returned by every Repo method and by the accessors of Queries. They
// are the same values as internal/dberr's, so errors.Is works across evaldb's
// packages (txn, cachewrap).
var (
	// ErrNotFound means a query that returns one row found none, like
	// database/sql's ErrNoRows. The error also wraps pgx.ErrNoRows.
	ErrNotFound = dberr.ErrNotFound

	// ErrPoolTimeout means every connection of the pool stayed busy for the
	// whole pool timeout (Prisma's P2024). The error is a *PoolTimeoutError
	// whose text gives the connection limit and the timeout. Nothing was sent
	// to the server: the query may be retried.
	ErrPoolTimeout = dberr.ErrPoolTimeout

	// ErrUnreachable means no connection to the server could be made (wrong
	// host or port, server down, network or firewall, TLS or authentication
	// refused).
	ErrUnreachable = dberr.ErrUnreachable

	// ErrConnClosed means the server or the network closed the connection
	// while it was in use. Whether the statement ran is unknown, so it is not
	// retried automatically.
	ErrConnClosed = dberr.ErrConnClosed
)

// ConflictError is a unique-constraint violation (SQLSTATE 23505); its
// Constraint field names the constraint. Use errors.As to get it.
type ConflictError = dberr.ConflictError

// PoolTimeoutError is the error behind ErrPoolTimeout: MaxConns and Timeout
// say which limit was hit.
type PoolTimeoutError = dberr.PoolTimeoutError

// Package dberr translates pgx and PostgreSQL errors into evaldb's errors, in
// one place, for every package that talks to the database (repo, txn,
// cachewrap). The sentinels are re-exported by package repo, which is where
// users should refer to them: repo.ErrNotFound is dberr.ErrNotFound.
package dberr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound means a query that returns one row found none. It plays the
	// part of database/sql's ErrNoRows and wraps pgx.ErrNoRows.
	ErrNotFound = errors.New("evaldb: not found")

	// ErrPoolTimeout means every pooled connection stayed busy for the whole
	// pool timeout (Prisma's P2024). The error that wraps it gives the
	// connection limit and the timeout.
	ErrPoolTimeout = errors.New("evaldb: timed out waiting for a free connection from the pool")

	// ErrUnreachable means no connection to the server could be made.
	ErrUnreachable = errors.New("evaldb: database server unreachable")

	// ErrConnClosed means the server or the network closed the connection
	// while it was in use. Whether the statement ran is unknown.
	ErrConnClosed = errors.New("evaldb: connection closed")
)

// ConflictError is a unique-constraint violation (SQLSTATE 23505).
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

// Translate maps a driver error to evaldb's errors, keeping the original
// reachable with errors.As/Is. nil stays nil; errors it does not recognise
// come back unchanged.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrPoolTimeout) ||
		errors.Is(err, ErrUnreachable) || errors.Is(err, ErrConnClosed) {
		return err
	}
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w (%w)", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "23505" {
			return &ConflictError{Constraint: pgErr.ConstraintName, Table: pgErr.TableName, Detail: pgErr.Detail, Err: err}
		}
		if IsConnectionClass(pgErr.Code) {
			return fmt.Errorf("%w: %w", ErrConnClosed, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if pgconn.SafeToRetry(err) {
		// The failure happened before anything was sent.
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, net.ErrClosed) || isClosedConn(err) {
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
	return err
}

// CodeQueryCanceled is the SQLSTATE of a statement the server cancelled
// (query_canceled): on a cancel request, or when statement_timeout or
// lock_timeout ran out.
const CodeQueryCanceled = "57014"

// TranslateCtx is Translate for the error of a statement run under ctx,
// followed by WithContext. It is what repo's executor and txn use.
func TranslateCtx(ctx context.Context, err error) error {
	return WithContext(ctx, Translate(err))
}

// WithContext makes the server's cancellation of a statement look like
// what it is when ctx is done: repo's pools cancel a statement whose
// context ends with a cancel request (pgconn's
// CancelRequestContextWatcherHandler), which keeps the connection
// reusable, so the statement fails with SQLSTATE 57014 rather than with a
// context error. When ctx is done and err carries a 57014
// *pgconn.PgError, the result wraps both ctx.Err() (so errors.Is(err,
// context.Canceled) or context.DeadlineExceeded holds) and err (so
// errors.As still finds the PgError). A 57014 under a live ctx
// (statement_timeout, a cancel sent by someone else) and every other error
// come back unchanged, as does nil.
func WithContext(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	cerr := ctx.Err()
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != CodeQueryCanceled {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// IsConnectionClass reports whether a SQLSTATE means the session is gone:
// class 08 (connection exception) and 57P01-57P03 (admin shutdown, crash
// shutdown, cannot connect now).
func IsConnectionClass(code string) bool {
	if len(code) == 5 && code[:2] == "08" {
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03":
		return true
	}
	return false
}

// NeverSent reports whether err proves that a statement never reached the
// server, so that sending it again cannot run it twice. It is
// pgconn.SafeToRetry, except for pgconn's "conn closed" error: pgx v5.11
// also returns that one when the connection died while a simple-protocol
// statement was running (an Exec without arguments, and so COMMIT), because
// MultiResultReader.NextResult drops the read error and the next read finds
// the connection closed. A statement that got that error may have run (a
// COMMIT may have committed).
func NeverSent(err error) bool {
	if err == nil || !pgconn.SafeToRetry(err) {
		return false
	}
	var r interface{ SafeToRetry() bool }
	for e := err; e != nil; {
		if !errors.As(e, &r) {
			break
		}
		if r.(error).Error() == "conn closed" {
			return false
		}
		u, ok := r.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return true
}

func isClosedConn(err error) bool {
	// pgconn reports use of a connection it already closed as a plain
	// "conn closed" error with no exported type.
	return err.Error() == "conn closed" || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// PoolTimeoutError is the error of a query that waited the whole pool
// timeout for a free connection. errors.Is(err, ErrPoolTimeout) holds for it.
// Its text gives the connection limit and the timeout, as Prisma's P2024 does.
type PoolTimeoutError struct {
	// MaxConns is the pool's connection limit.
	MaxConns int32
	// Timeout is the pool timeout that elapsed.
	Timeout time.Duration
	// Err is the acquire error (the pool timeout's context deadline), kept
	// for debugging. It is deliberately not returned by Unwrap: the caller's
	// own deadline did not pass, and code that checks errors.Is(err,
	// context.DeadlineExceeded) to mean "my caller gave up" (cachewrap's
	// shared loads, for one) must not mistake a pool timeout for that.
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

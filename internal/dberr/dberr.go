// Package dberr translates pgx and PostgreSQL errors into the errors of the
// public package github.com/aah/evaldb/dberr, in one place, for every
// package that talks to the database (repo, txn, cachewrap).
package dberr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/dberr"
)

// The sentinels and types live in the public leaf package
// github.com/aah/evaldb/dberr; these are the same values, for the code that
// translates driver errors into them.
var (
	ErrNotFound      = dberr.ErrNotFound
	ErrPoolTimeout   = dberr.ErrPoolTimeout
	ErrUnreachable   = dberr.ErrUnreachable
	ErrConnClosed    = dberr.ErrConnClosed
	ErrCommitUnknown = dberr.ErrCommitUnknown
	ErrTxTimeout     = dberr.ErrTxTimeout
)

type (
	ConflictError    = dberr.ConflictError
	PoolTimeoutError = dberr.PoolTimeoutError
)

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

// WithContext makes the server's cancellation of a statement, or the
// connection closed under it, look like what it is when ctx is done: repo's pools cancel a statement whose
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
	if errors.As(err, &pgErr) && pgErr.Code == CodeQueryCanceled || diedUnder(err) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// diedUnder reports whether err says the connection went away under the
// statement. pgx closes a connection whose context ended when no cancel
// request answers (and, during COPY, when its writer stops), so under a
// done ctx such an error is the context's doing, whichever goroutine of
// pgx's saw it first.
func diedUnder(err error) bool {
	var netErr net.Error
	return errors.Is(err, ErrConnClosed) || errors.Is(err, net.ErrClosed) || errors.As(err, &netErr) || isClosedConn(err)
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

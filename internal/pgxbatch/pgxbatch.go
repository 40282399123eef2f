// Package pgxbatch holds what repo, txn and cachewrap share about pgx
// batches: whether an executor would send a batch in the simple protocol
// (which evaldb refuses), Results (a batch's results with its errors
// translated once and its end known), and OnClose.
package pgxbatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/dberr"
	idberr "github.com/aah/evaldb/internal/dberr"
)

// ErrSimpleProtocol is dberr.ErrSimpleProtocolBatch.
var ErrSimpleProtocol = dberr.ErrSimpleProtocolBatch

// SimpleProtocol reports whether db sends a batch in the simple protocol.
// It knows pgx's pool, connection and transactions (anything with Conn()
// *pgx.Conn) and anything that says (a SimpleProtocol() bool method, as
// repo's DB() has); anything else (a pgxmock pool sends nothing) reports
// false.
func SimpleProtocol(db any) bool {
	simple, _ := Protocol(db)
	return simple
}

// Protocol is SimpleProtocol, and whether db told: known is false for a db
// it cannot ask (a pgxmock pool, a Beginner of the caller's own), whose
// transactions' connections can be asked instead.
func Protocol(db any) (simple, known bool) {
	switch d := db.(type) {
	case interface{ SimpleProtocol() bool }:
		return d.SimpleProtocol(), true
	case *pgxpool.Pool:
		return d.Config().ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol, true
	case *pgx.Conn:
		return d.Config().DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol, true
	case interface{ Conn() *pgx.Conn }:
		if c := conn(d); c != nil {
			return c.Config().DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol, true
		}
	}
	return false, false
}

// conn returns d.Conn(), or nil when it panics: pgxmock's pool and
// transactions implement Conn by panicking.
func conn(d interface{ Conn() *pgx.Conn }) (c *pgx.Conn) {
	defer func() {
		if recover() != nil {
			c = nil
		}
	}()
	return d.Conn()
}

// Refused is the pgx.BatchResults of a batch that was not sent: every
// result, and Close, report Err. It embeds pgx.BatchResults (nil) only to
// have every method of the pgx version it is built with; those it does not
// override must not be called.
type Refused struct {
	pgx.BatchResults
	Err error
}

func (b Refused) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.Err }
func (b Refused) Query() (pgx.Rows, error)         { return FailedRows(b.Err), b.Err }
func (b Refused) QueryRow() pgx.Row                { return FailedRow(b.Err) }
func (b Refused) Close() error                     { return b.Err }

// FailedRow returns a pgx.Row whose Scan reports err.
func FailedRow(err error) pgx.Row { return errRow{err} }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// FailedRows returns the pgx.Rows of a query that failed before it was
// sent: Err and Scan report err.
func FailedRows(err error) pgx.Rows { return errRows{err: err} }

// errRows embeds pgx.Rows (nil) only to have every method of the pgx
// version it is built with, and overrides each one pgx.Rows has in v5.11.
type errRows struct {
	pgx.Rows
	err error
}

func (errRows) Close()                                       {}
func (r errRows) Err() error                                 { return r.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                          { return r.err }
func (r errRows) Values() ([]any, error)                     { return nil, r.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

// OnClose returns br read as it is, with fn called once, at the first
// Close, with what br's Close returned (pgx's first error of the batch).
func OnClose(br pgx.BatchResults, fn func(error)) pgx.BatchResults {
	return &onClose{BatchResults: br, fn: fn}
}

type onClose struct {
	pgx.BatchResults
	fn   func(error)
	done bool
}

func (b *onClose) Close() error {
	err := b.BatchResults.Close()
	if !b.done {
		b.done = true
		b.fn(err)
	}
	return err
}

// Results is a pgx.BatchResults read through evaldb: each statement's
// error is translated once (dberr's errors, under ctx), the first failure
// is remembered, the statements after it report dberr.ErrBatchAborted (pgx
// reports the same error again for each of them), and Close returns the
// first failure and then calls done with it, once. A batch that was never
// sent (Fail) reports its error for every statement and at Close. No rows
// (pgx.ErrNoRows) is a statement's answer, not a failure of the batch.
//
// It is the one wrapper of pgx.BatchResults evaldb has (repo/batch.go says
// why it must exist). It embeds pgx.BatchResults, so that it has every
// method of the pgx version it is built with (v5.12 added Tx), and
// overrides Exec, Query, QueryRow and Close. Like pgx's, it is not safe for
// concurrent use.
type Results struct {
	pgx.BatchResults // nil until Send (and for an empty batch)
	ctx              context.Context
	done             func(error)
	n, next          int   // statements queued; the next one to read
	failed           int   // the statement whose failure err is, or -1
	err              error // the first failure, translated
	closed           bool
}

// NewResults returns the results of a batch of n statements run under
// ctx; done (may be nil) runs at the first Close.
func NewResults(ctx context.Context, n int, done func(error)) *Results {
	return &Results{ctx: ctx, n: n, failed: -1, done: done}
}

// Send makes b read br, the results of the batch as sent.
func (b *Results) Send(br pgx.BatchResults) { b.BatchResults = br }

// Fail records that the batch was not sent, because of err.
func (b *Results) Fail(err error) {
	if b.err == nil {
		b.err = idberr.TranslateCtx(b.ctx, err)
	}
}

// before returns the error statement i reports without being read: the
// error of a batch that was never sent (or of statement i itself, read
// again), ErrBatchAborted after an earlier statement failed; nil when it
// is to be read.
func (b *Results) before(i int) error {
	switch {
	case b.err != nil && (b.failed < 0 || b.failed == i):
		return b.err
	case b.err != nil:
		return fmt.Errorf("%w (statement %d of %d failed first: %v)", dberr.ErrBatchAborted, b.failed, b.n, b.err)
	case b.closed:
		return errors.New("evaldb: batch already closed")
	case b.BatchResults == nil:
		return errors.New("evaldb: no more results in batch")
	}
	return nil
}

// after translates the error of statement i, remembering it when it is
// the batch's first.
func (b *Results) after(i int, err error) error {
	if err == nil {
		return nil
	}
	if b.err != nil && b.failed == i {
		return b.err // read again (Rows.Err after Next)
	}
	terr := idberr.TranslateCtx(b.ctx, err)
	if b.err == nil {
		b.err, b.failed = terr, i
	}
	return terr
}

func (b *Results) Exec() (pgconn.CommandTag, error) {
	i := b.next
	b.next++
	if err := b.before(i); err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := b.BatchResults.Exec()
	return tag, b.after(i, err)
}

func (b *Results) Query() (pgx.Rows, error) {
	i := b.next
	b.next++
	if err := b.before(i); err != nil {
		return FailedRows(err), err
	}
	rows, err := b.BatchResults.Query()
	if err != nil {
		err = b.after(i, err)
		return FailedRows(err), err
	}
	return &results{Rows: rows, b: b, i: i}, nil
}

func (b *Results) QueryRow() pgx.Row {
	i := b.next
	b.next++
	if err := b.before(i); err != nil {
		return FailedRow(err)
	}
	return &result{row: b.BatchResults.QueryRow(), b: b, i: i}
}

// Close reads what is left of the batch and returns its first failure,
// translated; then, the first time, it calls done with it. A second Close
// returns the same.
func (b *Results) Close() error {
	if b.closed {
		return b.err
	}
	b.closed = true
	if b.BatchResults != nil {
		if err := b.BatchResults.Close(); err != nil && b.err == nil {
			b.Fail(err) // a statement nobody read
		}
	}
	if b.done != nil {
		b.done(b.err)
	}
	return b.err
}

// results is one statement's rows: a failure (which pgx reports at Err)
// is translated and remembered as the batch's.
type results struct {
	pgx.Rows
	b *Results
	i int
}

func (r *results) Err() error { return r.b.after(r.i, r.Rows.Err()) }

// result is one statement's row.
type result struct {
	row pgx.Row
	b   *Results
	i   int
}

func (r *result) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return idberr.TranslateCtx(r.b.ctx, err)
	}
	return r.b.after(r.i, err)
}

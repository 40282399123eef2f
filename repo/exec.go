package repo

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/internal/dberr"
)

// executor is the layer between the typed accessors and the connections:
// it adds the per-statement deadline (socket_timeout), retries once a
// statement that failed before anything was sent (a pooled connection that
// died while idle), and translates driver errors with dberr.TranslateCtx
// (a statement the server cancelled because its ctx ended wraps ctx.Err()).
// Statements that may have reached the server are never retried.
//
// It is safe for concurrent use when db is.
type executor struct {
	db      DBTX
	timeout time.Duration // 0 = no per-statement deadline
	log     *slog.Logger
	level   slog.Leveler // retries are logged when Warn is enabled
	retries atomic.Int64
}

var _ DBTX = (*executor)(nil)

func (e *executor) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.timeout)
}

// retryable reports whether running the statement again is safe: err
// proves it never left this process, or it is one of gen's queries that only
// read (cachewrap.ReadOnly, derived from its SQL) and its connection died
// under it, which is what a pooled connection killed while idle looks like
// when pgxpool hands it out before its idle check. A statement that may
// have written is never run twice.
func retryable(ctx context.Context, sql string, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if dberr.NeverSent(err) {
		return true
	}
	return errors.Is(dberr.Translate(err), dberr.ErrConnClosed) && cachewrap.ReadOnly(QueryName(sql))
}

func (e *executor) noteRetry(ctx context.Context, sql string, err error) {
	e.retries.Add(1)
	if e.level != nil && e.level.Level() > slog.LevelWarn {
		return
	}
	e.log.WarnContext(ctx, "evaldb: retrying statement on a fresh connection; it was never sent, or it only reads",
		"query", QueryName(sql), "error", err)
}

// Exec runs a statement, retrying once if it was never sent.
func (e *executor) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	tag, err := e.db.Exec(ctx, sql, args...)
	if retryable(ctx, sql, err) {
		e.noteRetry(ctx, sql, err)
		tag, err = e.db.Exec(ctx, sql, args...)
	}
	return tag, dberr.TranslateCtx(ctx, err)
}

// Query runs a query, retrying once if it was never sent (whether the
// failure shows at Query or at the first Next).
func (e *executor) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := e.bound(ctx)
	rows, err := e.db.Query(ctx, sql, args...)
	if retryable(ctx, sql, err) {
		if rows != nil {
			rows.Close()
		}
		e.noteRetry(ctx, sql, err)
		rows, err = e.db.Query(ctx, sql, args...)
	}
	if err != nil {
		err = dberr.TranslateCtx(ctx, err)
		cancel()
		return errRows{err}, err
	}
	return &execRows{Rows: rows, e: e, ctx: ctx, cancel: cancel, sql: sql, args: args, errCtx: ctx}, nil
}

// QueryRow runs a query whose first row Scan reads; an error (translated)
// shows at Scan. A failure before sending is retried once.
func (e *executor) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	ctx, cancel := e.bound(ctx)
	return &execRow{row: e.db.QueryRow(ctx, sql, args...), e: e, ctx: ctx, cancel: cancel, sql: sql, args: args}
}

// CopyFrom runs COPY FROM; it is never retried (the row source may have
// been read).
func (e *executor) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	n, err := e.db.CopyFrom(ctx, table, cols, src)
	return n, dberr.TranslateCtx(ctx, err)
}

// SendBatch sends a batch; it is never retried. The deadline ends at Close.
func (e *executor) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	ctx, cancel := e.bound(ctx)
	return &execBatch{br: e.db.SendBatch(ctx, b), ctx: ctx, cancel: cancel}
}

// Begin starts a transaction. The deadline bounds BEGIN only, as pgx's
// context does; statements in the transaction run under their own contexts.
func (e *executor) Begin(ctx context.Context) (pgx.Tx, error) {
	return e.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction with opts; db must support BeginTx unless
// opts is the zero value.
func (e *executor) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	var (
		tx  pgx.Tx
		err error
	)
	if b, ok := e.db.(interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
	}); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else if opts == (pgx.TxOptions{}) {
		tx, err = e.db.Begin(ctx)
	} else {
		return nil, errors.New("repo: this executor cannot set transaction options (no BeginTx)")
	}
	return tx, dberr.TranslateCtx(ctx, err)
}

type execRows struct {
	pgx.Rows
	e      *executor
	ctx    context.Context
	cancel context.CancelFunc
	sql    string
	args   []any
	seen   bool // a row was returned: never retry
	tried  bool
	// errCtx is what Err translates with: ctx, or once the rows released
	// ctx while it was still live, a ctx that never ends, so that our own
	// cancel does not pass a server-side cancellation (statement_timeout)
	// off as the caller's.
	errCtx context.Context
}

func (r *execRows) Next() bool {
	if r.Rows.Next() {
		r.seen = true
		return true
	}
	if !r.seen && !r.tried && retryable(r.ctx, r.sql, r.Rows.Err()) {
		r.tried = true
		err := r.Rows.Err()
		r.Rows.Close()
		r.e.noteRetry(r.ctx, r.sql, err)
		rows, qerr := r.e.db.Query(r.ctx, r.sql, r.args...)
		if qerr != nil {
			if rows != nil {
				rows.Close()
			}
			rows = errRows{qerr}
		}
		r.Rows = rows
		return r.Next()
	}
	r.release()
	return false
}

func (r *execRows) Close() {
	r.Rows.Close()
	r.release()
}

// release ends the statement's deadline.
func (r *execRows) release() {
	if r.ctx.Err() == nil {
		r.errCtx = context.WithoutCancel(r.ctx)
	}
	r.cancel()
}

func (r *execRows) Err() error { return dberr.TranslateCtx(r.errCtx, r.Rows.Err()) }

type execRow struct {
	row    pgx.Row
	e      *executor
	ctx    context.Context
	cancel context.CancelFunc
	sql    string
	args   []any
}

func (r *execRow) Scan(dest ...any) error {
	defer r.cancel()
	err := r.row.Scan(dest...)
	if retryable(r.ctx, r.sql, err) {
		r.e.noteRetry(r.ctx, r.sql, err)
		err = r.e.db.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	return dberr.TranslateCtx(r.ctx, err)
}

type execBatch struct {
	br     pgx.BatchResults
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *execBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.br.Exec()
	return tag, dberr.TranslateCtx(b.ctx, err)
}

func (b *execBatch) Query() (pgx.Rows, error) {
	rows, err := b.br.Query()
	if rows != nil {
		rows = translatedRows{Rows: rows, ctx: b.ctx}
	}
	return rows, dberr.TranslateCtx(b.ctx, err)
}

// translatedRows translates the error its Err reports, for the rows of a
// batch's queries (whose failures surface there, not at Query).
type translatedRows struct {
	pgx.Rows
	ctx context.Context
}

func (r translatedRows) Err() error { return dberr.TranslateCtx(r.ctx, r.Rows.Err()) }

func (b *execBatch) QueryRow() pgx.Row { return translatedRow{ctx: b.ctx, row: b.br.QueryRow()} }

func (b *execBatch) Close() error {
	defer b.cancel()
	return dberr.TranslateCtx(b.ctx, b.br.Close())
}

// translatedRow applies translate (dberr.TranslateCtx when nil) to the
// error of Scan.
type translatedRow struct {
	ctx       context.Context
	row       pgx.Row
	translate func(context.Context, error) error
}

func (r translatedRow) Scan(dest ...any) error {
	translate := r.translate
	if translate == nil {
		translate = dberr.TranslateCtx
	}
	return translate(r.ctx, r.row.Scan(dest...))
}

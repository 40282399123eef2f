package repo

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/internal/dberr"
)

// DBTX is what a Repo runs statements on: sqlc's DBTX plus SendBatch and
// Begin. *pgxpool.Pool, pgx.Tx, *pgx.Conn and pgxmock's pool satisfy it.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// pooled runs each statement on a connection acquired from pool within the
// pool timeout. pgxpool has no acquire timeout of its own: its Acquire
// waits as long as the caller's context allows. pooled bounds only the
// wait with the pool timeout and then runs the statement under the caller's
// context, so a long query is not cut short by the pool timeout.
type pooled struct {
	pool     *pgxpool.Pool
	timeout  time.Duration // 0 = wait forever
	maxConns int32
	timeouts atomic.Int64 // acquires that hit the pool timeout
}

var _ DBTX = (*pooled)(nil)

func (p *pooled) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if p.timeout <= 0 {
		return p.pool.Acquire(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := p.pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		p.timeouts.Add(1)
		return nil, &dberr.PoolTimeoutError{MaxConns: p.maxConns, Timeout: p.timeout, Err: err}
	}
	return c, err
}

func (p *pooled) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	return c.Exec(ctx, sql, args...)
}

func (p *pooled) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return errRows{err}, err
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		c.Release()
		return errRows{err}, err
	}
	return &doneRows{Rows: rows, done: c.Release}, nil
}

func (p *pooled) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := p.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return &doneRow{row: c.QueryRow(ctx, sql, args...), done: c.Release}
}

func (p *pooled) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	return c.CopyFrom(ctx, table, cols, src)
}

func (p *pooled) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	c, err := p.acquire(ctx)
	if err != nil {
		return errBatch{err}
	}
	return &doneBatch{BatchResults: c.SendBatch(ctx, b), done: c.Release}
}

func (p *pooled) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction with opts on a connection acquired within the
// pool timeout; the connection goes back to the pool at Commit or Rollback.
func (p *pooled) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &releaseTx{Tx: tx, release: c.Release}, nil
}

// Ping acquires a connection within the pool timeout and pings the server.
func (p *pooled) Ping(ctx context.Context) error {
	c, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return c.Ping(ctx)
}

// doneRows calls done once when the rows are closed (explicitly or by
// reading them to the end): the pool releases its connection, the replica
// router records the write's WAL position.
type doneRows struct {
	pgx.Rows
	once sync.Once
	done func()
}

func (r *doneRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *doneRows) Close() {
	r.Rows.Close()
	r.once.Do(r.done)
}

// doneRow calls done after Scan.
type doneRow struct {
	row  pgx.Row
	done func()
}

func (r *doneRow) Scan(dest ...any) error {
	defer r.done()
	return r.row.Scan(dest...)
}

// doneBatch calls done once after Close.
type doneBatch struct {
	pgx.BatchResults
	once sync.Once
	done func()
}

func (b *doneBatch) Close() error {
	err := b.BatchResults.Close()
	b.once.Do(b.done)
	return err
}

// releaseTx returns the connection to the pool at Commit or Rollback. Its
// statements' errors go through dberr.WithContext: a statement the server
// cancelled because its ctx ended (see Open) reports ctx.Err(), as pgx's
// default context handling did.
type releaseTx struct {
	pgx.Tx
	once    sync.Once
	release func()
}

func (t *releaseTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.once.Do(t.release)
	return dberr.WithContext(ctx, err)
}

func (t *releaseTx) Rollback(ctx context.Context) error {
	err := t.Tx.Rollback(ctx)
	t.once.Do(t.release)
	return dberr.WithContext(ctx, err)
}

func (t *releaseTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.Tx.Exec(ctx, sql, args...)
	return tag, dberr.WithContext(ctx, err)
}

func (t *releaseTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := t.Tx.Query(ctx, sql, args...)
	if err != nil {
		return rows, dberr.WithContext(ctx, err)
	}
	return ctxRows{Rows: rows, ctx: ctx}, nil
}

func (t *releaseTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return translatedRow{ctx: ctx, row: t.Tx.QueryRow(ctx, sql, args...), translate: dberr.WithContext}
}

func (t *releaseTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	n, err := t.Tx.CopyFrom(ctx, table, cols, src)
	return n, dberr.WithContext(ctx, err)
}

func (t *releaseTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return ctxBatch{BatchResults: t.Tx.SendBatch(ctx, b), ctx: ctx}
}

// ctxRows and ctxBatch apply dberr.WithContext to a transaction's results.
type ctxRows struct {
	pgx.Rows
	ctx context.Context
}

func (r ctxRows) Err() error { return dberr.WithContext(r.ctx, r.Rows.Err()) }

type ctxBatch struct {
	pgx.BatchResults
	ctx context.Context
}

func (b ctxBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	return tag, dberr.WithContext(b.ctx, err)
}

func (b ctxBatch) Query() (pgx.Rows, error) {
	rows, err := b.BatchResults.Query()
	if err != nil {
		return rows, dberr.WithContext(b.ctx, err)
	}
	return ctxRows{Rows: rows, ctx: b.ctx}, nil
}

func (b ctxBatch) QueryRow() pgx.Row {
	return translatedRow{ctx: b.ctx, row: b.BatchResults.QueryRow(), translate: dberr.WithContext}
}

func (b ctxBatch) Close() error { return dberr.WithContext(b.ctx, b.BatchResults.Close()) }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errRows struct{ err error }

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

type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return errRows(b), b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow(b) }
func (b errBatch) Close() error                     { return b.err }

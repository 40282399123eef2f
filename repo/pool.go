package repo

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	idberr "github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/internal/pgxbatch"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/querymeta"
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

// handle is DB(): hand-written SQL on the primary through the thinnest
// layer that keeps what Queries() promises. Each statement acquires a
// connection within the pool timeout, runs under the per-statement
// deadline, and its errors are translated once. With replicas, a statement
// that may have written records the primary's WAL position, so that the
// Repo's next reads see it. It is safe for concurrent use when the target
// is.
//
// The rows, row and batch of Query, QueryRow and SendBatch must be wrapped
// (release, the deadline's end, translation at Err and Scan), because the
// connection was acquired here under the pool timeout and pgxpool only
// releases connections it acquired itself. The wrappers make no network
// call: after a write read through rows, the WAL position is left to the
// background poll (reads use the primary until it has it).
type handle struct{ r *Repo }

// SimpleProtocol reports whether the primary's connections send queries in
// the simple protocol, for code that asks before it sends a batch
// (txn.RecordEvalRun then uses COPY).
func (h handle) SimpleProtocol() bool { return h.r.primary.simple }

var _ DBTX = handle{}

// begin starts one hand-written statement: its deadline, its observer, a
// connection (nil for New's DBTX) within the pool timeout.
func (h handle) begin(ctx context.Context, sql string) (*stmtRun, error) {
	t := h.r.primary
	name := QueryName(sql)
	q := querymeta.ByName(name) // nil: hand-written SQL, which may write
	s := &stmtRun{r: h.r, ctx: ctx, cancel: func() {}, db: t.db, write: q == nil || !q.ReadOnly}
	if h.r.obs != nil {
		s.ctx, s.end = h.r.obs.StartStatement(ctx, h.r.statementFor(sql, name, q))
		s.ev = &s.evEnd
	}
	if t.stmtTimeout > 0 {
		s.ctx, s.cancel = context.WithTimeout(s.ctx, t.stmtTimeout)
	}
	if t.pool == nil {
		return s, nil
	}
	c, err := t.acquire(s.ctx, s.ev)
	if err != nil {
		return nil, s.finish(err)
	}
	s.db, s.release = c, c.Release
	return s, nil
}

// stmtRun is one hand-written statement in flight.
type stmtRun struct {
	r       *Repo
	ctx     context.Context
	cancel  context.CancelFunc
	db      DBTX
	release func() // nil for New's DBTX
	write   bool
	once    sync.Once
	end     func(*observe.StatementEnd)
	ev      *observe.StatementEnd // &evEnd with an observer, else nil
	evEnd   observe.StatementEnd
	err     error // the translated error finish returned
	done    bool  // finish ran
}

// finish ends the statement once: releases the connection, translates err
// under the statement's ctx, tells the observer and, after a write with
// replicas, records the WAL position (now when sync, else by the poller).
func (s *stmtRun) finish(err error) error {
	s.once.Do(func() {
		s.done = true
		s.err = idberr.TranslateCtx(s.ctx, err)
		if s.release != nil {
			s.release()
		}
		s.cancel()
		if s.write && s.r.rep != nil {
			s.r.rep.markUnknown()
		}
		if s.end != nil {
			s.ev.Err = s.err
			s.end(s.ev)
		}
	})
	return s.err
}

func (h handle) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	s, err := h.begin(ctx, sql)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := s.db.Exec(s.ctx, sql, args...)
	return tag, s.finish(err)
}

func (h handle) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	s, err := h.begin(ctx, sql)
	if err != nil {
		return pgxbatch.FailedRows(err), err
	}
	rows, err := s.db.Query(s.ctx, sql, args...)
	if err != nil {
		if rows != nil {
			rows.Close()
		}
		err = s.finish(err)
		return pgxbatch.FailedRows(err), err
	}
	return &handleRows{Rows: rows, s: s}, nil
}

func (h handle) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	s, err := h.begin(ctx, sql)
	if err != nil {
		return pgxbatch.FailedRow(err)
	}
	return &handleRow{row: s.db.QueryRow(s.ctx, sql, args...), s: s}
}

func (h handle) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	s, err := h.begin(ctx, "COPY")
	if err != nil {
		return 0, err
	}
	n, err := s.db.CopyFrom(s.ctx, table, cols, src)
	return n, s.finish(err)
}

func (h handle) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if h.r.primary.simple {
		return pgxbatch.Refused{Err: pgxbatch.ErrSimpleProtocol}
	}
	s, err := h.begin(ctx, "batch")
	if err != nil {
		return pgxbatch.Refused{Err: err}
	}
	// Read as the statement path's batches are: each error translated once,
	// the statements after a failed one ErrBatchAborted; the statement ends
	// at Close.
	res := pgxbatch.NewResults(s.ctx, b.Len(), func(err error) { _ = s.finish(err) })
	res.Send(s.db.SendBatch(s.ctx, b))
	return res
}

func (h handle) Begin(ctx context.Context) (pgx.Tx, error) {
	return h.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction on a connection acquired within the pool
// timeout; the connection goes back to the pool at Commit or Rollback, and
// a Commit of a read-write transaction records the WAL position (with
// replicas) before it returns. The per-statement deadline bounds BEGIN only.
func (h handle) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	t := h.r.primary
	bctx := ctx
	if t.stmtTimeout > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, t.stmtTimeout)
		defer cancel()
	}
	tx, err := h.beginTx(bctx, t, opts)
	return tx, idberr.TranslateCtx(bctx, err)
}

func (h handle) beginTx(ctx context.Context, t *target, opts pgx.TxOptions) (pgx.Tx, error) {
	if t.pool == nil {
		if b, ok := t.db.(interface {
			BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
		}); ok {
			return b.BeginTx(ctx, opts)
		}
		if opts == (pgx.TxOptions{}) {
			return t.db.Begin(ctx)
		}
		return nil, errors.New("repo: this executor cannot set transaction options (no BeginTx)")
	}
	c, err := t.acquire(ctx, nil)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	ptx := &poolTx{Tx: tx, release: c.Release}
	if h.r.rep != nil && opts.AccessMode != pgx.ReadOnly {
		ptx.rep = h.r.rep
	}
	return ptx, nil
}

// Ping checks that the primary answers, waiting at most the pool timeout
// for a connection.
func (h handle) Ping(ctx context.Context) error { return idberr.TranslateCtx(ctx, h.ping(ctx)) }

func (h handle) ping(ctx context.Context) error {
	t := h.r.primary
	if t.pool == nil {
		p, ok := t.db.(interface{ Ping(context.Context) error })
		if !ok {
			return errors.New("repo: Ping: the executor given to New has no Ping method")
		}
		return p.Ping(ctx)
	}
	c, err := t.acquire(ctx, nil)
	if err != nil {
		return err
	}
	defer c.Release()
	return c.Ping(ctx)
}

// handleRows ends its statement when the rows are closed or read to the
// end; Err is translated.
type handleRows struct {
	pgx.Rows
	s *stmtRun
}

func (r *handleRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *handleRows) Close() {
	r.Rows.Close()
	r.s.finish(r.Rows.Err())
}

// Err is translated under the statement's ctx while it runs; once the rows
// are closed, it is what finish translated before it ended the
// per-statement deadline (so that our own cancel does not pass a
// server-side cancellation off as the caller's).
func (r *handleRows) Err() error {
	if r.s.done {
		return r.s.err
	}
	return idberr.TranslateCtx(r.s.ctx, r.Rows.Err())
}

// handleRow ends its statement at Scan.
type handleRow struct {
	row pgx.Row
	s   *stmtRun
}

func (r *handleRow) Scan(dest ...any) error { return r.s.finish(r.row.Scan(dest...)) }

// poolTx returns its connection to the pool at Commit or Rollback. Commit
// of a read-write transaction on a Repo with replicas records the primary's
// WAL position before it returns, and so before txn tells the cache: the
// one ordered list of after-commit actions is this Commit (WAL position),
// then txn's cache invalidation. Errors of Commit, Rollback and Exec go
// through dberr.WithContext: a statement the server cancelled because its
// ctx ended (see cancelOnDone) reports ctx.Err().
type poolTx struct {
	pgx.Tx
	once    sync.Once
	release func()
	rep     *replicaSet // nil: no WAL position to record
}

func (t *poolTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.once.Do(t.release)
	if t.rep != nil {
		// Also when COMMIT failed: its outcome may be unknown.
		_ = t.rep.noteWrite(ctx)
	}
	return idberr.WithContext(ctx, err)
}

func (t *poolTx) Rollback(ctx context.Context) error {
	err := t.Tx.Rollback(ctx)
	t.once.Do(t.release)
	return idberr.WithContext(ctx, err)
}

func (t *poolTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.Tx.Exec(ctx, sql, args...)
	return tag, idberr.WithContext(ctx, err)
}

func (t *poolTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	n, err := t.Tx.CopyFrom(ctx, table, cols, src)
	return n, idberr.WithContext(ctx, err)
}

func hostPort(host string, port uint16) string { return host + ":" + strconv.Itoa(int(port)) }

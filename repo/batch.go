package repo

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/pgxbatch"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/querymeta"
)

// The statement path of sqlc's batch queries (:batchexec, :batchmany,
// :batchone).
//
// sqlc's batch method queues one statement per element of its slice, calls
// SendBatch on its DBTX and returns its <Name>BatchResults, which the
// caller reads later, lazily (Exec, Query or QueryRow with a callback per
// statement, then Close). So run, which returns only once the statement is
// over, cannot take it. The facade (queries_gen.go) hands the sqlc method
// to runBatch instead, with a DBTX whose SendBatch does run's steps 2 to 7
// for the batch as a whole:
//
//  2. routing: a read-only batch goes to a replica that has replayed this
//     Repo's latest write (a replica whose pool fails before anything is
//     sent falls over to the primary), anything else to the primary;
//  3. the acquire of a connection within the pool timeout (target.acquire);
//  4. the per-statement deadline, over the whole batch: it ends at Close;
//  5. error translation, once per error (dberr's errors); the statements
//     after the one that failed report dberr.ErrBatchAborted;
//  6. no retry: a sent batch may have written, and its results are already
//     the caller's;
//  7. at Close, after the connection went back to the pool and if the
//     batch may have written: the primary's WAL position (read-your-writes)
//     and then the cache generations of the tables it writes.
//
// The Observer's statement ends at Close too. A batch is never cached.
//
// SendBatch returns a pgxbatch.Results, the one wrapper of
// pgx.BatchResults on the statement path (batchEnd is what it runs at
// Close). It must exist because the results are read lazily
// and hold the connection until Close: the connection was acquired here
// under the pool timeout (pgxpool releases only connections it acquired
// itself), the deadline must last until the last result is read, and the
// WAL position, the invalidation and the Observer's end can only come
// after the batch is over, which only Close knows. It embeds
// pgx.BatchResults, so it has every method of the pgx version it is built
// with (v5.12 added Tx), and overrides Exec, Query, QueryRow and Close.
//
// A batch is refused, not sent, when its connection runs in the simple
// protocol (dberr.ErrSimpleProtocolBatch).

// runBatch runs the sqlc batch method fn through the statement path.
func runBatch[A, B any](ctx context.Context, r *Repo, q *querymeta.Query, arg A, fn func(*gen.Queries, context.Context, A) B) B {
	return fn(gen.New(&batchDB{r: r, q: q}), ctx, arg)
}

// A query set without batch queries leaves runBatch unused.
var _ = runBatch[struct{}, struct{}]

// batchDB is the gen.DBTX of one batch query: only SendBatch is called.
type batchDB struct {
	r *Repo
	q *querymeta.Query
}

var errNotBatch = errors.New("repo: internal error: a batch query's method ran a statement outside its batch")

func (d *batchDB) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errNotBatch
}

func (d *batchDB) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return pgxbatch.FailedRows(errNotBatch), errNotBatch
}

func (d *batchDB) QueryRow(context.Context, string, ...any) pgx.Row {
	return pgxbatch.FailedRow(errNotBatch)
}

func (d *batchDB) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errNotBatch
}

// SendBatch routes the batch, acquires its connection within the pool
// timeout and sends it under the per-statement deadline. A failure before
// anything was sent (pool timeout, closed pool, simple protocol) is what
// every result and Close report.
func (d *batchDB) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	r, q := d.r, d.q
	e := &batchEnd{r: r, q: q}
	if r.obs != nil {
		ctx, e.end = r.obs.StartStatement(ctx, &r.observed[q.ID])
		e.ev = &e.evEnd
	}
	t := r.primary
	var rep *replica
	if rs := r.rep; rs != nil && q.ReadOnly && b.Len() > 0 {
		if rep = rs.pick(); rep != nil {
			t = rep.t
		} else {
			rs.primaryReads.Add(1)
		}
	}
	if t.stmtTimeout > 0 && b.Len() > 0 {
		ctx, e.cancel = context.WithTimeout(ctx, t.stmtTimeout)
	}
	res := pgxbatch.NewResults(ctx, b.Len(), e.done)
	switch {
	case b.Len() == 0:
		return res // nothing to send, and no connection to hold
	case t.simple:
		res.Fail(pgxbatch.ErrSimpleProtocol)
		return res
	case t.pool == nil:
		e.sent = true
		res.Send(t.db.SendBatch(ctx, b))
		return res
	}
	c, err := t.acquire(ctx, e.ev)
	if err != nil && rep != nil && replicaFailover(ctx, err) {
		// Nothing was sent: the primary may take it.
		r.rep.markDown(ctx, rep, err)
		r.rep.primaryReads.Add(1)
		rep, t = nil, r.primary
		c, err = t.acquire(ctx, e.ev)
	}
	if err != nil {
		res.Fail(err)
		return res
	}
	e.release = c.Release
	if rep != nil {
		rep.reads.Add(1)
		if e.ev != nil {
			e.ev.Replica = true
		}
	}
	e.sent = true
	res.Send(c.SendBatch(ctx, b))
	return res
}

// batchEnd is what a batch of the statement path does at its Close.
type batchEnd struct {
	r       *Repo
	q       *querymeta.Query
	cancel  context.CancelFunc    // nil: no deadline
	release func()                // nil: no connection acquired
	ev      *observe.StatementEnd // &evEnd with an observer, else nil
	evEnd   observe.StatementEnd
	end     func(*observe.StatementEnd)
	sent    bool
}

// done runs once, at the batch's first Close, with its first error
// (translated): it releases the connection, ends the deadline and then,
// after a batch that was sent and may have written, sends reads to the
// primary until the replicas' poller has read the primary's WAL position
// (markUnknown: Close makes no round trip of evaldb's own) and invalidates
// the cached reads of the tables it writes; last, it ends the Observer's
// statement.
func (e *batchEnd) done(err error) {
	if e.release != nil {
		e.release()
	}
	if e.cancel != nil {
		e.cancel()
	}
	if e.sent && !e.q.ReadOnly {
		if rs := e.r.rep; rs != nil {
			// No round trip in Close: reads use the primary until the
			// poller has read the WAL position this write left.
			rs.markUnknown()
		}
		if e.r.cache != nil && len(e.q.WriteTables) > 0 {
			e.r.cache.Wrote(e.q.ID)
		}
	}
	if e.end != nil {
		e.ev.Err = err
		e.end(e.ev)
	}
}

package txn

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/pgxbatch"
	"github.com/aah/evaldb/observe"
)

// batchTx is the pgx.Tx under a transaction's typed queries. A batch
// (sqlc's :batch* queries) is read through pgxbatch.Results, as outside a
// transaction: each statement's error is translated, the statements after
// a failed one report dberr.ErrBatchAborted, and Close returns the first
// failure. A batch on a connection in the simple protocol, where pgx would
// send it as one multi-statement string, is refused without being sent.
// Everything else is the transaction's own.
type batchTx struct{ pgx.Tx }

func (t batchTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	res := pgxbatch.NewResults(ctx, b.Len(), nil)
	switch {
	case b.Len() == 0:
	case pgxbatch.SimpleProtocol(t.Tx):
		res.Fail(pgxbatch.ErrSimpleProtocol)
	default:
		res.Send(t.Tx.SendBatch(ctx, b))
	}
	return res
}

// endAtClose ends a batch's statement when the batch is closed, with the
// batch's first error: its results are read after the method returned.
func (o observedQuerier) endAtClose(end func(*observe.StatementEnd)) func(pgx.BatchResults) pgx.BatchResults {
	return func(br pgx.BatchResults) pgx.BatchResults {
		return pgxbatch.OnClose(br, func(err error) { o.end(end, err) })
	}
}

package cachewrap

import (
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/pgxbatch"
	"github.com/aah/evaldb/querymeta"
)

// wroteAtClose is how Cache's gen.Querier runs a batch that writes
// (sqlc's :batchexec, :batchmany, :batchone): its results are read after
// the method returned, so the generations of the tables query qid writes
// are bumped when the batch is closed (by its Exec, Query or QueryRow, or
// by Close), whether or not it failed, and not when it is sent: a read that
// started between the two could otherwise cache what the batch is about to
// change. A batch is never cached.
func (c *Cache) wroteAtClose(qid querymeta.ID) func(pgx.BatchResults) pgx.BatchResults {
	return func(br pgx.BatchResults) pgx.BatchResults {
		return pgxbatch.OnClose(br, func(error) { c.Wrote(qid) })
	}
}

package txn

import (
	"context"

	"github.com/aah/evaldb/gen"
	idberr "github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/querymeta"
)

// observedQuerier wraps a transaction's typed queries so that each
// statement is reported to obs (its methods are generated, in
// observed_gen.go). The statements run on the transaction's connection, so
// there is no cache outcome, connection wait or retry to report. The
// Statement's Server is empty: repo's Observer fills it in.
type observedQuerier struct {
	q   gen.Querier
	obs observe.Observer
}

func (o observedQuerier) start(ctx context.Context, id querymeta.ID) (context.Context, func(*observe.StatementEnd)) {
	q := &querymeta.Queries[id]
	return o.obs.StartStatement(ctx, &observe.Statement{Name: q.Name, SQL: q.SQL, Operation: q.Operation, ReadOnly: q.ReadOnly})
}

func (o observedQuerier) end(end func(*observe.StatementEnd), err error) {
	end(&observe.StatementEnd{Err: idberr.Translate(err)})
}

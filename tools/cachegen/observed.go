package main

import "strings"

// emitObserved returns txn/observed_gen.go: a gen.Querier that reports each
// statement a transaction runs through its typed queries to an
// observe.Observer, as repo's facade does for statements outside
// transactions, so that a transaction's span has its statements as
// children. txn.Do wraps a transaction's queries with it when
// Options.Observer is set. A batch's statement ends when the batch is
// closed (gen.Wrap<Name>Batch, stmtgen.go), not when it is sent.
func emitObserved(pkg *genPkg) ([]byte, error) {
	e := &emitter{pkg: pkg, helpers: map[string]string{}}
	for _, m := range pkg.methods {
		sig, call := e.signature(m)
		e.p("// %s reports gen.Querier.%s to the Observer.", m.name, m.name)
		e.p("func (o observedQuerier) %s {", sig)
		e.p("ctx, end := o.start(ctx, querymeta.%s)", m.name)
		if m.batch {
			// The statement ends when the batch is closed, with its first
			// error.
			e.p("return gen.Wrap%sBatch(o.q.%s, o.endAtClose(end))", m.name, call)
			e.p("}")
			e.p("")
			continue
		}
		if m.result == nil {
			e.p("err := o.q.%s", call)
			e.p("o.end(end, err)")
			e.p("return err")
		} else {
			e.p("v, err := o.q.%s", call)
			e.p("o.end(end, err)")
			e.p("return v, err")
		}
		e.p("}")
		e.p("")
	}
	body := e.b.String()
	e.b.Reset()
	e.p("%s", header)
	e.p("")
	e.p("package txn")
	e.p("")
	std, third := []string{"context"}, []string{}
	for _, im := range []struct{ use, path string }{{"json.", "encoding/json"}, {"time.", "time"}} {
		if strings.Contains(body, im.use) {
			std = append(std, im.path)
		}
	}
	for _, im := range []struct{ use, path string }{{"uuid.", "github.com/google/uuid"}, {"pgconn.", "github.com/jackc/pgx/v5/pgconn"}} {
		if strings.Contains(body, im.use) {
			third = append(third, im.path)
		}
	}
	paths := append(std, "")
	if len(third) > 0 {
		paths = append(append(paths, third...), "")
	}
	e.imports(append(paths, "github.com/aah/evaldb/gen", "github.com/aah/evaldb/querymeta")...)
	e.p("var _ gen.Querier = observedQuerier{}")
	e.p("")
	e.b.WriteString(body)
	return e.format()
}

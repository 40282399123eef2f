package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// stmtgen writes gen/statements_gen.go: for every query of sqlc's output,
// the pieces of its generated method as standalone code, so that code that
// pipelines several statements in one pgx.Batch or loads rows with COPY
// (txn.RecordEvalRun) and tests (pgxmock rows) use what sqlc derived from
// schema/ and queries/ instead of column lists written by hand:
//
//	<Name>Args(params) []any         the statement's arguments, in order
//	Scan<Name>(row pgx.Row) (T, error) one row, scanned as the method does
//	<Name>Columns []string             the result columns, in scan order
//	<Name>Values(row T) []any          a result row's values, in column order
//	<Name>Table, <Name>Columns         a :copyfrom query's table and columns
//	<Name>CopyValues(dst, *Params)     one COPY row, appended to dst
//	New<Name>BatchResults(br, n)       a :batch* query's results over br
//	Wrap<Name>Batch(b, wrap)           the same results read through wrap(br)
//
// For a :batch* query, <Name>Args takes one element of the method's slice
// and returns that statement's arguments, and the columns, scan and values
// are those of one statement's rows. New<Name>BatchResults and
// Wrap<Name>Batch reach the pgx.BatchResults inside sqlc's
// <Name>BatchResults (whose fields are unexported), so that a layer over
// gen.Querier can act when a batch is closed (cachewrap invalidates then,
// txn's Observer ends the statement then) and a test fake can build
// results; cachegen checks sqlc's struct still has the fields they set.
//
// <Name>Args are exactly what sqlc's method sends, so that a pgxmock test
// can expect them. <Name>CopyValues hands pgx uuid.UUID fields as
// pgtype.UUID, which it encodes 20 or more times faster (2-7 µs and 20
// allocations a value on the development machine without the uuid codec
// repo registers, against under 0.1 µs): over 10,000 COPY rows that is 20 to
// 70 ms.
type stmtgen struct {
	fset    *token.FileSet
	structs map[string]*ast.StructType
	b       bytes.Buffer
	uuid    bool // the pgUUID helpers are used
}

type stmtFunc struct {
	name     string
	params   []*ast.Field // after ctx
	args     []ast.Expr   // statement arguments
	scanArgs []ast.Expr   // &i.Field...
	rowVar   string
	rowType  ast.Expr
	copyTbl  string
	copyCols []string
	copyVals []ast.Expr // r.rows[0].Field...
	decl     *ast.FuncDecl
	itemsAt  int  // index of `items := []T{}` in decl's body (a :many method), or -1
	batch    bool // a :batch* query: params is one element of its slice
	found    bool
}

// emitStatements returns gen/statements_gen.go and, for each :many query
// whose top-level LIMIT binds an integer argument, that argument's source
// (see prealloc.go).
func emitStatements(genDir string) ([]byte, map[string]string, error) {
	g := &stmtgen{fset: token.NewFileSet(), structs: map[string]*ast.StructType{}}
	files, err := filepath.Glob(filepath.Join(genDir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	funcs := map[string]*stmtFunc{}
	var order []string
	iterValues := map[string][]ast.Expr{}    // iterator type -> Values() elements
	consts := map[string]string{}            // the SQL of each query
	imports := map[string]string{}           // package name -> import path, from sqlc's files
	var batches []*stmtFunc                  // the :batch* methods
	batchReads := map[string]*ast.FuncDecl{} // query name -> its results' Exec, Query or QueryRow
	for _, f := range files {
		if strings.HasSuffix(f, "_gen.go") || strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(g.fset, f, nil, 0)
		if err != nil {
			return nil, nil, err
		}
		for _, im := range af.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = path
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if vs, ok := s.(*ast.ValueSpec); ok && d.Tok == token.CONST && len(vs.Names) == 1 && len(vs.Values) == 1 {
						if bl, ok := vs.Values[0].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							consts[vs.Names[0].Name], _ = strconv.Unquote(bl.Value)
						}
					}
					if ts, ok := s.(*ast.TypeSpec); ok {
						if st, ok := ts.Type.(*ast.StructType); ok {
							g.structs[ts.Name.Name] = st
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) != 1 || d.Body == nil {
					continue
				}
				recv := typeName(d.Recv.List[0].Type)
				if strings.HasPrefix(recv, "iteratorFor") && d.Name.Name == "Values" {
					ast.Inspect(d.Body, func(n ast.Node) bool {
						if cl, ok := n.(*ast.CompositeLit); ok {
							iterValues[recv] = cl.Elts
							return false
						}
						return true
					})
					continue
				}
				if strings.HasSuffix(recv, "BatchResults") {
					switch d.Name.Name {
					case "Exec", "Query", "QueryRow":
						batchReads[strings.TrimSuffix(recv, "BatchResults")] = d
					}
					continue
				}
				if recv != "Queries" || !d.Name.IsExported() {
					continue
				}
				sf := &stmtFunc{name: d.Name.Name, params: d.Type.Params.List[1:], decl: d, itemsAt: manyItems(d)}
				if !g.inspect(d, sf) {
					if bf := g.inspectBatch(d); bf != nil {
						batches = append(batches, bf)
					}
					continue
				}
				funcs[sf.name] = sf
				order = append(order, sf.name)
			}
		}
	}
	sort.Strings(order)
	var body bytes.Buffer
	limits := map[string]string{}
	for _, n := range order {
		sf := funcs[n]
		if sf.copyTbl != "" {
			sf.copyVals = iterValues["iteratorFor"+sf.name]
		}
		if err := g.emit(sf); err != nil {
			return nil, nil, fmt.Errorf("gen.%s: %w", sf.name, err)
		}
		if sf.itemsAt >= 0 {
			g.emitInto(sf)
			lim, err := g.limitArg(sf, consts[sf.name])
			if err != nil {
				return nil, nil, err
			}
			if lim != "" {
				limits[sf.name] = lim
			}
		}
	}
	sort.Slice(batches, func(i, j int) bool { return batches[i].name < batches[j].name })
	for _, bf := range batches {
		if rd := batchReads[bf.name]; rd != nil {
			g.inspect(rd, bf) // the Scan of its results
		}
		if err := g.emitBatch(bf); err != nil {
			return nil, nil, fmt.Errorf("gen.%s: %w", bf.name, err)
		}
	}
	body, g.b = g.b, bytes.Buffer{}
	g.p("// Code generated by cachegen from sqlc's gen/*.sql.go. DO NOT EDIT.")
	g.p("")
	g.p("package gen")
	g.p("")
	imports["pgx"], imports["pgtype"] = "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgtype"
	used := body.String()
	if g.uuid {
		used += " uuid.UUID pgtype.UUID"
	}
	var paths []string
	for name, path := range imports {
		if strings.Contains(used, name+".") {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	g.p("import (")
	for _, path := range paths {
		g.p("%q", path)
	}
	g.p(")")
	g.p("")
	g.p("var _ pgx.Row")
	g.p("")
	g.b.Write(body.Bytes())
	if g.uuid {
		g.p("func pgUUID(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: true} }")
		g.p("")
		g.p("func pgUUIDPtr(u *uuid.UUID) pgtype.UUID {")
		g.p("if u == nil {")
		g.p("return pgtype.UUID{}")
		g.p("}")
		g.p("return pgtype.UUID{Bytes: *u, Valid: true}")
		g.p("}")
	}
	src, err := format.Source(g.b.Bytes())
	if err != nil {
		return g.b.Bytes(), nil, fmt.Errorf("gofmt gen/statements_gen.go: %w", err)
	}
	return src, limits, nil
}

func (g *stmtgen) p(f string, args ...any) {
	fmt.Fprintf(&g.b, f, args...)
	g.b.WriteByte('\n')
}

func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return typeName(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}

// inspect finds, in sqlc's method for one query, the statement call, the
// Scan call and the declaration of the scanned variable. It reports whether
// the method runs one statement on q.db.
func (g *stmtgen) inspect(d *ast.FuncDecl, sf *stmtFunc) bool {
	found := false
	vars := map[string]ast.Expr{}
	ast.Inspect(d.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ValueSpec:
			if len(n.Names) == 1 && n.Type != nil {
				vars[n.Names[0].Name] = n.Type
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "QueryRow", "Query", "Exec":
				if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "db" && len(n.Args) >= 2 {
					sf.args, found = n.Args[2:], true
				}
			case "CopyFrom":
				if len(n.Args) >= 3 {
					if t := stringLits(n.Args[1]); len(t) == 1 {
						sf.copyTbl = t[0]
					}
					sf.copyCols, found = stringLits(n.Args[2]), true
				}
			case "Scan":
				sf.scanArgs = n.Args
			}
		}
		return true
	})
	if len(sf.scanArgs) > 0 {
		sf.rowVar = rootIdent(sf.scanArgs[0])
		sf.rowType = vars[sf.rowVar]
	}
	return found
}

func stringLits(e ast.Expr) []string {
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range cl.Elts {
		if bl, ok := el.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			s, _ := strconv.Unquote(bl.Value)
			out = append(out, s)
		}
	}
	return out
}

func rootIdent(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.UnaryExpr:
			e = x.X
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func (g *stmtgen) src(e ast.Node) string {
	var b bytes.Buffer
	_ = printer.Fprint(&b, g.fset, e)
	return b.String()
}

// arg returns the source of one statement argument, as pgtype.UUID when it
// is a uuid.
func (g *stmtgen) arg(e ast.Expr, typ string) string {
	s := g.src(e)
	switch typ {
	case "uuid.UUID":
		g.uuid = true
		return "pgUUID(" + s + ")"
	case "*uuid.UUID":
		g.uuid = true
		return "pgUUIDPtr(" + s + ")"
	}
	return s
}

func (g *stmtgen) emit(sf *stmtFunc) error {
	var ps, names []string
	for _, f := range sf.params {
		for _, n := range f.Names {
			ps = append(ps, n.Name+" "+g.src(f.Type))
			names = append(names, n.Name)
		}
	}
	if sf.copyTbl != "" {
		if len(sf.copyVals) != len(sf.copyCols) || len(sf.params) != 1 {
			return fmt.Errorf("cannot read sqlc's COPY iterator (%d values for %d columns)", len(sf.copyVals), len(sf.copyCols))
		}
		elem := strings.TrimPrefix(g.src(sf.params[0].Type), "[]")
		g.p("// %sTable and %sColumns are the table and columns gen.Queries.%s COPYs into.", sf.name, sf.name, sf.name)
		g.p("const %sTable = %q", sf.name, sf.copyTbl)
		g.p("")
		g.p("var %sColumns = []string{%s}", sf.name, quoteAll(sf.copyCols))
		g.p("")
		g.p("// %sCopyValues appends one COPY row of %s to dst, in %sColumns order.", sf.name, sf.name, sf.name)
		g.p("func %sCopyValues(dst []any, r *%s) []any {", sf.name, elem)
		var vs []string
		for _, v := range sf.copyVals {
			sel, ok := v.(*ast.SelectorExpr)
			if !ok {
				return fmt.Errorf("unexpected COPY value %s", g.src(v))
			}
			typ := g.fieldType(elem, sel.Sel.Name)
			vs = append(vs, g.arg(&ast.SelectorExpr{X: ast.NewIdent("r"), Sel: sel.Sel}, typ))
		}
		g.p("return append(dst, %s)", strings.Join(vs, ", "))
		g.p("}")
		g.p("")
		return nil
	}
	if sf.batch {
		g.p("// %sArgs returns the arguments gen.Queries.%s queues with the SQL %s", sf.name, sf.name, sf.name)
		g.p("// for one element of its slice, in order: expect them in a pgxmock test.")
	} else {
		g.p("// %sArgs returns the arguments gen.Queries.%s sends with the SQL %s,", sf.name, sf.name, sf.name)
		g.p("// in order: queue them in a pgx.Batch, or expect them in a pgxmock test.")
	}
	g.p("func %sArgs(%s) []any {", sf.name, strings.Join(ps, ", "))
	var as []string
	for _, a := range sf.args {
		if el, ok := a.(*ast.Ellipsis); ok {
			_ = el
			return fmt.Errorf("variadic arguments are not supported")
		}
		as = append(as, g.src(a))
	}
	g.p("return []any{%s}", strings.Join(as, ", "))
	g.p("}")
	g.p("")
	if len(sf.scanArgs) == 0 || sf.rowType == nil {
		return nil
	}
	rt := g.src(sf.rowType)
	var cols, vals []string
	for _, a := range sf.scanArgs {
		u, ok := a.(*ast.UnaryExpr)
		if !ok {
			return fmt.Errorf("unexpected Scan argument %s", g.src(a))
		}
		vals = append(vals, g.src(u.X))
		switch x := u.X.(type) {
		case *ast.SelectorExpr:
			cols = append(cols, g.column(rt, x.Sel.Name))
		case *ast.Ident:
			cols = append(cols, x.Name)
		default:
			return fmt.Errorf("unexpected Scan argument %s", g.src(a))
		}
	}
	g.p("// %sColumns are the columns %s returns, in the order Scan%s reads them.", sf.name, sf.name, sf.name)
	g.p("var %sColumns = []string{%s}", sf.name, quoteAll(cols))
	g.p("")
	g.p("// Scan%s scans one row of %s as gen.Queries.%s does.", sf.name, sf.name, sf.name)
	g.p("func Scan%s(row pgx.Row) (%s, error) {", sf.name, rt)
	g.p("var %s %s", sf.rowVar, rt)
	g.p("err := row.Scan(%s)", strings.Join(srcAll(g, sf.scanArgs), ", "))
	g.p("return %s, err", sf.rowVar)
	g.p("}")
	g.p("")
	g.p("// %sValues returns a row of %s as values in %sColumns order.", sf.name, sf.name, sf.name)
	g.p("func %sValues(%s %s) []any {", sf.name, sf.rowVar, rt)
	g.p("return []any{%s}", strings.Join(vals, ", "))
	g.p("}")
	g.p("")
	return nil
}

func (g *stmtgen) fieldType(structName, field string) string {
	if st := g.structs[structName]; st != nil {
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.Name == field {
					return g.src(f.Type)
				}
			}
		}
	}
	return ""
}

// column is the column name of a field of a row struct: its json tag
// (sqlc.yaml sets emit_json_tags with snake case), else the field name.
func (g *stmtgen) column(structName, field string) string {
	if st := g.structs[structName]; st != nil {
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.Name == field && f.Tag != nil {
					tag, _ := strconv.Unquote(f.Tag.Value)
					if j, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ","); j != "" {
						return j
					}
				}
			}
		}
	}
	return field
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func srcAll(g *stmtgen, es []ast.Expr) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = g.src(e)
	}
	return out
}

// inspectBatch reads a :batch* method of sqlc: it queues
// `batch.Queue(Name, vals...)` for each element `a` of its one slice
// parameter and returns &<Name>BatchResults{...}. It returns nil for any
// other method.
func (g *stmtgen) inspectBatch(d *ast.FuncDecl) *stmtFunc {
	if d.Type.Results == nil || len(d.Type.Results.List) != 1 || typeName(d.Type.Results.List[0].Type) != d.Name.Name+"BatchResults" {
		return nil
	}
	ps := d.Type.Params.List[1:]
	if len(ps) != 1 || len(ps[0].Names) != 1 {
		return nil
	}
	at, ok := ps[0].Type.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return nil
	}
	sf := &stmtFunc{name: d.Name.Name, itemsAt: -1, batch: true}
	var elem string
	ast.Inspect(d.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.RangeStmt:
			if id, ok := n.Value.(*ast.Ident); ok {
				elem = id.Name
			}
		case *ast.AssignStmt:
			if len(n.Lhs) == 1 && len(n.Rhs) == 1 && rootIdent(n.Lhs[0]) == "vals" {
				if cl, ok := n.Rhs[0].(*ast.CompositeLit); ok {
					sf.args, sf.found = cl.Elts, true
				}
			}
		}
		return true
	})
	if !sf.found || elem == "" {
		return nil
	}
	sf.params = []*ast.Field{{Names: []*ast.Ident{ast.NewIdent(elem)}, Type: at.Elt}}
	return sf
}

// emitBatch writes a :batch* query's <Name>Args (per statement), its
// columns, scan and values (per row), and the two ways to its results.
func (g *stmtgen) emitBatch(sf *stmtFunc) error {
	res := sf.name + "BatchResults"
	st := g.structs[res]
	if st == nil {
		return fmt.Errorf("no type %s in gen/ (is gen/ from sqlc?)", res)
	}
	want := map[string]string{"br": "pgx.BatchResults", "tot": "int"}
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			if w, ok := want[n.Name]; ok && g.src(f.Type) == w {
				delete(want, n.Name)
			}
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("sqlc's %s no longer has the fields br pgx.BatchResults and tot int that cachegen's "+
			"New%s and Wrap%sBatch set: this sqlc is newer than cachegen knows; teach stmtgen.go its batch results "+
			"(or pin the sqlc of tools/go.mod back)", res, res, sf.name)
	}
	if err := g.emit(sf); err != nil {
		return err
	}
	g.p("// New%s returns sqlc's results of a %s batch of n statements,", res, sf.name)
	g.p("// read from br (a test fake's results, or a batch sent by other code).")
	g.p("func New%s(br pgx.BatchResults, n int) *%s {", res, res)
	g.p("return &%s{br: br, tot: n}", res)
	g.p("}")
	g.p("")
	g.p("// Wrap%sBatch makes b read its batch through wrap(its pgx.BatchResults)", sf.name)
	g.p("// and returns b: a layer over gen.Querier that must act when the batch is")
	g.p("// read or closed wraps it here. b may be nil.")
	g.p("func Wrap%sBatch(b *%s, wrap func(pgx.BatchResults) pgx.BatchResults) *%s {", sf.name, res, res)
	g.p("if b != nil {")
	g.p("b.br = wrap(b.br)")
	g.p("}")
	g.p("return b")
	g.p("}")
	g.p("")
	return nil
}

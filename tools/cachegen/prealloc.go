package main

import (
	"fmt"
	"go/ast"
	"go/token"
	"strings"
)

// Pages without the garbage of growing a slice (issue 16). sqlc's :many
// methods start from an empty slice and append, so a page of 100 rows
// allocates the slice six or seven times over. For every :many method,
// gen/statements_gen.go gets a twin, <Name>Into, that appends to a slice
// the caller passes; when the query's top-level LIMIT is one of its
// integer parameters, repo's facade passes a slice of that capacity (up to
// repo's maxPrealloc), so a full page allocates its slice once.

// manyItems finds, in sqlc's method body, the statement `items := []T{}`
// that starts a :many result. It returns its index in the body, or -1.
func manyItems(d *ast.FuncDecl) int {
	for i, st := range d.Body.List {
		as, ok := st.(*ast.AssignStmt)
		if !ok || as.Tok != token.DEFINE || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
			continue
		}
		if id, ok := as.Lhs[0].(*ast.Ident); !ok || id.Name != "items" {
			continue
		}
		if cl, ok := as.Rhs[0].(*ast.CompositeLit); ok && len(cl.Elts) == 0 {
			if _, ok := cl.Type.(*ast.ArrayType); ok {
				return i
			}
		}
	}
	return -1
}

// emitInto emits <Name>Into: sqlc's method with items as a parameter
// instead of a new empty slice, otherwise the same statements.
func (g *stmtgen) emitInto(sf *stmtFunc) {
	d := *sf.decl
	elem := d.Body.List[sf.itemsAt].(*ast.AssignStmt).Rhs[0].(*ast.CompositeLit).Type
	params := *d.Type.Params
	params.List = append(append([]*ast.Field{}, params.List...), &ast.Field{Names: []*ast.Ident{ast.NewIdent("items")}, Type: elem})
	ft := *d.Type
	ft.Params = &params
	body := *d.Body
	body.List = append(append([]ast.Stmt{}, d.Body.List[:sf.itemsAt]...), d.Body.List[sf.itemsAt+1:]...)
	d.Type, d.Body, d.Name, d.Doc = &ft, &body, ast.NewIdent(sf.name+"Into"), nil
	g.p("// %sInto runs %s as gen.Queries.%s does, appending its rows to items;", sf.name, sf.name, sf.name)
	g.p("// a caller that knows how many rows to expect passes a slice of that capacity.")
	g.p("%s", g.src(&d))
	g.p("")
}

// limitArg returns the source of the argument that sql's top-level LIMIT
// binds (as sqlc's method passes it, e.g. "arg.RowLimit"), when that
// argument is an integer, else "".
func (g *stmtgen) limitArg(sf *stmtFunc, sql string) (string, error) {
	tree, err := parseJSON(sql)
	if err != nil {
		return "", fmt.Errorf("parse the SQL of %s: %w", sf.name, err)
	}
	stmts, _ := tree.(map[string]any)["stmts"].([]any)
	if len(stmts) != 1 {
		return "", nil
	}
	stmt, _ := stmts[0].(map[string]any)["stmt"].(map[string]any)
	sel, _ := stmt["SelectStmt"].(map[string]any)
	lim, _ := sel["limitCount"].(map[string]any)
	if tc, ok := lim["TypeCast"].(map[string]any); ok {
		lim, _ = tc["arg"].(map[string]any)
	}
	pr, ok := lim["ParamRef"].(map[string]any)
	if !ok {
		return "", nil
	}
	n, _ := pr["number"].(float64)
	if n < 1 || int(n) > len(sf.args) {
		return "", nil
	}
	a := sf.args[int(n)-1]
	typ := ""
	switch x := a.(type) {
	case *ast.SelectorExpr: // arg.Field of the params struct
		if len(sf.params) == 1 {
			typ = g.fieldType(g.src(sf.params[0].Type), x.Sel.Name)
		}
	case *ast.Ident: // a parameter of its own
		for _, f := range sf.params {
			for _, name := range f.Names {
				if name.Name == x.Name {
					typ = g.src(f.Type)
				}
			}
		}
	}
	switch strings.TrimSpace(typ) {
	case "int32", "int64", "int", "int16":
		return g.src(a), nil
	}
	return "", nil
}

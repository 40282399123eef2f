package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"strings"
)

// Read-only views of cached values (cachewrap/view.go): a view of a gen
// struct with slices or pointers is a generated struct of the same fields,
// in the same order and with the same JSON tags, whose plain fields are
// copies and whose slices and pointers are wrapped in cachewrap's read-only
// Slice, Ptr, List and RawJSON.

// viewType returns the type, as seen from package cachewrap, of the view of
// a value of type t, generating view structs on first use. A type without
// mutable parts is its own view.
func (e *emitter) viewType(t ast.Expr) (string, error) {
	if !e.needsCopy(t) {
		return e.typeSrc(t), nil
	}
	switch t := t.(type) {
	case *ast.Ident:
		return e.viewStruct(t)
	case *ast.SelectorExpr: // json.RawMessage
		return "RawJSON", nil
	case *ast.StarExpr:
		if e.needsCopy(t.X) {
			return "", fmt.Errorf("no read-only view of %s: it points to a value with slices or pointers", e.typeSrc(t))
		}
		return "Ptr[" + e.typeSrc(t.X) + "]", nil
	case *ast.ArrayType:
		if !e.needsCopy(t.Elt) {
			return "Slice[" + e.typeSrc(t.Elt) + "]", nil
		}
		id, ok := t.Elt.(*ast.Ident)
		if !ok {
			return "", fmt.Errorf("no read-only view of %s: only slices of plain values or of structs have one", e.typeSrc(t))
		}
		v, err := e.viewStruct(id)
		if err != nil {
			return "", err
		}
		return "List[" + e.typeSrc(id) + ", " + v + "]", nil
	}
	return "", fmt.Errorf("no read-only view of %s", e.typeSrc(t))
}

// viewOf returns the expression, in package cachewrap, of the view of expr,
// a value of type t.
func (e *emitter) viewOf(expr string, t ast.Expr) (string, error) {
	vt, err := e.viewType(t)
	if err != nil {
		return "", err
	}
	switch t := t.(type) {
	case *ast.Ident:
		if e.needsCopy(t) {
			return vt + "{}.view(&" + expr + ")", nil
		}
	case *ast.SelectorExpr, *ast.StarExpr, *ast.ArrayType:
		if e.needsCopy(t) {
			return vt + "{" + expr + "}", nil
		}
	}
	return expr, nil
}

// rawOf returns the expression of the gen value a view field expr of type t
// shows.
func (e *emitter) rawOf(expr string, t ast.Expr) string {
	if !e.needsCopy(t) {
		return expr
	}
	switch t.(type) {
	case *ast.Ident:
		return expr + ".raw()"
	case *ast.SelectorExpr:
		return expr + ".b"
	case *ast.StarExpr:
		return expr + ".p"
	}
	return expr + ".s"
}

// viewStruct generates <Name>View, the view of the gen struct id.
func (e *emitter) viewStruct(id *ast.Ident) (_ string, err error) {
	name := id.Name + "View"
	if _, ok := e.helpers[name]; ok {
		return name, nil
	}
	e.helpers[name] = "" // reserve: a struct may hold views of others
	defer func() {
		if err != nil { // no view: a later use of the type must fail too
			delete(e.helpers, name)
		}
	}()
	st, ok := e.pkg.structs[id.Name]
	if !ok {
		return "", fmt.Errorf("no read-only view of %s: not a struct of package gen", id.Name)
	}
	copyFn, err := e.copyFunc(id)
	if err != nil {
		return "", err
	}
	var decl, view, raw bytes.Buffer
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 {
			return "", fmt.Errorf("no read-only view of gen.%s: it embeds %s", id.Name, e.typeSrc(f.Type))
		}
		vt, err := e.viewType(f.Type)
		if err != nil {
			return "", fmt.Errorf("gen.%s: %w", id.Name, err)
		}
		for _, n := range f.Names {
			if n.Name == "Row" {
				return "", fmt.Errorf("no read-only view of gen.%s: its field Row would hide the view's Row method; rename the column", id.Name)
			}
			tag := ""
			if f.Tag != nil {
				tag = " " + f.Tag.Value
			}
			fmt.Fprintf(&decl, "%s %s%s\n", n.Name, vt, tag)
			x, err := e.viewOf("p."+n.Name, f.Type)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&view, "%s: %s,\n", n.Name, x)
			fmt.Fprintf(&raw, "%s: %s,\n", n.Name, e.rawOf("v."+n.Name, f.Type))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// %s is a read-only view of a cached gen.%s: its plain fields are\n", name, id.Name)
	fmt.Fprintf(&b, "// copies, its slices and pointers only read. Row returns a private copy.\n")
	fmt.Fprintf(&b, "type %s struct {\n%s}\n\n", name, decl.String())
	fmt.Fprintf(&b, "// New%s returns the read-only view of *p. The caller must not change\n// *p afterwards.\n", name)
	fmt.Fprintf(&b, "func New%s(p *gen.%s) %s { return %s{}.view(p) }\n\n", name, id.Name, name, name)
	fmt.Fprintf(&b, "func (%s) view(p *gen.%s) %s {\nreturn %s{\n%s}\n}\n\n", name, id.Name, name, name, view.String())
	fmt.Fprintf(&b, "func (v %s) raw() gen.%s {\nreturn gen.%s{\n%s}\n}\n\n", name, id.Name, id.Name, raw.String())
	fmt.Fprintf(&b, "func (%s) clone(p *gen.%s) gen.%s { return %s(p) }\n\n", name, id.Name, id.Name, copyFn)
	fmt.Fprintf(&b, "// Row returns a private copy of the row, which the caller may change.\n")
	fmt.Fprintf(&b, "func (v %s) Row() gen.%s {\nr := v.raw()\nreturn %s(&r)\n}\n", name, id.Name, copyFn)
	e.helpers[name] = b.String()
	return name, nil
}

// viewResult returns, for a cached read whose result is of type t, the type
// of its view as seen from package repo and the expression turning the
// result v into it.
func (e *emitter) viewResult(t ast.Expr) (typ, expr string, err error) {
	vt, err := e.viewType(t)
	if err != nil {
		return "", "", err
	}
	if !e.needsCopy(t) {
		return vt, "v", nil
	}
	switch t := t.(type) {
	case *ast.Ident:
		// A concrete call: through a generic one, v would escape.
		return "cachewrap." + vt, "cachewrap.New" + vt + "(&v)", nil
	case *ast.SelectorExpr:
		return "cachewrap.RawJSON", "cachewrap.RawJSONOf(v)", nil
	case *ast.StarExpr:
		return "cachewrap." + vt, "cachewrap.PtrOf(v)", nil
	case *ast.ArrayType:
		if !e.needsCopy(t.Elt) {
			return "cachewrap." + vt, "cachewrap.SliceOf(v)", nil
		}
		ev, _ := e.viewType(t.Elt)
		return strings.Replace("cachewrap."+vt, ", ", ", cachewrap.", 1), "cachewrap.ListOf[cachewrap." + ev + "](v)", nil
	}
	return "", "", fmt.Errorf("no read-only view of %s", e.typeSrc(t))
}

// emitViewsTest writes cachewrap/views_gen_test.go: viewOfResult, which
// makes of a cached read's result the view repo's Views returns, so that
// cachewrap's tests check every view against its row.
func emitViewsTest(pkg *genPkg) ([]byte, error) {
	e := &emitter{pkg: pkg, helpers: map[string]string{}}
	e.p("%s", header)
	e.p("")
	e.p("package cachewrap")
	e.p("")
	e.imports("github.com/aah/evaldb/gen")
	e.p("var _ gen.Querier")
	e.p("")
	e.p("// viewOfResult returns the read-only view repo's Views makes of v, a result")
	e.p("// of the cached query name: v itself when its type has no slices or pointers,")
	e.p("// nil when the query has no view.")
	e.p("func viewOfResult(name string, v any) any {")
	e.p("switch name {")
	for _, m := range pkg.methods {
		if uncacheable(m) != "" || m.result == nil {
			continue
		}
		_, conv, err := e.viewResult(m.result)
		if err != nil {
			continue
		}
		e.p("case %q:", m.name)
		e.p("v := v.(%s)", e.typeSrc(m.result))
		e.p("return %s", strings.ReplaceAll(conv, "cachewrap.", ""))
	}
	e.p("}")
	e.p("return nil")
	e.p("}")
	return e.format()
}

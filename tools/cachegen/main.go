// Command cachegen generates, from sqlc's output, evaldb's one statement
// path: querymeta/queries_gen.go (the per-query metadata table),
// repo/queries_gen.go (the typed facade of repo.Queries, one line per
// method into repo's generic run) and cachewrap/querier_gen.go (the cache's
// keys, copies and sizes, and its own gen.Querier); also
// gen/statements_gen.go (arguments, scans and columns per query, stmtgen.go),
// cachewrap/querier_fake_gen_test.go (fakegen.go), and
// schema/generated/notify_gen.sql with schema/tables_gen.go (triggers.go).
//
// It reads gen/ (the Querier interface, its doc comments, the exported query
// constants and the row and parameter types), parses every query's SQL with
// PostgreSQL's own parser (pg_query_go) to find the tables it reads and
// writes, follows the views, functions, triggers and cascading foreign keys
// of schema/ (sql.go), and reads each
// query's cache policy from a "cache:" line of its comment in queries/:
//
//	-- cache: ttl=30s swr=10s
//	-- cache: off
//	-- cache: reads=eval_runs,eval_results   (for calls it cannot analyse)
//
// It is the whole of `make generate` (and of `go generate`, through the
// root's generate.go): it runs sqlc and then its own steps into a scratch
// directory and moves the results into place only when every step
// succeeded (see generate in pipeline.go).
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	root := flag.String("root", ".", "repository root (holds gen/, schema/, queries/ and cachewrap/)")
	only := flag.Bool("only-cachegen", false, "skip sqlc and the scratch directory: regenerate from root/gen in place")
	flag.Parse()
	var err error
	if *only {
		err = run(*root)
	} else {
		err = generate(*root, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cachegen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	si, err := loadSchema(filepath.Join(root, "schema"))
	if err != nil {
		return fmt.Errorf("load schema: %w", err)
	}
	pkg, err := loadGen(filepath.Join(root, "gen"))
	if err != nil {
		return fmt.Errorf("load gen: %w", err)
	}
	stmts, limits, err := emitStatements(filepath.Join(root, "gen"))
	if err != nil {
		return err
	}
	pkg.limits = limits
	fake, err := emitFake(filepath.Join(root, "gen"))
	if err != nil {
		return err
	}
	for _, m := range pkg.methods {
		sql, ok := pkg.consts[m.name]
		if !ok {
			sql, err = querySQLFromFiles(filepath.Join(root, "queries"), m.name)
			if err != nil {
				return err
			}
		}
		a, err := si.analyze(sql)
		if err != nil {
			return fmt.Errorf("query %s: %w", m.name, err)
		}
		m.sql = sql
		if m.kind, err = queryKind(m, sql); err != nil {
			return err
		}
		if m.policy, err = parsePolicy(m.doc); err != nil {
			return fmt.Errorf("query %s: %w (fix its comment in queries/*.sql)", m.name, err)
		}
		if m.batch && (m.policy.ttl != 0 || m.policy.swr != 0) {
			return fmt.Errorf("query %s is %s: a batch is never cached (its results are read lazily by the caller), "+
				"so cache: ttl= and swr= mean nothing for it; remove them from its comment in queries/*.sql, "+
				"or write the read as :one or :many to have it cached", m.name, m.kind)
		}
		if a, err = si.resolve(a, m.policy); err != nil {
			return fmt.Errorf("query %s: %w", m.name, err)
		}
		m.access = a
		m.write = len(a.writes) > 0 || a.primaryOnly != ""
	}
	files, err := emit(pkg, si.relations())
	if err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(root, "schema", "generated", "notify_gen.sql"), emitTriggers(si)); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(root, "schema", "tables_gen.go"), emitTables(si)); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(root, "gen", "statements_gen.go"), stmts); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(root, "cachewrap", "querier_fake_gen_test.go"), fake); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeIfChanged(filepath.Join(root, f.path), f.src); err != nil {
			return err
		}
	}
	return nil
}

func writeIfChanged(path string, src []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(src) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, src, 0o644)
}

// queryKind reads m's sqlc annotation from the "-- name: X :kind" line of
// its SQL and checks that the facade can take its shape.
func queryKind(m *method, sql string) (string, error) {
	line, _, _ := strings.Cut(sql, "\n")
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "--" || f[1] != "name:" {
		return "", fmt.Errorf("query %s: its SQL does not start with a \"-- name: %s :kind\" line", m.name, m.name)
	}
	kind := f[3]
	switch kind {
	case ":one", ":many", ":execrows", ":execresult", ":copyfrom":
		if m.batch {
			return "", fmt.Errorf("query %s (%s): gen.Querier's method returns *%sBatchResults, want (T, error)", m.name, kind, m.name)
		}
		if m.result == nil {
			return "", fmt.Errorf("query %s (%s): gen.Querier's method returns only an error, want (T, error)", m.name, kind)
		}
	case ":exec":
		if m.result != nil {
			return "", fmt.Errorf("query %s (%s): gen.Querier's method returns (T, error), want error", m.name, kind)
		}
	case ":batchexec", ":batchmany", ":batchone":
		// sqlc's batch method queues one statement per element of its slice
		// argument and returns *<Name>BatchResults, which the caller reads
		// lazily; repo runs it through runBatch (repo/batch.go).
		if !m.batch {
			return "", fmt.Errorf("query %s (%s): gen.Querier's method does not return *%sBatchResults (is gen/ from sqlc?)", m.name, kind, m.name)
		}
	default:
		return "", fmt.Errorf("query %s: unknown sqlc annotation %s (want :one, :many, :exec, :execrows, :execresult, :copyfrom, :batchexec, :batchmany or :batchone)", m.name, kind)
	}
	if m.tooMany {
		return "", fmt.Errorf("query %s has %d parameters besides ctx: evaldb's facade takes at most one; "+
			"remove query_parameter_limit from sqlc.yaml (sqlc then passes several parameters as one Params struct)", m.name, len(m.params))
	}
	return kind, nil
}

// policy is a query's cache policy, from its "cache:" comment line.
type policy struct {
	set      bool // a cache: line was present
	off      bool
	ttl, swr time.Duration
	// reads and writes declare the tables of a query (or of a function or
	// trigger of schema/) that calls what cachegen cannot analyse.
	reads, writes       []string
	readsSet, writesSet bool
}

// parsePolicy reads the "cache:" line of a comment:
//
//	cache: off
//	cache: ttl=DURATION swr=DURATION
//	cache: reads=TABLE,TABLE writes=TABLE    (either may be empty: "reads=")
func parsePolicy(doc []string) (policy, error) {
	var p policy
	for _, line := range doc {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cache:")
		if !ok {
			continue
		}
		if p.set {
			return p, fmt.Errorf("more than one cache: line")
		}
		p.set = true
		for _, f := range strings.Fields(rest) {
			k, v, hasValue := strings.Cut(f, "=")
			switch k {
			case "off":
				if hasValue {
					return p, fmt.Errorf("cache: off takes no value (got %q)", f)
				}
				p.off = true
			case "ttl", "swr":
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || (k == "ttl" && d == 0) {
					return p, fmt.Errorf("cache: %s=%q must be a positive duration like 30s", k, v)
				}
				if k == "ttl" {
					p.ttl = d
				} else {
					p.swr = d
				}
			case "reads", "writes":
				if !hasValue {
					return p, fmt.Errorf("cache: %s needs a value: %s=TABLE,TABLE (or %s= for none)", k, k, k)
				}
				var ts []string
				for _, t := range strings.Split(v, ",") {
					if t = strings.TrimSpace(t); t != "" && t != "none" {
						ts = append(ts, t)
					}
				}
				if k == "reads" {
					if p.readsSet {
						return p, fmt.Errorf("cache: reads= given twice")
					}
					p.reads, p.readsSet = ts, true
				} else {
					if p.writesSet {
						return p, fmt.Errorf("cache: writes= given twice")
					}
					p.writes, p.writesSet = ts, true
				}
			default:
				return p, fmt.Errorf("cache: unknown setting %q (want off, ttl=DURATION, swr=DURATION, reads=TABLES or writes=TABLES)", f)
			}
		}
		if p.off && (p.ttl != 0 || p.swr != 0) {
			return p, fmt.Errorf("cache: off takes no ttl or swr")
		}
	}
	return p, nil
}

// genPkg is what the generator knows about package gen.
type genPkg struct {
	methods []*method
	consts  map[string]string
	structs map[string]*ast.StructType
	// limits holds, for each :many query whose top-level LIMIT binds an
	// integer argument, that argument as sqlc's method passes it; the
	// facade presizes the page's slice from it (prealloc.go).
	limits map[string]string
}

type param struct {
	name string
	typ  ast.Expr
}

type method struct {
	name   string
	doc    []string
	params []param  // after ctx
	result ast.Expr // nil for :exec (the method returns only an error)
	// tooMany is set when the method has more than one parameter after ctx.
	tooMany bool
	// batch is set for a :batch* query: result is *<Name>BatchResults, the
	// only result.
	batch  bool
	kind   string // sqlc annotation, ":one" ...
	sql    string
	access access
	write  bool
	policy policy
}

func loadGen(dir string) (*genPkg, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	p := &genPkg{consts: map[string]string{}, structs: map[string]*ast.StructType{}}
	var querier *ast.InterfaceType
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range gd.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					if gd.Tok != token.CONST || len(s.Names) != 1 || len(s.Values) != 1 {
						continue
					}
					if lit, ok := s.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err == nil {
							p.consts[s.Names[0].Name] = v
						}
					}
				case *ast.TypeSpec:
					switch t := s.Type.(type) {
					case *ast.StructType:
						p.structs[s.Name.Name] = t
					case *ast.InterfaceType:
						if s.Name.Name == "Querier" {
							querier = t
						}
					}
				}
			}
		}
	}
	if querier == nil {
		return nil, fmt.Errorf("no Querier interface in %s (is emit_interface set in sqlc.yaml?)", dir)
	}
	for _, f := range querier.Methods.List {
		ft, ok := f.Type.(*ast.FuncType)
		if !ok || len(f.Names) != 1 {
			return nil, fmt.Errorf("unexpected Querier member")
		}
		m := &method{name: f.Names[0].Name}
		if f.Doc != nil {
			for _, c := range f.Doc.List {
				m.doc = append(m.doc, strings.TrimPrefix(strings.TrimPrefix(c.Text, "//"), " "))
			}
		}
		for i, fp := range ft.Params.List {
			if i == 0 {
				continue // ctx
			}
			for _, n := range fp.Names {
				m.params = append(m.params, param{name: n.Name, typ: fp.Type})
			}
		}
		m.tooMany = len(m.params) > 1
		switch {
		case ft.Results != nil && len(ft.Results.List) == 2:
			m.result = ft.Results.List[0].Type
		case ft.Results != nil && len(ft.Results.List) == 1 && isIdent(ft.Results.List[0].Type, "error"):
		case ft.Results != nil && len(ft.Results.List) == 1:
			m.result = ft.Results.List[0].Type // a :batch* query
			m.batch = true
		default:
			return nil, fmt.Errorf("gen.Querier.%s: want (T, error) or error results (is gen/ from sqlc?)", m.name)
		}
		p.methods = append(p.methods, m)
	}
	return p, nil
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

package main

import (
	"go/ast"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPagesArePresized runs the statements emitter on the repository's own
// gen/: every :many query gets an Into twin, and exactly the ones whose
// top-level LIMIT binds an integer argument are presized from it.
func TestPagesArePresized(t *testing.T) {
	src, limits, err := emitStatements(filepath.Join("..", "..", "gen"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ListEvalResults":       "arg.RowLimit",
		"ListEvalRuns":          "arg.RowLimit",
		"ListFailedEvalResults": "arg.RowLimit",
	}
	if diff := cmp.Diff(want, limits); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	for _, name := range []string{"ListEvalResults", "ListStudentMetricsInWindow", "ListEvalMetrics"} {
		if !strings.Contains(string(src), "func (q *Queries) "+name+"Into(ctx context.Context,") {
			t.Errorf("no %sInto in gen/statements_gen.go", name)
		}
	}
	if strings.Contains(string(src), "GetEvalRunInto") {
		t.Error("a :one query got an Into twin")
	}
}

func TestLimitArgNeedsATopLevelIntegerParameter(t *testing.T) {
	g := &stmtgen{}
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"SELECT id FROM users ORDER BY id LIMIT $1", true},
		{"SELECT id FROM users ORDER BY id LIMIT $1::int", true},
		{"SELECT id FROM users ORDER BY id LIMIT 10", false},
		{"SELECT id FROM (SELECT id FROM users LIMIT $1) u", false},
		{"SELECT id FROM users WHERE id > $1", false},
	} {
		sf := &stmtFunc{name: "Q", args: []ast.Expr{ast.NewIdent("n")}, params: []*ast.Field{{Names: []*ast.Ident{ast.NewIdent("n")}, Type: ast.NewIdent("int32")}}}
		got, err := g.limitArg(sf, tc.sql)
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if (got == "n") != tc.want {
			t.Errorf("limitArg(%q) = %q, want presized %v", tc.sql, got, tc.want)
		}
	}
}

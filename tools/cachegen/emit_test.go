package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shapesGen is a gen/ package with one query of each annotation shape the
// facade takes besides :one and :many, and one batch query.
const shapesGen = `package gen

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type BumpUsersBatchResults struct {
	br     pgx.BatchResults
	tot    int
	closed bool
}

type Querier interface {
	// TouchUser marks a user.
	TouchUser(ctx context.Context, id int64) error
	ResetAll(ctx context.Context) (pgconn.CommandTag, error)
	BumpUsers(ctx context.Context, batch []int64) *BumpUsersBatchResults
}

const TouchUser = "-- name: TouchUser :exec\nUPDATE users SET name = name WHERE id = $1\n"
const ResetAll = "-- name: ResetAll :execresult\nDELETE FROM users\n"
const BumpUsers = "-- name: BumpUsers :batchexec\nUPDATE users SET name = name WHERE id = $1\n"
`

func loadShapes(t *testing.T) *genPkg {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "querier.go"), []byte(shapesGen), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := loadGen(dir)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// TestBatchQueriesRunThroughRunBatch checks that a :batchexec query is
// taken (it was refused before issue 13's batch work), that its facade
// method hands sqlc's method to runBatch, that its metadata says it is never
// cached, that the Cache invalidates at the batch's Close, and that a batch
// query asking for a TTL fails generation naming the query.
func TestBatchQueriesRunThroughRunBatch(t *testing.T) {
	t.Parallel()
	pkg := loadShapes(t)
	for _, m := range pkg.methods {
		var err error
		m.sql = pkg.consts[m.name]
		if m.kind, err = queryKind(m, m.sql); err != nil {
			t.Fatalf("queryKind(%s) = %v, want the facade to take it", m.name, err)
		}
		m.write = true
		m.access.writes = []string{"users"}
	}
	src, err := emitFacade(pkg)
	if err != nil {
		t.Fatalf("emitFacade: %v\n%s", err, src)
	}
	want := "func (x queries) BumpUsers(ctx context.Context, batch []int64) *gen.BumpUsersBatchResults {\n" +
		"\treturn runBatch(ctx, x.r, &querymeta.Queries[querymeta.BumpUsers], batch, (*gen.Queries).BumpUsers)"
	if !strings.Contains(string(src), want) {
		t.Errorf("facade lacks %q:\n%s", want, src)
	}
	cache, err := emitCache(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if w := "return gen.WrapBumpUsersBatch(c.q.BumpUsers(ctx, batch), c.wroteAtClose(querymeta.BumpUsers))"; !strings.Contains(string(cache), w) {
		t.Errorf("Cache lacks %q:\n%s", w, cache)
	}
	meta, err := emitMeta(pkg, []string{"users"})
	if err != nil {
		t.Fatal(err)
	}
	if w := `Uncacheable: "a batch (:batchexec), whose results the caller reads lazily"`; !strings.Contains(string(meta), w) {
		t.Errorf("metadata lacks %q:\n%s", w, meta)
	}
}

func TestBatchQueryWithTTLFailsGeneration(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"gen", "schema", "queries"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := strings.Replace(shapesGen, "\tBumpUsers(ctx", "\t// cache: ttl=30s\n\tBumpUsers(ctx", 1)
	files := map[string]string{
		"gen/querier.go":   src,
		"schema/00001.sql": "-- +goose Up\nCREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);\n",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(root, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := run(root)
	if err == nil {
		t.Fatal("run accepted a :batchexec query with cache: ttl=30s")
	}
	t.Log(err)
	for _, w := range []string{"BumpUsers", ":batchexec", "never cached", "ttl="} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestFacadeTakesExecShapes(t *testing.T) {
	t.Parallel()
	pkg := loadShapes(t)
	pkg.methods = pkg.methods[:2] // not the batch
	for _, m := range pkg.methods {
		var err error
		m.sql = pkg.consts[m.name]
		if m.kind, err = queryKind(m, m.sql); err != nil {
			t.Fatal(err)
		}
		m.write = true
		m.access.writes = []string{"users"}
	}
	src, err := emitFacade(pkg)
	if err != nil {
		t.Fatalf("emitFacade: %v\n%s", err, src)
	}
	for _, w := range []string{
		"func (x queries) TouchUser(ctx context.Context, id int64) error {",
		"return run(ctx, x.r, &sTouchUser, id, func(q *gen.Queries, ctx context.Context, a int64) (struct{}, error)",
		"func (x queries) ResetAll(ctx context.Context) (v pgconn.CommandTag, err error) {",
		"err = run(ctx, x.r, &sResetAll, struct{}{}, func(q *gen.Queries, ctx context.Context, _ struct{}) (pgconn.CommandTag, error)",
	} {
		if !strings.Contains(string(src), w) {
			t.Errorf("facade lacks %q:\n%s", w, src)
		}
	}
	if _, err := emitCache(pkg); err != nil {
		t.Errorf("emitCache: %v", err)
	}
	meta, err := emitMeta(pkg, []string{"users"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(meta), `Kind:        ":exec"`) && !strings.Contains(string(meta), `Kind: ":exec"`) {
		t.Errorf("metadata lacks TouchUser's kind:\n%s", meta)
	}
}

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	src := strings.Replace(shapesGen, "\tBumpUsers(ctx", "\t// cache: ttl=30s\n\tBumpUsers(ctx", 1)
	root := writeRoot(t, src, "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);")
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

// pairsGen holds, for each kind of SQL the analysis treats specially, a
// single-statement query and a batch query with the same SQL.
const pairsGen = `package gen

import (
	"context"

	"github.com/jackc/pgx/v5"
)

type TouchUsersBatchResults struct {
	br     pgx.BatchResults
	tot    int
	closed bool
}

type NextIDsBatchResults struct {
	br     pgx.BatchResults
	tot    int
	closed bool
}

type OpaquesBatchResults struct {
	br     pgx.BatchResults
	tot    int
	closed bool
}

type DeclaredsBatchResults struct {
	br     pgx.BatchResults
	tot    int
	closed bool
}

type ReadUsersBatchResults struct {
	br     pgx.BatchResults
	tot    int
	closed bool
}

type Querier interface {
	TouchUser(ctx context.Context, id int64) error
	TouchUsers(ctx context.Context, id []int64) *TouchUsersBatchResults
	NextID(ctx context.Context, n int64) (int64, error)
	NextIDs(ctx context.Context, n []int64) *NextIDsBatchResults
	Opaque(ctx context.Context, id int64) error
	Opaques(ctx context.Context, id []int64) *OpaquesBatchResults
	// cache: reads= writes=users
	Declared(ctx context.Context, id int64) error
	// cache: reads= writes=users
	Declareds(ctx context.Context, id []int64) *DeclaredsBatchResults
	ReadUser(ctx context.Context, id int64) (int64, error)
	ReadUsers(ctx context.Context, id []int64) *ReadUsersBatchResults
}

const TouchUser = "-- name: TouchUser :exec\nUPDATE users SET name = name WHERE id = $1\n"
const TouchUsers = "-- name: TouchUsers :batchexec\nUPDATE users SET name = name WHERE id = $1\n"
const NextID = "-- name: NextID :one\nSELECT nextval('ids') + $1\n"
const NextIDs = "-- name: NextIDs :batchone\nSELECT nextval('ids') + $1\n"
const Opaque = "-- name: Opaque :exec\nSELECT some_extension_fn($1)\n"
const Opaques = "-- name: Opaques :batchexec\nSELECT some_extension_fn($1)\n"
const Declared = "-- name: Declared :exec\nSELECT some_extension_fn($1)\n"
const Declareds = "-- name: Declareds :batchexec\nSELECT some_extension_fn($1)\n"
const ReadUser = "-- name: ReadUser :one\nSELECT id FROM users WHERE id = $1\n"
const ReadUsers = "-- name: ReadUsers :batchone\nSELECT id FROM users WHERE id = $1\n"
`

// TestBatchQueriesAnalysedLikeOthers checks that cachegen derives a batch
// query's tables, read-only flag and "-- cache: reads=/writes=" the same
// way as a single statement's with the same SQL (a write, nextval, an
// opaque call, a declared one, a read), and that every batch is uncached.
func TestBatchQueriesAnalysedLikeOthers(t *testing.T) {
	t.Parallel()
	root := writeRoot(t, pairsGen, "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);\n"+
		"CREATE TABLE notes (id bigint PRIMARY KEY);\nCREATE SEQUENCE ids;")
	if err := run(root); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(root, "querymeta", "queries_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	// entry returns the lines of a query's metadata that the analysis
	// decides: tables and read-only.
	entry := func(name string) (lines []string, uncacheable string) {
		start := strings.Index(string(meta), "\t"+name+": {\n")
		if start < 0 {
			t.Fatalf("no metadata for %s:\n%s", name, meta)
		}
		block := string(meta)[start:]
		block = block[:strings.Index(block, "\n\t},\n")]
		for _, l := range strings.Split(block, "\n") {
			l = strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(l, "Reads:"), strings.HasPrefix(l, "Writes:"), strings.HasPrefix(l, "ReadTables:"),
				strings.HasPrefix(l, "WriteTables:"), strings.HasPrefix(l, "ReadOnly:"):
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			case strings.HasPrefix(l, "Uncacheable:"):
				uncacheable = l
			}
		}
		return lines, uncacheable
	}
	for _, p := range [][2]string{{"TouchUser", "TouchUsers"}, {"NextID", "NextIDs"}, {"Opaque", "Opaques"}, {"Declared", "Declareds"}, {"ReadUser", "ReadUsers"}} {
		single, _ := entry(p[0])
		batch, why := entry(p[1])
		if diff := cmp.Diff(single, batch); diff != "" {
			t.Errorf("%s and %s (same SQL) analysed differently (-single +batch):\n%s", p[0], p[1], diff)
		}
		if !strings.Contains(why, "a batch (") {
			t.Errorf("%s: %q, want uncacheable as a batch", p[1], why)
		}
	}
	// The analysis itself, for the record: an opaque call writes every
	// table unless declared; nextval keeps a read off replicas.
	if got, _ := entry("Opaques"); !slices.Contains(got, `Writes: []string{"notes", "users"},`) {
		t.Errorf("Opaques = %v, want it to write every table", got)
	}
	if got, _ := entry("Declareds"); !slices.Contains(got, `Writes: []string{"users"},`) {
		t.Errorf("Declareds = %v, want it to write users only", got)
	}
	if got, _ := entry("NextIDs"); slices.Contains(got, "ReadOnly: true,") {
		t.Errorf("NextIDs = %v: read-only, but nextval must stay on the primary", got)
	}
	if got, _ := entry("ReadUsers"); !slices.Contains(got, "ReadOnly: true,") {
		t.Errorf("ReadUsers = %v, want read-only (replica-safe)", got)
	}
}

// writeRoot returns a scratch repository root for run: gen/querier.go
// holding querier, one migration holding schemaSQL, and an empty queries/.
func writeRoot(t *testing.T, querier, schemaSQL string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"gen", "schema", "queries"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"gen/querier.go":   querier,
		"schema/00001.sql": "-- +goose Up\n" + schemaSQL + "\n",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(root, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

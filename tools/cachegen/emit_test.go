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

	"github.com/jackc/pgx/v5/pgconn"
)

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

func TestQueryKindRefusesBatchesSayingWhatToWrite(t *testing.T) {
	t.Parallel()
	pkg := loadShapes(t)
	for _, m := range pkg.methods {
		kind, err := queryKind(m, pkg.consts[m.name])
		switch m.name {
		case "BumpUsers":
			if err == nil {
				t.Fatalf("queryKind(BumpUsers :batchexec) = %q, want an error", kind)
			}
			for _, w := range []string{"BumpUsers", ":batchexec", "unnest", ":copyfrom", "SendBatch"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		default:
			if err != nil {
				t.Errorf("queryKind(%s) = %v, want the facade to take it", m.name, err)
			}
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

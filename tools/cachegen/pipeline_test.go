package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scratchRepo copies what generation reads and writes from the repository
// into a temporary root, with tools/ linked to the real module.
func scratchRepo(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, pat := range []string{"sqlc.yaml", "schema/*.sql", "schema/*_gen.go", "schema/generated/*.sql", "queries/*.sql", "gen/*.go", "cachewrap/*_gen.go", "cachewrap/*_gen_test.go"} {
		files, err := filepath.Glob(filepath.Join(repo, pat))
		if err != nil || len(files) == 0 {
			t.Fatalf("glob %s: %v %v", pat, files, err)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(repo, f)
			if err := copyFile(f, filepath.Join(root, rel)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink(filepath.Join(repo, "tools"), filepath.Join(root, "tools")); err != nil {
		t.Fatal(err)
	}
	return root
}

// snapshot reads every generated file under root.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, dir := range []string{"gen", "cachewrap", "schema"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasPrefix(p, filepath.Join(root, "gen")) || strings.Contains(p, "_gen.")) {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			files[rel] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestGenerateIsAllOrNothing(t *testing.T) {
	t.Parallel()
	root := scratchRepo(t)
	quiet := func(string, ...any) {}
	before := snapshot(t, root)
	if err := generate(root, quiet); err != nil {
		t.Fatalf("generate() of the repository = %v", err)
	}
	if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
		t.Fatalf("generate() of the repository changed generated files (is it committed?):\n%s", diff)
	}

	add := func(name, sql string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "queries", name), []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sqlc fails: nothing changes (before, cachegen rewrote the cache layer
	// from the stale gen/).
	add("broken.sql", "-- name: Broken :one\nSELECT nope FROM users;\n")
	err := generate(root, quiet)
	if err == nil || !strings.Contains(err.Error(), "sqlc generate failed") {
		t.Fatalf("generate() with a broken query = %v, want sqlc's error", err)
	}
	if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
		t.Errorf("a failed sqlc step changed generated files:\n%s", diff)
	}
	// cachegen fails after sqlc succeeded: nothing changes either.
	add("broken.sql", "-- cache: forever\n-- name: Broken :one\nSELECT id FROM users WHERE id = $1;\n")
	err = generate(root, quiet)
	if err == nil || !strings.Contains(err.Error(), "query Broken") || !strings.Contains(err.Error(), "no generated file was changed") {
		t.Fatalf("generate() with a bad policy = %v, want cachegen's error naming the query", err)
	}
	if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
		t.Errorf("a failed cachegen step changed generated files:\n%s", diff)
	}
	// A removed query file takes its generated file with it.
	if err := os.Remove(filepath.Join(root, "queries", "broken.sql")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "queries", "monitoring.sql")); err != nil {
		t.Fatal(err)
	}
	if err := generate(root, quiet); err != nil {
		t.Fatalf("generate() without monitoring.sql = %v", err)
	}
	after := snapshot(t, root)
	if _, ok := after["gen/monitoring.sql.go"]; ok {
		t.Error("gen/monitoring.sql.go survived the removal of queries/monitoring.sql")
	}
	if strings.Contains(after["cachewrap/querier_gen.go"], "CountConnectionsByState") {
		t.Error("querier_gen.go still has the removed query CountConnectionsByState")
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".generate-*")); len(left) > 0 {
		t.Errorf("scratch directories left behind: %v", left)
	}
}

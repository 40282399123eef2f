package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// generate is `make generate`: every step, in order, into a scratch copy of
// the inputs, and only when all of them succeed are the results moved into
// the repository. A failing step (sqlc rejecting a query, cachegen refusing
// one) changes no generated file; the files of removed queries disappear
// from gen/.
//
//  1. copy sqlc.yaml, schema/*.sql and queries/*.sql to root/.generate-*/
//  2. sqlc generate (the sqlc of tools/go.mod) -> scratch gen/
//  3. cachegen -> scratch cachewrap/querier_gen.go, gen/statements_gen.go,
//     schema/tables_gen.go, schema/generated/notify_gen.sql
//  4. move every changed file into place; delete gen/ files that are gone
func generate(root string, logf func(string, ...any)) error {
	tmp, err := os.MkdirTemp(root, ".generate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logf("generate: 1/4 copy sqlc.yaml, schema/ and queries/ to a scratch directory")
	if err := copyFile(filepath.Join(root, "sqlc.yaml"), filepath.Join(tmp, "sqlc.yaml")); err != nil {
		return err
	}
	for _, dir := range []string{"schema", "queries"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.sql"))
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := copyFile(f, filepath.Join(tmp, dir, filepath.Base(f))); err != nil {
				return err
			}
		}
	}
	// Every directory that holds generated files exists in the scratch
	// tree too, so that an emitter writing root/<dir>/x_gen.go finds it.
	dirs := []string{"gen", "cachewrap", "schema/generated"}
	for _, pat := range []string{"*/*_gen.go", "*/*/*_gen.go"} {
		found, _ := filepath.Glob(filepath.Join(root, pat))
		for _, f := range found {
			rel, _ := filepath.Rel(root, filepath.Dir(f))
			dirs = append(dirs, rel)
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	logf("generate: 2/4 sqlc generate")
	tools, err := filepath.Abs(filepath.Join(root, "tools"))
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "tool", "sqlc", "generate", "-f", filepath.Join(tmp, "sqlc.yaml"))
	cmd.Dir = tools
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.ReplaceAll(strings.TrimSpace(out.String()), tmp+string(filepath.Separator), "")
		return fmt.Errorf("sqlc generate failed; no generated file was changed:\n%s", msg)
	}
	logf("generate: 3/4 cachegen (cache layer, statements, notification triggers)")
	if err := run(tmp); err != nil {
		return fmt.Errorf("%w\n(no generated file was changed)", err)
	}
	logf("generate: 4/4 move the results into place")
	return install(tmp, root)
}

// install moves the scratch tree's results into root: every file the steps
// wrote (all but the copied inputs) that differs from root's, and deletes the
// .go files of gen/ it no longer has.
func install(tmp, root string) error {
	keep := map[string]bool{}
	var files []string
	err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		dir := filepath.Dir(rel)
		if rel == "sqlc.yaml" || (dir == "schema" || dir == "queries") && strings.HasSuffix(rel, ".sql") {
			return nil // an input
		}
		keep[rel] = true
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	if err := os.MkdirAll(filepath.Join(root, "gen"), 0o755); err != nil {
		return err
	}
	for _, rel := range files {
		src, dst := filepath.Join(tmp, rel), filepath.Join(root, rel)
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
	}
	oldGen, err := filepath.Glob(filepath.Join(root, "gen", "*.go"))
	if err != nil {
		return err
	}
	for _, f := range oldGen {
		if rel := filepath.Join("gen", filepath.Base(f)); !keep[rel] {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

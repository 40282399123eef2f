package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aah/evaldb/internal/dbtest"
)

// localDataDir returns a new directory for an embedded database, open to
// the postgres user the server runs as when the tests run as root.
func localDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "evaldb-local-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// TestLocalCommandsBackToBack runs commands on the embedded database one
// right after the other, as a newcomer types them: each must find the
// server the previous one started gone, not stopping. They failed 4 times
// in 6 with 57P03, a reset or a refused connection, because the server was
// left to die with the process that started it.
func TestLocalCommandsBackToBack(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dir := localDataDir(t)
	env := []string{"EVALDB_DATA_DIR=" + dir, "DATABASE_URL=", "POSTGRES_PRISMA_URL=", "POSTGRES_URL_NON_POOLING=", "DIRECT_URL=", "APP_ENV="}
	for i := range 4 {
		for _, args := range [][]string{{"migrate", "up"}, {"stats"}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("round %d: evaldb %s: %v\n%s", i, strings.Join(args, " "), err, out.String())
			}
			if !strings.Contains(out.String(), "started a local PostgreSQL") {
				t.Errorf("round %d: evaldb %s did not start the local server (the previous one's should be gone):\n%s", i, strings.Join(args, " "), out.String())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("the local server is still running after the last command (postmaster.pid: %v)", err)
	}
}

// TestConfigStartsNoServer: config describes the embedded fallback without
// starting it (it used to start a database to print the configuration).
func TestConfigStartsNoServer(t *testing.T) {
	t.Parallel()
	dir := localDataDir(t)
	var stdout, stderr bytes.Buffer
	env := map[string]string{"EVALDB_DATA_DIR": dir}
	if code := run(context.Background(), []string{"config"}, &stdout, &stderr, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("evaldb config = %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"the local PostgreSQL, not running", "max_conns"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("config output lacks %q:\n%s", want, stdout.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("config created %v in the data directory: it started a server", entries)
	}
}

// TestProgressWithoutTerminal runs the demo with its stderr captured (not a
// terminal): progress is a plain line per phase, never carriage-return
// frames.
func TestProgressWithoutTerminal(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": dbtest.URL(t), "APP_ENV": "test"}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "-runs", "2", "-results", "5", "-students", "1", "-reads", "20", "-readers", "2"},
		&stdout, &stderr, func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("demo = %d\n%s", code, stderr.String())
	}
	if strings.ContainsRune(stderr.String(), '\r') {
		t.Errorf("stderr holds carriage returns (progress bars):\n%q", stderr.String())
	}
	for _, want := range []string{"evaldb demo: recording runs (2) ...\n", "evaldb demo: recording runs: done in ",
		"evaldb demo: enrolling students (1) ...\n", "evaldb demo: reading (20) ...\n", "evaldb demo: reading: done in "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestConfigShowsCoherence: config names the cache coherence mode that Open
// would choose, and why (issue 17).
func TestConfigShowsCoherence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "postgres://u@db:5432/app"}, `cache coherence\s+listen\s+\(a long-running process`},
		{map[string]string{"POSTGRES_PRISMA_URL": "postgres://u@bouncer:6432/app?pgbouncer=true"}, `cache coherence\s+poll\s+\(pgbouncer=true and no direct URL`},
		{map[string]string{"POSTGRES_PRISMA_URL": "postgres://u@bouncer:6432/app?pgbouncer=true", "POSTGRES_URL_NON_POOLING": "postgres://u@db:5432/app", "VERCEL": "1"},
			`cache coherence\s+poll\s+\(pgbouncer=true on a serverless platform`},
		{map[string]string{"DATABASE_URL": "postgres://u@db:5432/app", "EVALDB_CACHE_COHERENCE": "ttl"}, `cache coherence\s+ttl\s+\(chosen by Config.Coherence \(EVALDB_CACHE_COHERENCE\)\)`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"config"}, &stdout, &stderr, func(k string) string { return tc.env[k] }); code != 0 {
			t.Fatalf("evaldb config with %v = %d\n%s%s", tc.env, code, stdout.String(), stderr.String())
		}
		if !regexp.MustCompile(tc.want).MatchString(stdout.String()) {
			t.Errorf("evaldb config with %v: output does not match %q:\n%s", tc.env, tc.want, stdout.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLocalOwnerWaitsForJoiners: `serve -local` starts the embedded
// server, a demo joins it, and serve is stopped while the demo runs. The
// demo must finish unharmed: serve waits for its connections to end before
// stopping the server (a fast shutdown used to cut the demo off).
func TestLocalOwnerWaitsForJoiners(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dir := localDataDir(t)
	env := append(os.Environ(), "EVALDB_DATA_DIR="+dir, "DATABASE_URL=", "POSTGRES_PRISMA_URL=", "POSTGRES_URL_NON_POOLING=", "DIRECT_URL=", "APP_ENV=")
	serve := exec.Command(bin, "serve", "-local", "-addr", "127.0.0.1:0")
	serve.Env = env
	var serveOut syncBuffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	waitFor(t, &serveOut, "serving on")

	demo := exec.Command(bin, "demo", "-runs", "8", "-results", "200", "-students", "5", "-reads", "150000", "-readers", "4")
	demo.Env = env
	var demoOut syncBuffer
	demo.Stdout, demo.Stderr = &demoOut, &demoOut
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &demoOut, "evaldb demo: reading (150000) ...")
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := demo.Wait(); err != nil {
		t.Errorf("the demo that joined serve's server failed when serve stopped: %v\n%s", err, demoOut.String())
	}
	if err := serve.Wait(); err != nil {
		t.Errorf("serve: %v\n%s", err, serveOut.String())
	}
	if !strings.Contains(serveOut.String(), "evaldb: waiting for") {
		t.Errorf("serve did not say it waited for the demo:\n%s", serveOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("the local server still runs after both commands (postmaster.pid: %v)", err)
	}
}

// waitFor waits until out holds want, failing after a minute.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within a minute; output:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/aah/evaldb/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// binary builds the evaldb command into the test's temporary directory,
// removed when the test ends.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evaldb")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBinary(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("evaldb %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// TestBinaryEndToEnd runs the built command against a real, empty database:
// migrate (up, then status), a small demo, stats and config, and checks what
// each prints.
func TestBinaryEndToEnd(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dbURL := dbtest.GetServer(t).CreateDatabase(t) // empty: migrate has work to do
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "e2e-Secret-9")
	withPassword := u.String()
	env := []string{"DATABASE_URL=" + withPassword + "&connection_limit=6&pool_timeout=15",
		"POSTGRES_URL_NON_POOLING=", "POSTGRES_PRISMA_URL=", "DIRECT_URL=", "APP_ENV=test"}

	out, _ := runBinary(t, bin, env, "migrate", "up")
	for _, want := range []string{"applied 00001_create_users_students.sql", "applied 00002_create_eval_tables.sql"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate up output lacks %q:\n%s", want, out)
		}
	}
	out, _ = runBinary(t, bin, env, "migrate", "status")
	if n := strings.Count(out, " applied "); n < 2 {
		t.Errorf("migrate status shows %d applied migrations, want all:\n%s", n, out)
	}
	out, _ = runBinary(t, bin, env, "migrate")
	if !strings.Contains(out, "up to date") {
		t.Errorf("second migrate output = %q, want it to say the schema is up to date", out)
	}

	out, _ = runBinary(t, bin, env, "demo", "-runs", "3", "-results", "20", "-students", "2",
		"-student-metrics", "4", "-readers", "4", "-reads", "200", "-progress=false")
	for _, re := range []string{
		`evaldb demo: 3 runs × 20 results, 2 students × 4 metrics, 200 reads by 4 goroutines`,
		`LEADERBOARD  the 3 runs recorded above, by model`,
		`(?m)^ +MODEL +RUNS +RESULTS +PASS RATE +MEAN SCORE +P50 LATENCY +P95 LATENCY +TOKENS$`,
		`(?m)^ +gpt-4o +1 +20 +[\d.]+% +[\d.]+ +\d+ms +\d+ms +\d+$`,
		`(?m)^ +claude-sonnet-4 +1 +20 +[\d.]+% +[\d.]+ +\d+ms +\d+ms +\d+$`,
		`(?m)^ +llama-3.1-70b +1 +20 +[\d.]+% +[\d.]+ +\d+ms +\d+ms +\d+$`,
		`(?s)LEADERBOARD.*WRITES.*DATABASE QUERY`, // the evaluation data first, then the layer's figures
		`WRITES +\d+ rows in [\d.]+m?s: \d+ rows/s`,
		`READS +200 in [\d.]+m?s: \d+ reads/s, 0 failed`,
		`(?m)^ +GetEvalRunSummary +\d+ +0 +[\d.]+ms +[\d.]+ms +[\d.]+ms`,
		`CACHE +hit ratio [\d.]+%`,
		`POOL +max 6;`,
		`SERVER +connections to this database: .*active \d+`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("demo output does not match %s:\n%s", re, out)
		}
	}
	// 3 runs × (1 + 20 results + 5 metrics) + 2 students × (2 + 4 metrics).
	if !strings.Contains(out, "WRITES  90 rows") {
		t.Errorf("demo should report 90 rows written:\n%s", out)
	}

	out, _ = runBinary(t, bin, env, "stats")
	for _, want := range []string{"max connections", "6", "DATABASE CONNECTIONS BY STATE", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}

	out, _ = runBinary(t, bin, env, "config")
	for _, want := range []string{"environment", "test", "DATABASE_URL", "max_conns", "pool_timeout", "15s", "url: connection_limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "e2e-Secret-9") {
		t.Errorf("config output shows the password:\n%s", out)
	}
}

// TestCommandErrorsSayWhatToDo checks the command's answers to bad input.
func TestCommandErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"UnknownCommand", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"HelpOnSubcommand", []string{"demo", "-h"}, nil, 0, "usage: evaldb demo"},
		{"BadMigrateAction", []string{"migrate", "sideways"}, map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db"}, 1, "want up, down, status or baseline"},
		{"BadDemoFlag", []string{"demo", "-runs", "0"}, nil, 1, "-runs=0: must be between 1 and"},
		{"BadConnectionLimit", []string{"config"}, map[string]string{"DATABASE_URL": "postgres://u:pw@h/db?connection_limit=abc"}, 1, "connection_limit"},
		{"BadAppEnv", []string{"config"}, map[string]string{"DATABASE_URL": "postgres://u@h/db", "APP_ENV": "staging"}, 1, "must be development, production or test"},
		// Without a URL, serve needs -local, and production never falls back
		// on the embedded database: each says what to set.
		{"ServeWithoutURL", []string{"serve"}, nil, 1, "set DATABASE_URL (or POSTGRES_PRISMA_URL) to the database to serve, or pass -local"},
		{"ProductionServeLocal", []string{"serve", "-local"}, map[string]string{"APP_ENV": "production"}, 1, "set DATABASE_URL (or POSTGRES_PRISMA_URL) to your database's postgres:// URL; with APP_ENV=production"},
		{"ProductionMigrate", []string{"migrate"}, map[string]string{"APP_ENV": "production"}, 1, "with APP_ENV=production evaldb never falls back"},
		{"ProductionDemo", []string{"demo"}, map[string]string{"APP_ENV": "production"}, 1, "with APP_ENV=production evaldb never falls back"},
		{"ProductionStats", []string{"stats"}, map[string]string{"APP_ENV": "production"}, 1, "with APP_ENV=production evaldb never falls back"},
		{"BadMaxBody", []string{"serve", "-max-body", "0"}, nil, 1, "-max-body=0: must be a positive number"},
		{"BadRecordTimeout", []string{"serve", "-record-timeout", "1ns"}, nil, 1, "-record-timeout=1ns: must be at least 1ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			code := run(context.Background(), tc.args, &stdout, &stderr, getenv)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if got := stdout.String() + stderr.String(); !strings.Contains(got, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, got)
			}
			if strings.Contains(stdout.String()+stderr.String(), ":pw@") {
				t.Errorf("output shows the password")
			}
		})
	}
}

// TestServeEndToEnd runs `evaldb serve` on a real database: it serves the
// API (the OpenAPI document, a health check, a recorded run) and stops on
// SIGTERM after saying so.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	cmd := exec.Command(bin, "serve", "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbtest.URL(t), "POSTGRES_URL_NON_POOLING=", "POSTGRES_PRISMA_URL=", "DIRECT_URL=", "APP_ENV=test")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("serve printed nothing; stderr:\n%s", stderr.String())
	}
	m := regexp.MustCompile(`serving on (http://\S+)`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("serve's first line = %q, want the address", lines.Text())
	}
	base := m[1]
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/openapi.json", "", `"openapi": "3.1.0"`},
		{"GET", "/healthz", "", `"status":"ok"`},
		{"POST", "/runs", `{"name":"n","model":"m","dataset":"d","results":[{"case_id":"a b"}]}`, `"result_count":1`},
		{"GET", "/runs?model=m", "", `"model":"m"`},
		{"GET", "/nowhere", "", `"code":"not_found"`},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s = %d %.300s, want %q", tc.method, tc.path, resp.StatusCode, b, tc.want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
	if got := strings.Join(rest, "\n"); !strings.Contains(got, "evaldb: stopped") {
		t.Errorf("serve's output after SIGTERM = %q, want it to say it stopped", got)
	}
}

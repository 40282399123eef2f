package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/aah/evaldb/internal/dbtest"
)

// testSecret is the password the cmd/evaldb tests put into every URL; the
// throwaway cluster trusts every local connection, so any password works.
const testSecret = "Cmd/S3cret!pw-77ab"

// scanSecret fails the test when text holds the password, raw or escaped.
func scanSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, f := range []string{testSecret, url.QueryEscape(testSecret), url.PathEscape(testSecret), "S3cret!pw-77ab"} {
		if i := strings.Index(text, f); i >= 0 {
			t.Errorf("the password appears in %s: …%s…", where, text[max(0, i-80):min(len(text), i+80)])
			return
		}
	}
}

// TestCommandsNeverPrintThePassword runs `evaldb config` and `evaldb stats`
// in-process with a password in every URL variable, valid and invalid
// URLs alike, and scans everything they print.
func TestCommandsNeverPrintThePassword(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", testSecret)
	good := u.String()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		ok   bool
	}{
		{"Config", map[string]string{"DATABASE_URL": good + "&connection_limit=3", "POSTGRES_URL_NON_POOLING": good}, []string{"config"}, true},
		{"ConfigPrismaURL", map[string]string{"POSTGRES_PRISMA_URL": good + "&pgbouncer=true", "DIRECT_URL": good}, []string{"config"}, true},
		{"ConfigBadLimit", map[string]string{"DATABASE_URL": good + "&connection_limit=abc"}, []string{"config"}, false},
		{"ConfigBadDirect", map[string]string{"DATABASE_URL": good, "POSTGRES_URL_NON_POOLING": good + "&pool_timeout=-5"}, []string{"config"}, false},
		{"ConfigMalformed", map[string]string{"DATABASE_URL": "postgres://postgres:" + testSecret + "@127.0.0.1:99999/x%zz"}, []string{"config"}, false},
		// Unescaped URL-special characters in the password: accepted where
		// libpq's rules leave no doubt ('#', '?', '&'), refused unquoted
		// where they do ('/', '@').
		{"ConfigUnescapedSpecials", map[string]string{"DATABASE_URL": "postgres://postgres:S3cret!pw-77ab#?&x@" + u.Host + u.Path + "?" + u.RawQuery}, []string{"config"}, true},
		{"ConfigUnescapedSlash", map[string]string{"DATABASE_URL": "postgres://postgres:" + testSecret + "@" + u.Host + u.Path}, []string{"config"}, false},
		{"ConfigUnescapedAt", map[string]string{"DATABASE_URL": "postgres://postgres:S3cret!pw@77ab@" + u.Host + u.Path}, []string{"config"}, false},
		{"ConfigRequireAuth", map[string]string{"DATABASE_URL": good + "&require_auth=scram-sha-256"}, []string{"config"}, false},
		{"Stats", map[string]string{"DATABASE_URL": good + "&connection_limit=2", "APP_ENV": "development"}, []string{"stats"}, true},
		{"StatsUnreachable", map[string]string{"DATABASE_URL": "postgres://postgres:" + testSecret + "@127.0.0.1:1/x?connect_timeout=2"}, []string{"stats"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			code := run(context.Background(), tc.args, &stdout, &stderr, getenv)
			if (code == 0) != tc.ok {
				t.Errorf("evaldb %v exited %d (want success %v)\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.ok, stdout.String(), stderr.String())
			}
			if stdout.Len()+stderr.Len() == 0 {
				t.Errorf("evaldb %v printed nothing: nothing was scanned", tc.args)
			}
			scanSecret(t, "stdout of evaldb "+strings.Join(tc.args, " "), stdout.String())
			scanSecret(t, "stderr of evaldb "+strings.Join(tc.args, " "), stderr.String())
		})
	}
}

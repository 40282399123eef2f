package dsn

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want URL
	}{
		{"PlainURLUnchanged", "postgres://u:pw@h:5432/db", URL{Clean: "postgres://u:pw@h:5432/db", Redacted: "postgres://u:xxxxx@h:5432/db", Params: map[string]string{}}},
		{"PostgresqlScheme", "postgresql://h/db?sslmode=disable", URL{Clean: "postgresql://h/db?sslmode=disable", Redacted: "postgresql://h/db?sslmode=disable", Params: map[string]string{"sslmode": "disable"}}},
		{"AllPrismaParams", "postgres://u@h/db?connection_limit=7&pool_timeout=0&connect_timeout=3&socket_timeout=1.5&pgbouncer=true&schema=My%20Schema&statement_cache_size=0&max_idle_connection_lifetime=60&sslmode=require",
			URL{Clean: "postgres://u@h/db?sslmode=require", Redacted: "postgres://u@h/db?sslmode=require",
				ConnectionLimit: ptr[int32](7), PoolTimeout: ptr(time.Duration(0)), ConnectTimeout: ptr(3 * time.Second),
				SocketTimeout: ptr(1500 * time.Millisecond), PgBouncer: ptr(true), Schema: ptr("My Schema"),
				StatementCacheSize: ptr(0), MaxIdleLifetime: ptr(time.Minute), Params: map[string]string{"sslmode": "require"}}},
		{"PgxParamsKept", "postgres://h/db?pool_max_conns=3&application_name=x", URL{Clean: "postgres://h/db?application_name=x&pool_max_conns=3", Redacted: "postgres://h/db?application_name=x&pool_max_conns=3",
			Params: map[string]string{"pool_max_conns": "3", "application_name": "x"}}},
		{"PasswordParamRedacted", "postgres://u@h/db?password=hunter2", URL{Clean: "postgres://u@h/db?password=hunter2", Redacted: "postgres://u@h/db?password=xxxxx", Params: map[string]string{"password": "xxxxx"}}},
		{"PgBouncerFalse", "postgres://h/db?pgbouncer=false", URL{Clean: "postgres://h/db", Redacted: "postgres://h/db", PgBouncer: ptr(false), Params: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, *got, cmp.AllowUnexported(URL{}), cmp.FilterPath(func(p cmp.Path) bool {
				return p.Last().String() == ".password"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, param string
		wantText         []string
	}{
		{"ConnectionLimitNotNumber", "postgres://h/db?connection_limit=abc", ParamConnectionLimit, []string{"connection_limit", `"abc"`, "1 to 10000"}},
		{"ConnectionLimitZero", "postgres://h/db?connection_limit=0", ParamConnectionLimit, []string{"1 to 10000"}},
		{"ConnectionLimitNegative", "postgres://h/db?connection_limit=-1", ParamConnectionLimit, []string{"1 to 10000"}},
		{"ConnectionLimitHuge", "postgres://h/db?connection_limit=99999999999", ParamConnectionLimit, []string{"1 to 10000"}},
		{"PoolTimeoutNegative", "postgres://h/db?pool_timeout=-5", ParamPoolTimeout, []string{"pool_timeout", "0 to 86400", "0 waits forever"}},
		{"PoolTimeoutNaN", "postgres://h/db?pool_timeout=NaN", ParamPoolTimeout, []string{"0 to 86400"}},
		{"ConnectTimeoutWord", "postgres://h/db?connect_timeout=soon", ParamConnectTimeout, []string{"connect_timeout"}},
		{"SocketTimeoutInf", "postgres://h/db?socket_timeout=Inf", ParamSocketTimeout, []string{"socket_timeout"}},
		{"PgBouncerYes", "postgres://h/db?pgbouncer=yes", ParamPgBouncer, []string{"true or false"}},
		{"SchemaEmpty", "postgres://h/db?schema=", ParamSchema, []string{"1 to 63 bytes"}},
		{"StatementCacheNegative", "postgres://h/db?statement_cache_size=-1", ParamStatementCacheSize, []string{"0 (no statement cache)"}},
		{"Duplicate", "postgres://h/db?connection_limit=1&connection_limit=2", ParamConnectionLimit, []string{"more than once"}},
		{"PrismaOnlyTLS", "postgres://h/db?sslaccept=strict", "sslaccept", []string{"Prisma-only", "verify-full"}},
		{"NotAURL", "host=h dbname=db", "url", []string{"not a postgres://"}},
		{"WrongScheme", "mysql://u:pw@h/db", "url", []string{"not a postgres://"}},
		{"Empty", "", "url", []string{"DATABASE_URL"}},
		{"BadPort", "postgres://u:s3cret@h:port/db", "url", []string{"malformed URL", "invalid port"}},
		{"BadEscape", "postgres://u:s3cret@h/db?x=%zz", "url", []string{"malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.raw)
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("Parse(%q) = %v, want a *dsn.Error", tt.raw, err)
			}
			if de.Param != tt.param {
				t.Errorf("Parse(%q) Param = %q, want %q", tt.raw, de.Param, tt.param)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error %q does not mention %q", tt.raw, err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Parse(%q) error leaks the password: %q", tt.raw, err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{"postgres://u:pw@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:p%40ss@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:s3cret@h:bad/db", "postgres://u:xxxxx@h:bad/db"},
		{"postgres://u:a@b@h:bad/db", "postgres://u:xxxxx@h:bad/db"},
		{"postgres://h/db?password=s3cret&x=1", "postgres://h/db?password=xxxxx&x=1"},
		{"postgres://h:bad/db?sslpassword=s3cret", "postgres://h:bad/db?sslpassword=xxxxx"},
		{"postgres://h/db", "postgres://h/db"},
	}
	for _, tt := range tests {
		if got := Redact(tt.raw); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// FuzzParse checks that no input panics, that an accepted URL's Clean form
// parses again to the same result, and that no error or redacted form
// contains the password.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"postgres://u:pw@h:5432/db?connection_limit=5&pool_timeout=10",
		"postgresql://h/db?pgbouncer=true&schema=x&statement_cache_size=0",
		"postgres://u:s3cret@h:bad/db",
		"postgres://u@h1:1,h2:2/db?socket_timeout=0.5",
		"postgres:///db?host=/tmp&connect_timeout=2",
		"postgres://h/db?connection_limit=abc",
		"postgres://h/db?password=s3cret",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Parse(raw)
		pw := passwordOf(raw)
		if pu, perr := url.Parse(raw); perr == nil {
			if p, ok := pu.User.Password(); ok {
				pw = p
			}
		}
		if err != nil {
			if len(pw) >= 4 && strings.Contains(err.Error(), pw) && !strings.Contains(strings.ReplaceAll(raw, pw, ""), pw) {
				t.Fatalf("error leaks password %q: %v", pw, err)
			}
			return
		}
		again, err := Parse(u.Clean)
		if err != nil {
			t.Fatalf("Clean %q of accepted %q does not parse: %v", u.Clean, raw, err)
		}
		if again.Clean != u.Clean {
			t.Fatalf("Clean is not stable: %q then %q", u.Clean, again.Clean)
		}
		if len(u.password) >= 4 && strings.Contains(u.Redacted, u.password) && !strings.Contains("postgres://xxxxx", u.password) {
			t.Fatalf("Redacted %q contains password %q", u.Redacted, u.password)
		}
	})
}

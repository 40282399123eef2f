package dsn

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
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
		{"PgxParamsKeptInOrder", "postgres://h/db?pool_max_conns=3&application_name=x", URL{Clean: "postgres://h/db?pool_max_conns=3&application_name=x", Redacted: "postgres://h/db?pool_max_conns=3&application_name=x",
			Params: map[string]string{"pool_max_conns": "3", "application_name": "x"}}},
		{"PasswordParamRedacted", "postgres://u@h/db?password=hunter2", URL{Clean: "postgres://u@h/db?password=hunter2", Redacted: "postgres://u@h/db?password=xxxxx", Params: map[string]string{"password": "xxxxx"}}},
		{"PgBouncerFalse", "postgres://h/db?pgbouncer=false", URL{Clean: "postgres://h/db", Redacted: "postgres://h/db", PgBouncer: ptr(false), Params: map[string]string{}}},
		{"NothingReencoded", "postgres://us%65r:p%40ss#1?x@[::1]:5432,h2/my%20db?application_name=a+b&options=-c%20x%3Dy&",
			URL{Clean: "postgres://us%65r:p%40ss#1?x@[::1]:5432,h2/my%20db?application_name=a+b&options=-c%20x%3Dy",
				Redacted: "postgres://us%65r:xxxxx@[::1]:5432,h2/my%20db?application_name=a+b&options=-c%20x%3Dy",
				Params:   map[string]string{"application_name": "a+b", "options": "-c x=y"}}},
		{"EmptyPasswordNotMasked", "postgres://u:@h/db", URL{Clean: "postgres://u:@h/db", Redacted: "postgres://u:@h/db", Params: map[string]string{}}},
		{"DbnameAlias", "postgres://h?dbname=x", URL{Clean: "postgres://h?dbname=x", Redacted: "postgres://h?dbname=x", Params: map[string]string{"database": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, *got, cmp.AllowUnexported(URL{}), cmp.FilterPath(func(p cmp.Path) bool {
				return p.Last().String() == ".password" || p.Last().String() == ".masked"
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
		{"KeywordDSN", "host=h user=u password=s3cret dbname=db", "url", []string{"keyword/value connection string", "postgres://user:password@host"}},
		{"KeywordDSNQuoted", " password='s3cret' host=h", "url", []string{"keyword/value connection string"}},
		{"NotAURL", "just some text s3cret", "url", []string{"not a postgres://", "no scheme"}},
		{"UnescapedAtInPassword", "postgres://u:s3c@ret@h/db", "url", []string{"'@' that does not end the user name and password", "%40"}},
		{"UnescapedSlashInPassword", "postgres://u:s3/cret@h/db", "url", []string{"'@' that does not end", "'/' as %2F"}},
		{"AtInDatabase", "postgres://u:s3cret@h/d@b", "url", []string{"%40"}},
		{"BadPercentInPassword", "postgres://u:s3cret%@h/db", "url", []string{"password is not validly percent-encoded", "%25"}},
		{"NULInPassword", "postgres://u:s3cret%00@h/db", "url", []string{"password is not validly percent-encoded"}},
		{"SpaceInPassword", "postgres://u:s3c ret@h/db", "url", []string{"password is not validly percent-encoded", "%20"}},
		{"NULByte", "postgres://u:s3cret\x00@h/db", "url", []string{"NUL"}},
		{"SSLPasswordNotEchoed", "postgres://h/db?sslpassword=s3cret", "sslpassword", []string{"Prisma-only", "xxxxx"}},
		{"PasswordParamBadEscape", "postgres://h/db?password=s3cret%zz", "url", []string{`query parameter "password"`, "percent-encoded"}},
		{"PasswordParamExtraEquals", "postgres://h/db?password=s3cret=x", "url", []string{`query parameter "password"`, "'='", "%3D"}},
		{"NoEquals", "postgres://u:s3cret@h/db?sslmode", "url", []string{"(number 1) has no '='"}},
		{"StrayAmpersand", "postgres://u:s3cret@h/db?sslmode=disable&&x=1", "url", []string{"(number 2) has no '='"}},
		{"RestOfPasswordNotQuoted", "postgres://h/db?password=pw&s3cret", "url", []string{"(number 2) has no '='", "%26"}},
		{"WrongScheme", "mysql://u:pw@h/db", "url", []string{"not a postgres://"}},
		{"Empty", "", "url", []string{"DATABASE_URL"}},
		{"BadEscape", "postgres://u:s3cret@h/db?x=%zz", "url", []string{`query parameter "x"`, "percent-encoded"}},
		{"BadEscapeInName", "postgres://u:s3cret@h/db?%zz=1", "url", []string{`"%zz"`, "percent-encoded"}},
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
		{"postgres://u:a@b@h:bad/db", "postgres://(withheld: malformed)"},
		{"postgres://u:a/b@h/db", "postgres://(withheld: malformed)"},
		{"postgres://u:a#b?c@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://h/db?password=s3cret&x=1", "postgres://h/db?password=xxxxx&x=1"},
		{"postgres://h:bad/db?pass%77ord=s3cret", "postgres://h:bad/db?pass%77ord=xxxxx"},
		{"postgres://h:bad/db?sslpassword=s3cret", "postgres://h:bad/db?sslpassword=xxxxx"},
		{"postgres://h/db?connection_limit=5", "postgres://h/db?connection_limit=5"},
		{"postgres://h/db", "postgres://h/db"},
		{"mysql://u:pw@h/db", "mysql://(withheld: malformed)"},
		{"host=h password=pw", "(withheld: not a URL)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.raw); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestRedactIntact checks the examples: a password equal to the
// scheme, the user, the database, the port or one letter is masked where
// it is the password and nowhere else.
func TestRedactIntact(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{"postgres://postgres:postgres@localhost/postgres", "postgres://postgres:xxxxx@localhost/postgres"},
		{"postgres://app:s@db.example:5432/sales?sslmode=disable", "postgres://app:xxxxx@db.example:5432/sales?sslmode=disable"},
		{"postgres://app:5432@db.example:5432/app", "postgres://app:xxxxx@db.example:5432/app"},
		{"postgres://app:app@h/app?application_name=app", "postgres://app:xxxxx@h/app?application_name=app"},
		{"postgres://u:x@h/db?password=x", "postgres://u:xxxxx@h/db?password=xxxxx"},
		{"postgres://u:%2540@h/%40", "postgres://u:xxxxx@h/%40"},
	}
	for _, tt := range tests {
		u, err := Parse(tt.raw)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.raw, err)
		}
		if u.Redacted != tt.want {
			t.Errorf("Parse(%q).Redacted = %q, want %q", tt.raw, u.Redacted, tt.want)
		}
		if got := Redact(tt.raw); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestPasswordSpecialCharacters writes a password holding each URL-special
// character escaped, unescaped (where libpq's rules allow it) and doubly
// escaped, and checks that pgx reads exactly the intended password from
// Clean, that parsing Redacted and setting Password gives the same
// configuration, and that Redacted holds no form of the password.
func TestPasswordSpecialCharacters(t *testing.T) {
	t.Parallel()
	for _, c := range specialChars {
		for _, form := range []struct {
			name     string
			enc      func(string) string
			intended func(string) string // what pgx must read
		}{
			{"Escaped", escapeAll, func(s string) string { return s }},
			{"Unescaped", func(s string) string { return s }, func(s string) string { return s }},
			{"DoublyEscaped", func(s string) string { return escapeAll(escapeAll(s)) }, escapeAll},
		} {
			pw := "Pw" + string(c) + "z9" + string(c)
			raw := "postgres://app:" + form.enc(pw) + "@db.example:6543/sales?sslmode=disable&application_name=svc"
			u, err := Parse(raw)
			if form.name == "Unescaped" && (c == '@' || c == '/' || c == '%' || c == ' ') {
				if err == nil {
					t.Errorf("%s %q: Parse(%q) accepted an ambiguous URL", form.name, c, raw)
				} else if leaks(err.Error(), pw) {
					t.Errorf("%s %q: error leaks the password: %v", form.name, c, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %q: Parse(%q): %v", form.name, c, raw, err)
				continue
			}
			want := "postgres://app:xxxxx@db.example:6543/sales?sslmode=disable&application_name=svc"
			if u.Redacted != want {
				t.Errorf("%s %q: Redacted = %q, want %q", form.name, c, u.Redacted, want)
			}
			cfg, err := pgxpool.ParseConfig(u.Clean)
			if err != nil {
				t.Fatalf("%s %q: pgx refuses Clean: %v", form.name, c, err)
			}
			if got, want := cfg.ConnConfig.Password, form.intended(pw); got != want {
				t.Errorf("%s %q: pgx reads password %q, want %q", form.name, c, got, want)
			}
			samePgxConfig(t, u)
		}
	}
}

// specialChars are the characters with a meaning somewhere in a URL, plus
// '%' and space.
const specialChars = ":/?#[]@!$&'()*+,;=% \\\"<>`{}|^~"

func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// leaks reports whether s holds pw, or its escaped or doubly escaped form.
func leaks(s, pw string) bool {
	for _, f := range []string{pw, escapeAll(pw), escapeAll(escapeAll(pw)), url.QueryEscape(pw), url.PathEscape(pw)} {
		if f != "" && strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// samePgxConfig checks that pgx parses Redacted, once the password is set,
// to what it parses Clean to.
func samePgxConfig(t *testing.T, u *URL) {
	t.Helper()
	a, errA := pgxpool.ParseConfig(u.Clean)
	b, errB := pgxpool.ParseConfig(u.Redacted)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("pgx parses Clean with %v but Redacted %q with %v", errA, u.Redacted, errB)
	}
	if errA != nil {
		return
	}
	if pw, ok := u.Password(); ok {
		b.ConnConfig.Password = pw
	}
	ca, cb := a.ConnConfig, b.ConnConfig
	if ca.Host != cb.Host || ca.Port != cb.Port || ca.Database != cb.Database || ca.User != cb.User || ca.Password != cb.Password ||
		!maps.Equal(ca.RuntimeParams, cb.RuntimeParams) {
		t.Fatalf("Redacted %q + Password is not Clean: %s:%d/%s user %q params %v, then %s:%d/%s user %q params %v (passwords equal: %v)",
			u.Redacted, ca.Host, ca.Port, ca.Database, ca.User, ca.RuntimeParams, cb.Host, cb.Port, cb.Database, cb.User, cb.RuntimeParams, ca.Password == cb.Password)
	}
}

func TestNearMissParameters(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, param, suggest string }{
		{"postgres://h/db?connection_limt=5", "connection_limt", "connection_limit"},
		{"postgres://h/db?Connection_Limit=5", "Connection_Limit", "connection_limit"},
		{"postgres://h/db?connection-limit=5", "connection-limit", "connection_limit"},
		{"postgres://h/db?pool_timout=5", "pool_timout", "pool_timeout"},
		{"postgres://h/db?pgbouncr=true", "pgbouncr", "pgbouncer"},
		{"postgres://h/db?scheme=x", "scheme", "schema"},
		{"postgres://h/db?statment_cache_size=0", "statment_cache_size", "statement_cache_size"},
		{"postgres://h/db?pool_max_con=3", "pool_max_con", "pool_max_conns"},
		{"postgres://h/db?sslmdoe=disable", "sslmdoe", "sslmode"},
		{"postgres://h/db?conect_timeout=3", "conect_timeout", "connect_timeout"},
		{"postgres://h/db?pasword=s3cret", "pasword", "password"},
		{"postgres://h/db?PASSWORD=s3cret", "PASSWORD", "password"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.raw)
		var de *Error
		if !errors.As(err, &de) || de.Param != tt.param || !strings.Contains(err.Error(), "did you mean "+tt.suggest+"?") {
			t.Errorf("Parse(%q) = %v, want an error on %s suggesting %s", tt.raw, err, tt.param, tt.suggest)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%q) error leaks the password: %v", tt.raw, err)
		}
	}
	for _, ok := range []string{
		"postgres://h/db?application_name=x&search_path=a&statement_timeout=5s&lock_timeout=1s&options=-c%20jit%3Doff",
		"postgres://h/db?myapp.tenant=7&timezone=UTC&work_mem=64MB",
		"postgres://h/db?sslmode=disable&target_session_attrs=any&pool_max_conns=3",
	} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v, want it accepted", ok, err)
		}
	}
}

// TestDurationsRoundingToZero checks every duration parameter: a positive
// value that would round to 0 (none, or forever) is refused, naming it.
func TestDurationsRoundingToZero(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ raw, param string }{
		{"postgres://h/db?pool_timeout=0.0000000001", ParamPoolTimeout},
		{"postgres://h/db?pool_timeout=0.0004", ParamPoolTimeout},
		{"postgres://h/db?connect_timeout=1e-12", ParamConnectTimeout},
		{"postgres://h/db?socket_timeout=0.0000001", ParamSocketTimeout},
		{"postgres://h/db?max_idle_connection_lifetime=0.0000000001", ParamMaxIdleLifetime},
		{"postgres://h/db?pool_max_conn_lifetime=0.5ns", "pool_max_conn_lifetime"},
		{"postgres://h/db?pool_max_conn_idle_time=0.1ns", "pool_max_conn_idle_time"},
		{"postgres://h/db?pool_health_check_period=0.9ns", "pool_health_check_period"},
		{"postgres://h/db?pool_max_conn_lifetime_jitter=0.1ns", "pool_max_conn_lifetime_jitter"},
		{"postgres://h/db?pool_ping_timeout=0.1ns", "pool_ping_timeout"},
		{"postgres://h/db?statement_timeout=0.4", "statement_timeout"},
		{"postgres://h/db?lock_timeout=500us", "lock_timeout"},
		{"postgres://h/db?idle_in_transaction_session_timeout=0.5ms", "idle_in_transaction_session_timeout"},
		{"postgres://h/db?idle_session_timeout=0.9", "idle_session_timeout"},
		{"postgres://h/db?transaction_timeout=100us", "transaction_timeout"},
	} {
		_, err := Parse(tt.raw)
		var de *Error
		if !errors.As(err, &de) || de.Param != tt.param {
			t.Errorf("Parse(%q) = %v, want an error naming %s", tt.raw, err, tt.param)
		}
	}
	for _, ok := range []string{
		"postgres://h/db?pool_timeout=0&connect_timeout=0&socket_timeout=0&max_idle_connection_lifetime=0",
		"postgres://h/db?pool_timeout=0.001&socket_timeout=0.5",
		"postgres://h/db?pool_max_conn_lifetime=0s&pool_health_check_period=1ns&pool_ping_timeout=1s",
		"postgres://h/db?statement_timeout=0&lock_timeout=1&idle_session_timeout=1ms&transaction_timeout=5s",
	} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v, want it accepted", ok, err)
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
		if err != nil {
			return // FuzzRedaction checks what errors say
		}
		again, err := Parse(u.Clean)
		if err != nil {
			t.Fatalf("Clean %q of accepted %q does not parse: %v", u.Clean, raw, err)
		}
		if again.Clean != u.Clean {
			t.Fatalf("Clean is not stable: %q then %q", u.Clean, again.Clean)
		}
		if again.Redacted != u.Redacted {
			t.Fatalf("Redacted is not stable: %q then %q", u.Redacted, again.Redacted)
		}
	})
}

func TestDatabase(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ raw, want string }{
		{"postgres://u:pw@h/evals", "evals"},
		{"postgres://u:evals@h/my%20db", "my db"},
		{"postgres://u:pw@h/a?dbname=b&dbname=c", "c"},
		{"postgres://u:pw@h", ""},
		{"postgres://u:p/w@h/evals", ""}, // ambiguous: nothing of it
	} {
		if got := Database(tt.raw); got != tt.want {
			t.Errorf("Database(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

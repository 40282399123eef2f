package repo

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/internal/dsn"
)

// parsed is the part of Settings a table test compares.
type parsed struct {
	MaxConns           int32
	PoolTimeout        time.Duration
	ConnectTimeout     time.Duration
	QueryTimeout       time.Duration
	PgBouncer          bool
	ExecMode           pgx.QueryExecMode
	StatementCacheSize int
	SearchPath         string
	RuntimeParams      map[string]string
}

func summarize(s *Settings) parsed {
	return parsed{
		MaxConns: s.MaxConns, PoolTimeout: s.PoolTimeout, ConnectTimeout: s.ConnectTimeout,
		QueryTimeout: s.QueryTimeout, PgBouncer: s.PgBouncer, ExecMode: s.ExecMode,
		StatementCacheSize: s.StatementCacheSize, SearchPath: s.SearchPath,
		RuntimeParams: s.Pool.ConnConfig.RuntimeParams,
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	const base = "postgres://app:pw@db.example:5432/aah"
	tests := []struct {
		name string
		url  string
		env  Environment
		want parsed
	}{
		{"DevelopmentDefaults", base, Development, parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"EmptyEnvIsDevelopment", base, "", parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"ProductionDefaults", base, Production, parsed{MaxConns: 10, PoolTimeout: 20 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"TestDefaults", base, Test, parsed{MaxConns: 4, PoolTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"ExplicitBeatsDefaults", base + "?connection_limit=3&pool_timeout=0&connect_timeout=2&socket_timeout=30", Production,
			parsed{MaxConns: 3, PoolTimeout: 0, ConnectTimeout: 2 * time.Second, QueryTimeout: 30 * time.Second,
				ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"PoolMaxConnsStillWorks", base + "?pool_max_conns=7", Production, parsed{MaxConns: 7, PoolTimeout: 20 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"ConnectionLimitAgreesWithPoolMaxConns", base + "?pool_max_conns=7&connection_limit=7", Production, parsed{MaxConns: 7, PoolTimeout: 20 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
		{"PgBouncer", base + "?pgbouncer=true", Production, parsed{MaxConns: 10, PoolTimeout: 20 * time.Second, ConnectTimeout: 5 * time.Second,
			PgBouncer: true, ExecMode: pgx.QueryExecModeExec, StatementCacheSize: 0, RuntimeParams: map[string]string{}}},
		{"SchemaToSearchPath", base + "?schema=Eval", Development, parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, SearchPath: `"Eval"`, RuntimeParams: map[string]string{"search_path": `"Eval"`}}},
		{"StatementCacheSizeZero", base + "?statement_cache_size=0", Development, parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheDescribe, StatementCacheSize: 0, RuntimeParams: map[string]string{}}},
		{"StatementCacheSize", base + "?statement_cache_size=100", Development, parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 100, RuntimeParams: map[string]string{}}},
		{"OtherParamsReachServer", base + "?application_name=grader", Development, parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{"application_name": "grader"}}},
		{"RequireAuthWithVerifyFull", base + "?require_auth=scram-sha-256&sslmode=verify-full", Development, parsed{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			ExecMode: pgx.QueryExecModeCacheStatement, StatementCacheSize: 512, RuntimeParams: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseURL(tt.url, tt.env)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.url, err)
			}
			if diff := cmp.Diff(tt.want, summarize(s)); diff != "" {
				t.Errorf("ParseURL(%q) mismatch (-want +got):\n%s", tt.url, diff)
			}
			if s.Pool.MaxConns != s.MaxConns || s.Pool.ConnConfig.ConnectTimeout != s.ConnectTimeout {
				t.Errorf("pgxpool config disagrees: MaxConns %d/%d, ConnectTimeout %s/%s", s.Pool.MaxConns, s.MaxConns, s.Pool.ConnConfig.ConnectTimeout, s.ConnectTimeout)
			}
			if strings.Contains(s.Redacted, ":pw@") {
				t.Errorf("Redacted %q contains the password", s.Redacted)
			}
		})
	}
}

func TestParseURLSources(t *testing.T) {
	t.Parallel()
	s, err := ParseURL("postgres://h/db?connection_limit=3&pgbouncer=true&socket_timeout=4", Production)
	if err != nil {
		t.Fatal(err)
	}
	want := []Setting{
		{"max_conns", "3", "url: connection_limit"},
		{"pool_timeout", "20s", "default (production)"},
		{"connect_timeout", "5s", "default (production)"},
		{"query_timeout", "4s", "url: socket_timeout"},
		{"pgbouncer", "true", "url: pgbouncer"},
		{"statement_cache_size", "0", "url: pgbouncer=true"},
		{"exec_mode", "exec", "url: pgbouncer=true"},
		{"search_path", "server default", "default"},
	}
	if diff := cmp.Diff(want, s.Explain); diff != "" {
		t.Errorf("Explain mismatch (-want +got):\n%s", diff)
	}
}

func TestParseURLRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, param string
		want             []string
	}{
		{"ConnectionLimitABC", "postgres://h/db?connection_limit=abc", "connection_limit", []string{"1 to 10000"}},
		{"ConnectionLimitZero", "postgres://h/db?connection_limit=0", "connection_limit", []string{"1 to 10000"}},
		{"ConnectionLimitMinusOne", "postgres://h/db?connection_limit=-1", "connection_limit", []string{"1 to 10000"}},
		{"PoolTimeoutMinusFive", "postgres://h/db?pool_timeout=-5", "pool_timeout", []string{"0 to 86400"}},
		{"Malformed", "postgres://u:s3cret@h:notaport/db", "url", []string{"malformed"}},
		{"ConflictingLimits", "postgres://h/db?connection_limit=3&pool_max_conns=4", "connection_limit", []string{"pool_max_conns=4"}},
		{"MinAboveMax", "postgres://h/db?connection_limit=3&pool_min_conns=4", "pool_min_conns", []string{"connection limit (3)"}},
		{"RequireAuthWithoutVerifyFull", "postgres://h/db?require_auth=scram-sha-256&sslmode=require", "require_auth", []string{"verify-full", "impersonat"}},
		{"RequireAuthDefaultSSLMode", "postgres://h/db?require_auth=scram-sha-256", "require_auth", []string{"sslmode=prefer"}},
		{"ChannelBindingWithoutVerifyFull", "postgres://h/db?channel_binding=require&sslmode=verify-ca", "channel_binding", []string{"verify-full"}},
		{"SimpleProtocol", "postgres://h/db?default_query_exec_mode=simple_protocol", "default_query_exec_mode", []string{"batches"}},
		{"PgBouncerWithCache", "postgres://h/db?pgbouncer=true&statement_cache_size=10", "statement_cache_size", []string{"pgbouncer=true"}},
		{"PgBouncerWithCacheStatement", "postgres://h/db?pgbouncer=true&default_query_exec_mode=cache_statement", "default_query_exec_mode", []string{"pgbouncer=true"}},
		{"SchemaWithPgBouncer", "postgres://h/db?pgbouncer=true&schema=evals", "schema", []string{"ALTER ROLE", "pgbouncer=true"}},
		{"SearchPathWithPgBouncer", "postgres://h/db?pgbouncer=true&search_path=evals", "search_path", []string{"ALTER ROLE"}},
		{"SchemaAndSearchPath", "postgres://h/db?schema=a&search_path=b", "schema", []string{"search_path=b"}},
		{"PgxRejects", "postgres://u:s3cret@h/db?pool_max_conns=x", "url", []string{"pool_max_conns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseURL(tt.url, Development)
			var de *URLError // what callers name: repo.URLError is dberr.URLError
			if !errors.As(err, &de) {
				t.Fatalf("ParseURL(%q) = %v, want a *repo.URLError", tt.url, err)
			}
			if de.Param != tt.param {
				t.Errorf("ParseURL(%q) error names %q, want %q (error: %v)", tt.url, de.Param, tt.param, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseURL(%q) error %q does not mention %q", tt.url, err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("ParseURL(%q) error leaks the password: %v", tt.url, err)
			}
		})
	}
	if _, err := ParseURL("postgres://h/db", "staging"); err == nil || !strings.Contains(err.Error(), "development, production or test") {
		t.Errorf(`ParseURL(env "staging") = %v, want an error listing the environments`, err)
	}
}

func TestConfigFromLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want *Config
	}{
		{"DatabaseURLWins", map[string]string{"DATABASE_URL": "postgres://a/db", "POSTGRES_PRISMA_URL": "postgres://b/db"},
			&Config{URL: "postgres://a/db", DirectURL: "postgres://a/db", Env: Development,
				Sources: map[string]string{"URL": "DATABASE_URL", "DirectURL": "DATABASE_URL (no POSTGRES_URL_NON_POOLING or DIRECT_URL)", "Env": "default"}}},
		{"PrismaURLWhenDatabaseURLEmpty", map[string]string{"DATABASE_URL": "", "POSTGRES_PRISMA_URL": "postgres://b/db", "APP_ENV": "production"},
			&Config{URL: "postgres://b/db", DirectURL: "postgres://b/db", Env: Production,
				Sources: map[string]string{"URL": "POSTGRES_PRISMA_URL", "DirectURL": "POSTGRES_PRISMA_URL (no POSTGRES_URL_NON_POOLING or DIRECT_URL)", "Env": "APP_ENV"}}},
		{"NonPoolingWins", map[string]string{"POSTGRES_PRISMA_URL": "postgres://b/db", "POSTGRES_URL_NON_POOLING": "postgres://np/db", "DIRECT_URL": "postgres://d/db", "APP_ENV": "test"},
			&Config{URL: "postgres://b/db", DirectURL: "postgres://np/db", Env: Test,
				Sources: map[string]string{"URL": "POSTGRES_PRISMA_URL", "DirectURL": "POSTGRES_URL_NON_POOLING", "Env": "APP_ENV"}}},
		{"DirectURL", map[string]string{"DATABASE_URL": "postgres://a/db", "DIRECT_URL": "postgres://d/db"},
			&Config{URL: "postgres://a/db", DirectURL: "postgres://d/db", Env: Development,
				Sources: map[string]string{"URL": "DATABASE_URL", "DirectURL": "DIRECT_URL", "Env": "default"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ConfigFromLookup(mapLookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b *slog.Logger) bool { return a == b })); diff != "" {
				t.Errorf("ConfigFromLookup mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ConfigFromLookup(mapLookup(nil)); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("ConfigFromLookup(empty) = %v, want an error naming DATABASE_URL", err)
	}
	if _, err := ConfigFromLookup(mapLookup(map[string]string{"DATABASE_URL": "postgres://a/db", "APP_ENV": "prod"})); err == nil || !strings.Contains(err.Error(), `APP_ENV="prod"`) {
		t.Errorf("ConfigFromLookup(APP_ENV=prod) = %v, want an error naming APP_ENV", err)
	}
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// FuzzParseURL checks that no input panics and that every accepted URL
// round-trips through pgx: the pgx part parses with pgxpool.ParseConfig and
// translating it again gives the same connection target.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"postgres://u:pw@h:5432/db?connection_limit=5&pool_timeout=10",
		"postgresql://h/db?pgbouncer=true&schema=x&statement_cache_size=0",
		"postgres://u@h1:1,h2:2/db?socket_timeout=0.5&pool_max_conns=3",
		"postgres:///db?host=/tmp&connect_timeout=2&application_name=a",
		"postgres://h/db?require_auth=md5&sslmode=verify-full",
		"postgres://h/db?connection_limit=3&pool_min_conns=2&max_idle_connection_lifetime=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.Contains(raw, "sslrootcert") || strings.Contains(raw, "sslcert") || strings.Contains(raw, "sslkey") ||
			strings.Contains(raw, "service") || strings.Contains(raw, "passfile") {
			t.Skip("names files pgx would read")
		}
		if u, err := dsn.Parse(raw); err == nil {
			for k := range u.Params { // decoded: %73slrootcert is sslrootcert
				if k == "sslrootcert" || k == "sslcert" || k == "sslkey" || k == "service" || k == "servicefile" || k == "passfile" {
					t.Skip("names files pgx would read")
				}
			}
		}
		s, err := ParseURL(raw, Production)
		if err != nil {
			return
		}
		if _, err := pgxpool.ParseConfig(s.url.Clean); err != nil {
			t.Fatalf("accepted %q but pgx rejects its translation %q: %v", raw, s.Redacted, err)
		}
		again, err := ParseURL(s.url.Clean, Production)
		if err != nil {
			t.Fatalf("accepted %q but not its translation %q: %v", raw, s.Redacted, err)
		}
		a, b := s.Pool.ConnConfig, again.Pool.ConnConfig
		if a.Host != b.Host || a.Port != b.Port || a.Database != b.Database || a.User != b.User || a.Password != b.Password {
			t.Fatalf("translation of %q changes the target: %s:%d/%s as %s, then %s:%d/%s as %s",
				raw, a.Host, a.Port, a.Database, a.User, b.Host, b.Port, b.Database, b.User)
		}
	})
}

package repo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/observe"
)

// Environment selects evaldb's defaults and how much it logs. It is read from
// APP_ENV by ConfigFromEnv.
type Environment string

// The environments evaldb knows.
const (
	// Development: 5 connections, 10 s pool timeout, every query logged.
	Development Environment = "development"
	// Production: 10 connections, 20 s pool timeout, errors and slow queries logged.
	Production Environment = "production"
	// Test: 4 connections, 5 s pool timeout, warnings and errors logged.
	Test Environment = "test"
)

// Valid reports whether e is one of Development, Production and Test.
func (e Environment) Valid() bool {
	switch e {
	case Development, Production, Test:
		return true
	}
	return false
}

// Defaults are the settings an environment uses for anything the URL and
// Config do not set.
type Defaults struct {
	// MaxConns is the pool's connection limit (Prisma's connection_limit).
	MaxConns int32
	// PoolTimeout is how long a query waits for a free connection.
	PoolTimeout time.Duration
	// ConnectTimeout bounds dialling and authenticating one connection.
	ConnectTimeout time.Duration
	// LogLevel is the least severe level evaldb logs at. Every query is
	// logged at Info, so Info means "log every query".
	LogLevel slog.Level
}

// DefaultsFor returns the defaults of environment e (Development's when e is
// not valid). The figures follow the Prisma pooling guide: 5 connections and
// 10 s for development, 10 and 20 s for production (Vercel's limits); tests
// get a small pool that fails fast.
func DefaultsFor(e Environment) Defaults {
	switch e {
	case Production:
		return Defaults{MaxConns: 10, PoolTimeout: 20 * time.Second, ConnectTimeout: 5 * time.Second, LogLevel: slog.LevelError}
	case Test:
		return Defaults{MaxConns: 4, PoolTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, LogLevel: slog.LevelWarn}
	default:
		return Defaults{MaxConns: 5, PoolTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second, LogLevel: slog.LevelInfo}
	}
}

// DefaultSlowQueryThreshold is the default Config.SlowQueryThreshold: the
// platform troubleshooting guide's "Query took 2000ms".
const DefaultSlowQueryThreshold = 2 * time.Second

// Config configures Open and New. A nil *Config means Config{} (which Open
// refuses for want of a URL; New accepts it).
type Config struct {
	// URL is the pooled connection URL (DATABASE_URL). It may carry Prisma's
	// parameters and pgx's; see ParseURL. Required by Open; New ignores it.
	URL string

	// DirectURL is the non-pooling URL for migrations and other session-level
	// work that PgBouncer's transaction pooling breaks. Default: URL.
	DirectURL string

	// Env selects the defaults and the logging. Default: Development.
	Env Environment

	// Logger receives evaldb's log lines. nil discards them: a library is
	// quiet unless asked. Default: nil.
	Logger *slog.Logger

	// LogLevel overrides the environment's choice of what is logged: Info
	// logs every query, Warn only warnings (slow queries, retries, many
	// pools) and errors, Error only errors. Slow-query warnings are logged
	// whatever the level. Default: nil (Development Info, Test Warn,
	// Production Error).
	LogLevel slog.Leveler

	// SlowQueryThreshold is the duration from which a query is logged as a
	// slow-query warning. Negative disables the warning. Default: 2 s.
	SlowQueryThreshold time.Duration

	// QueryTimeout is a deadline for each statement run outside a
	// transaction, added to the caller's context. It overrides the URL's
	// socket_timeout. Default: socket_timeout, else none.
	QueryTimeout time.Duration

	// PoolTimeout is, for New with a *pgxpool.Pool, how long a statement
	// (or a transaction's BEGIN) waits for a free connection before it
	// fails with ErrPoolTimeout; 0 waits as long as its ctx allows. Open
	// ignores it: the URL's pool_timeout (or the environment's default)
	// sets Open's. Default: 0.
	PoolTimeout time.Duration

	// Observer receives an event for every statement (cache hits included)
	// and every transaction, for tracing; see package observe and
	// github.com/aah/evaldb/evalotel. It must be safe for concurrent use.
	// Default: nil (nothing is observed, at no cost).
	Observer observe.Observer

	// Tracer is a pgx tracer of your own (otelpgx, tracelog, ...) that runs
	// beside evaldb's on every connection of the pools Open makes (primary
	// and replicas). It may also implement pgx's BatchTracer,
	// CopyFromTracer, PrepareTracer and ConnectTracer. Open never replaces
	// it: both run (pgx's multitracer). Default: nil.
	Tracer pgx.QueryTracer

	// BeforeConnect runs before each new connection of Open's pools with a
	// copy of its configuration, which it may change: set a fresh password
	// there (an IAM token per connection). An error fails the connection.
	// Default: nil.
	BeforeConnect func(context.Context, *pgx.ConnConfig) error

	// AfterConnect runs after each new connection of Open's pools is made
	// and evaldb registered its types on it, before the pool uses it
	// (register your own types there). An error fails the connection.
	// Default: nil.
	AfterConnect func(context.Context, *pgx.Conn) error

	// ConfigurePool may adjust each pool's configuration (primary and
	// replicas) after evaldb set it from the URL and before the pool is
	// made: MinConns, health checks, PrepareConn. A tracer it sets runs
	// beside evaldb's. An error fails Open. Default: nil.
	ConfigurePool func(*pgxpool.Config) error

	// DisableCache turns off the read cache of package cachewrap in
	// Queries. Default: false (reads are cached).
	DisableCache bool

	// CacheOptions configures the read cache (size, TTL, …). Default: nil,
	// cachewrap's defaults.
	CacheOptions *cachewrap.Options

	// Coherence is how the cache learns of other processes' writes (other
	// instances, psql, migrations): CoherenceListen (one LISTEN session per
	// process on DirectURL), CoherencePoll (no session: change counters
	// read through the pool, at most once per MaxStaleness, only while
	// cached reads are served) or CoherenceTTL (not at all: within the
	// TTL). Repo.Coherence says which one Open chose, and why. Default:
	// CoherenceAuto (EVALDB_CACHE_COHERENCE), poll when URL or DirectURL
	// says pgbouncer=true, else listen.
	Coherence Coherence

	// MaxStaleness bounds, in CoherencePoll mode, how much older than the
	// latest committed writes a cached read may be. Default: 100 ms
	// (EVALDB_CACHE_MAX_STALENESS).
	MaxStaleness time.Duration

	// DisableListen, with Coherence unset, means CoherenceTTL. Deprecated:
	// set Coherence.
	DisableListen bool

	// Serverless says the process is one of many short-lived instances
	// (a serverless function), so that an automatic Coherence never holds
	// a LISTEN session per instance when URL goes through PgBouncer.
	// Default: false; ConfigFromLookup sets it when the platform's own
	// variable is present (VERCEL, AWS_LAMBDA_FUNCTION_NAME, NETLIFY,
	// FUNCTIONS_WORKER_RUNTIME).
	Serverless bool

	// ReplicaURLs are read replicas (hot standbys streaming from URL's
	// server), each a URL that ParseURL accepts. Queries sends read-only
	// queries to them and reads this process's own writes from the primary
	// until a replica has replayed them; see ReplicaStats and the package
	// doc. Empty: no replicas. Default: nil (DATABASE_REPLICA_URLS).
	ReplicaURLs []string

	// Replicas tunes replica routing (MaxLag, polling). Default: nil, the
	// ReplicaOptions defaults.
	Replicas *ReplicaOptions

	// Name labels this Repo's metrics (the "db" label) and log lines.
	// Default: the database name from URL, or "evaldb".
	Name string

	// Sources says where URL, DirectURL and Env came from (for example
	// "URL": "DATABASE_URL"), for `evaldb config`. ConfigFromEnv fills it.
	// Default: nil.
	Sources map[string]string
}

// Variables read by ConfigFromEnv, in order of precedence.
const (
	EnvDatabaseURL    = "DATABASE_URL"
	EnvPrismaURL      = "POSTGRES_PRISMA_URL"
	EnvNonPoolingURL  = "POSTGRES_URL_NON_POOLING"
	EnvDirectURL      = "DIRECT_URL"
	EnvAppEnvironment = "APP_ENV"
	// EnvReplicaURLs lists read replicas' URLs, separated by commas or
	// white space (see SplitReplicaURLs).
	EnvReplicaURLs = "DATABASE_REPLICA_URLS"
	// EnvCacheCoherence sets Config.Coherence: listen, poll or ttl.
	EnvCacheCoherence = "EVALDB_CACHE_COHERENCE"
	// EnvCacheMaxStaleness sets Config.MaxStaleness, as a Go duration
	// ("100ms").
	EnvCacheMaxStaleness = "EVALDB_CACHE_MAX_STALENESS"
)

// serverlessMarkers are variables that serverless platforms set in every
// function instance.
var serverlessMarkers = []string{"VERCEL", "AWS_LAMBDA_FUNCTION_NAME", "NETLIFY", "FUNCTIONS_WORKER_RUNTIME"}

// ConfigFromEnv builds a Config from the process environment; see
// ConfigFromLookup.
func ConfigFromEnv() (*Config, error) {
	return ConfigFromLookup(os.LookupEnv)
}

// ConfigFromLookup builds a Config from the variables lookup returns
// (os.LookupEnv, or a map in tests). An empty variable counts as unset.
//
//   - URL: DATABASE_URL, else POSTGRES_PRISMA_URL. DATABASE_URL wins because
//     it is what the application itself sets (Prisma's
//     url = env("DATABASE_URL")); POSTGRES_PRISMA_URL is injected by the
//     Vercel Postgres integration, and an explicit choice beats a platform's.
//   - DirectURL: POSTGRES_URL_NON_POOLING, else DIRECT_URL, else URL.
//     POSTGRES_URL_NON_POOLING wins because Vercel sets it alongside
//     POSTGRES_PRISMA_URL for exactly this purpose; DIRECT_URL is Prisma's
//     own name (directUrl = env("DIRECT_URL")).
//   - Env: APP_ENV (development, production or test), default development.
//   - ReplicaURLs: DATABASE_REPLICA_URLS, URLs separated by commas or white
//     space (SplitReplicaURLs); unset means no replicas.
//   - Coherence and MaxStaleness: EVALDB_CACHE_COHERENCE (listen, poll or
//     ttl) and EVALDB_CACHE_MAX_STALENESS (a duration such as 100ms).
//   - Serverless: set when VERCEL, AWS_LAMBDA_FUNCTION_NAME, NETLIFY or
//     FUNCTIONS_WORKER_RUNTIME is.
//
// It fails when neither URL variable is set or APP_ENV has another value;
// it does not parse the URLs (Open and ParseURL do).
func ConfigFromLookup(lookup func(string) (string, bool)) (*Config, error) {
	get := func(names ...string) (string, string) {
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				return v, n
			}
		}
		return "", ""
	}
	cfg := &Config{Sources: map[string]string{}}
	cfg.URL, cfg.Sources["URL"] = get(EnvDatabaseURL, EnvPrismaURL)
	if cfg.URL == "" {
		return nil, fmt.Errorf("repo: no database URL: set %s (or %s) to a postgres:// URL", EnvDatabaseURL, EnvPrismaURL)
	}
	cfg.DirectURL, cfg.Sources["DirectURL"] = get(EnvNonPoolingURL, EnvDirectURL)
	if cfg.DirectURL == "" {
		cfg.DirectURL, cfg.Sources["DirectURL"] = cfg.URL, cfg.Sources["URL"]+" (no "+EnvNonPoolingURL+" or "+EnvDirectURL+")"
	}
	if v, src := get(EnvReplicaURLs); v != "" {
		cfg.ReplicaURLs, cfg.Sources["ReplicaURLs"] = SplitReplicaURLs(v), src
	}
	if _, src := get(serverlessMarkers...); src != "" {
		cfg.Serverless, cfg.Sources["Serverless"] = true, src
	}
	if v, src := get(EnvCacheCoherence); v != "" {
		cfg.Coherence, cfg.Sources["Coherence"] = Coherence(v), src
		if !cfg.Coherence.Valid() || cfg.Coherence == CoherenceAuto {
			return nil, fmt.Errorf("repo: %s=%q: must be %s, %s or %s", EnvCacheCoherence, v, CoherenceListen, CoherencePoll, CoherenceTTL)
		}
	}
	if v, src := get(EnvCacheMaxStaleness); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("repo: %s=%q: must be a positive duration such as 100ms", EnvCacheMaxStaleness, v)
		}
		cfg.MaxStaleness, cfg.Sources["MaxStaleness"] = d, src
	}
	env, src := get(EnvAppEnvironment)
	cfg.Env, cfg.Sources["Env"] = Environment(env), src
	if env == "" {
		cfg.Env, cfg.Sources["Env"] = Development, "default"
	}
	if !cfg.Env.Valid() {
		return nil, fmt.Errorf("repo: %s=%q: must be development, production or test", EnvAppEnvironment, env)
	}
	return cfg, nil
}

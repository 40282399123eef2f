package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/internal/dsn"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/querymeta"
)

// Repo is evaldb's database handle: a connection pool (or any DBTX), the
// typed accessors over it, its metrics and its logger. Create one per
// process with Open and share it; it is safe for concurrent use. Close it
// when the process ends.
type Repo struct {
	cfg      Config
	settings *Settings        // nil for New
	pool     *pgxpool.Pool    // the pool Open made (nil for New)
	primary  *target          // the primary's pool, or New's DBTX
	cache    *cachewrap.Cache // nil when Config.DisableCache
	metrics  *Metrics
	log      *slog.Logger
	obs      observe.Observer // nil: nothing observed
	observed [querymeta.NumQueries]observe.Statement
	server   observe.Server
	retries  atomic.Int64
	regKey   string
	closed   sync.Once
	listen   *listening        // nil unless Open started the cache invalidation listener
	poller   *cachewrap.Poller // nil unless Open chose CoherencePoll
	// coherence is the mode Open chose and coherenceWhy the reason.
	coherence    Coherence
	coherenceWhy string
	rep          *replicaSet // nil without Config.ReplicaURLs; see replica.go
}

// Open parses cfg.URL (see ParseURL), builds one pgx pool with evaldb's
// tracers and checks that the server answers. When it cannot reach the
// server, the error wraps ErrUnreachable and names the host and port
// (never the password) and what to check. The Repo's pool is closed by
// Close. cfg may not be nil.
func Open(ctx context.Context, cfg *Config) (*Repo, error) {
	if cfg == nil || cfg.URL == "" {
		return nil, errors.New("repo: Config.URL is empty: set DATABASE_URL (or POSTGRES_PRISMA_URL), or use repo.ConfigFromEnv")
	}
	s, err := ParseURL(cfg.URL, cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	r, err := newRepo(cfg, cmp.Or(cfg.QueryTimeout, s.QueryTimeout))
	if err != nil {
		return nil, err
	}
	r.settings = s
	r.primary, err = r.newPool(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("repo: create pool for %s: %w", s.Redacted, err)
	}
	pool := r.primary.pool
	r.pool = pool
	cc := s.Pool.ConnConfig
	r.setServer(cc.Host, cc.Port, cc.Database)
	// The first ping dials: connect_timeout and ctx bound it, not the pool
	// timeout (which is about waiting for a busy pool).
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, unreachable(s.Pool, s, err)
	}
	r.regKey = registryKey(s.Pool)
	// Logged whatever the level, like slow queries: in production is where
	// a pool per request does its damage.
	if n := registry.open(r.regKey); n >= manyPools {
		r.log.WarnContext(ctx, "evaldb: this process has opened several pools to the same database; "+
			"create one Repo per process and share it (opening one per request exhausts the server's connections)",
			"pools", n, "database", r.regKey)
	}
	if err := r.openReplicas(ctx, cfg); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.checkTriggers(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.startCoherence(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// New wraps an executor that the caller owns, for example a pgxmock pool in
// a unit test or a pool built by other code. New does no I/O. Statements go
// through the same path as with Open (cache, per-statement deadline
// Config.QueryTimeout, retries, error translation). When db is a
// *pgxpool.Pool, New keeps everything a pool gives: connections are
// acquired within Config.PoolTimeout, the pool's own tracers see every
// statement, and Stats reports its figures. Close does not close db. A nil
// cfg means defaults.
func New(db DBTX, cfg *Config) (*Repo, error) {
	if db == nil {
		return nil, errors.New("repo: New: db is nil; pass a *pgxpool.Pool, a pgx.Tx or a pgxmock pool")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.PoolTimeout < 0 {
		return nil, fmt.Errorf("repo: Config.PoolTimeout must be >= 0 (got %s); 0 waits as long as the ctx allows", c.PoolTimeout)
	}
	r, err := newRepo(&c, c.QueryTimeout)
	if err != nil {
		return nil, err
	}
	p, _ := db.(*pgxpool.Pool)
	r.primary = newTarget(db, p, c.PoolTimeout, c.QueryTimeout)
	if p != nil {
		cc := p.Config().ConnConfig
		r.setServer(cc.Host, cc.Port, cc.Database)
	}
	return r, nil
}

// newRepo checks cfg and builds what Open and New share; stmtTimeout is the
// per-statement deadline (0: none), which also bounds the cache's shared
// loads.
func newRepo(cfg *Config, stmtTimeout time.Duration) (*Repo, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Env = cmp.Or(c.Env, Development)
	if !c.Env.Valid() {
		return nil, fmt.Errorf("repo: Config.Env %q: must be development, production or test", c.Env)
	}
	if !c.Coherence.Valid() {
		return nil, fmt.Errorf("repo: Config.Coherence %q: must be %q, %q, %q or empty (automatic)", c.Coherence, CoherenceListen, CoherencePoll, CoherenceTTL)
	}
	if c.MaxStaleness < 0 {
		return nil, fmt.Errorf("repo: Config.MaxStaleness must be >= 0 (got %s)", c.MaxStaleness)
	}
	if c.QueryTimeout < 0 {
		return nil, fmt.Errorf("repo: Config.QueryTimeout must be >= 0 (got %s)", c.QueryTimeout)
	}
	if c.Name == "" {
		c.Name = "evaldb"
		if db := dsn.Database(c.URL); db != "" {
			c.Name = db
		}
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Repo{cfg: c, metrics: newMetrics(c.Name), log: log, obs: c.Observer}
	if !c.DisableCache {
		var o cachewrap.Options
		if c.CacheOptions != nil {
			o = *c.CacheOptions
		}
		if o.LoadTimeout == 0 {
			o.LoadTimeout = stmtTimeout
		}
		cache, err := cachewrap.New(queries{r}, &o)
		if err != nil {
			return nil, fmt.Errorf("repo: Config.CacheOptions: %w", err)
		}
		r.cache = cache
	}
	r.setServer("", 0, "")
	return r, nil
}

// setServer fills the observer's description of every query.
func (r *Repo) setServer(host string, port uint16, database string) {
	r.server = observe.Server{Address: host, Port: int(port), Database: database}
	for i := range querymeta.Queries {
		q := &querymeta.Queries[i]
		r.observed[i] = observe.Statement{Name: q.Name, SQL: q.SQL, Operation: q.Operation, ReadOnly: q.ReadOnly, Server: r.server}
	}
}

// statementFor describes hand-written SQL for the observer: q and name
// are its query (nil when not one of gen's) and QueryName(sql).
func (r *Repo) statementFor(sql, name string, q *querymeta.Query) *observe.Statement {
	if q != nil {
		return &r.observed[q.ID]
	}
	op := "OTHER"
	for _, line := range strings.Split(sql, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			op, _, _ = strings.Cut(line, " ")
			break
		}
	}
	switch name {
	case "begin", "commit", "rollback":
		name = strings.ToUpper(name)
	}
	return &observe.Statement{Name: name, SQL: sql, Operation: strings.ToUpper(op), Server: r.server}
}

func (r *Repo) level() slog.Leveler {
	if r.cfg.LogLevel != nil {
		return r.cfg.LogLevel
	}
	return DefaultsFor(r.cfg.Env).LogLevel
}

func (r *Repo) slow() time.Duration {
	if r.cfg.SlowQueryThreshold < 0 {
		return 0
	}
	return cmp.Or(r.cfg.SlowQueryThreshold, DefaultSlowQueryThreshold)
}

// Queries returns the typed accessors, bound to the pool, with errors
// translated (ErrNotFound, *ConflictError, ErrPoolTimeout, …) and reads
// served from the cache of package cachewrap unless Config.DisableCache.
// Writes through it invalidate the cache; writes made elsewhere need
// Cache().Invalidate. Safe for concurrent use; call it as often as
// convenient (it allocates nothing).
func (r *Repo) Queries() gen.Querier { return queries{r} }

// DB returns the primary for hand-written SQL: each statement waits at most
// the pool timeout for a connection, runs under the per-statement deadline,
// and its errors are translated (ErrNotFound, *ConflictError, ...). It is
// not cached, routed or retried; with replicas, a write through it is
// followed by the primary's WAL position, so the Repo's reads see it. It
// has Begin and BeginTx, so txn.Do and pgx.BeginFunc accept it. Safe for
// concurrent use.
func (r *Repo) DB() DBTX { return handle{r} }

// Settings returns the translated configuration of a Repo made by Open, or
// nil for one made by New. The caller must not modify it.
func (r *Repo) Settings() *Settings { return r.settings }

// Metrics returns the per-query timings (filled only for a Repo made by
// Open, whose pool carries the tracers).
func (r *Repo) Metrics() *Metrics { return r.metrics }

// Cache returns the read cache behind Queries (for Invalidate, Stats and
// its Prometheus Collector), or nil when Config.DisableCache is set.
func (r *Repo) Cache() *cachewrap.Cache { return r.cache }

// newPool builds a pool for the translated settings s, with evaldb's tracer,
// the uuid codec and cancel-request handling on every connection, and the
// executor over it that bounds the wait for a connection by s.PoolTimeout.
// The primary and every replica are built the same way.
func (r *Repo) newPool(ctx context.Context, s *Settings) (*target, error) {
	pcfg := s.Pool.Copy()
	pcfg.AfterConnect = registerTypes(r.cfg.AfterConnect)
	if r.cfg.BeforeConnect != nil {
		pcfg.BeforeConnect = r.cfg.BeforeConnect
	}
	cancelOnDone(pcfg.ConnConfig)
	pcfg.ConnConfig.Tracer = nil
	if r.cfg.ConfigurePool != nil {
		if err := r.cfg.ConfigurePool(pcfg); err != nil {
			return nil, fmt.Errorf("Config.ConfigurePool: %w", err)
		}
	}
	var tr pgx.QueryTracer = &tracer{log: r.log, level: r.level(), slow: r.slow(), metrics: r.metrics}
	if theirs := nonNil(r.cfg.Tracer, pcfg.ConnConfig.Tracer); len(theirs) > 0 {
		tr = multitracer.New(append([]pgx.QueryTracer{tr}, theirs...)...)
	}
	pcfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	return newTarget(pool, pool, s.PoolTimeout, cmp.Or(r.cfg.QueryTimeout, s.QueryTimeout)), nil
}

func nonNil(ts ...pgx.QueryTracer) []pgx.QueryTracer {
	var out []pgx.QueryTracer
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// registerTypes teaches each new connection to encode and decode
// github.com/google/uuid.UUID (gen's uuid type) directly (registerUUID).
// pgx 5.11 otherwise handles it through its generic fallbacks: several
// microseconds and about 20 allocations per value, which dominates COPY of
// large runs. Then, after Config.AfterConnect (which may register codecs of
// its own), the connection remembers its scan plans (memoizeScanPlans).
func registerTypes(next func(context.Context, *pgx.Conn) error) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, conn *pgx.Conn) error {
		registerUUID(conn.TypeMap())
		if next != nil {
			if err := next(ctx, conn); err != nil {
				return err
			}
		}
		memoizeScanPlans(conn.TypeMap())
		return nil
	}
}

// cancelGrace is how long a statement whose ctx ended has to come back
// after its cancel request before its connection is closed instead (pgconn's
// DeadlineDelay). The server answers a cancel request at once, so only a
// stalled network or server waits this long.
const cancelGrace = time.Second

// cancelOnDone makes a pool's connections stop a statement whose ctx ends
// the way psql's Ctrl-C does: pgconn's CancelRequestContextWatcherHandler
// sends a cancel request at once (CancelRequestDelay 0), the server answers
// the statement with SQLSTATE 57014 and the connection stays usable. pgx's
// default handler closes the connection instead, so every cancelled
// statement cost a new connection. The call returns about 100 ms after the
// cancel: pgconn waits that long after sending the cancel request so that it
// cannot hit the connection's next statement. The executor (with
// dberr.TranslateCtx) and releaseTx (with dberr.WithContext) turn the 57014
// into ctx.Err(). When no answer comes within cancelGrace (a stalled link),
// the connection's deadline closes it, so the caller is never held longer
// than that past its ctx. Not for the cache's LISTEN connection, whose
// waits end by ctx on purpose and must not cost a cancel request and
// cancelGrace each.
func cancelOnDone(cc *pgx.ConnConfig) {
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: cancelGrace}
	}
}

// Ping checks that the database answers, waiting at most the pool timeout
// for a connection. It is what a health check should call. Safe for
// concurrent use.
func (r *Repo) Ping(ctx context.Context) error { return handle{r}.Ping(ctx) }

// Close stops the cache and closes the pool of a Repo made by Open, waiting
// for acquired connections to be released. It does not close the executor
// given to New. A second call does nothing.
func (r *Repo) Close() {
	r.closed.Do(func() {
		r.stopListener()
		r.rep.close()
		if r.cache != nil {
			r.cache.Close()
		}
		if r.pool != nil {
			r.pool.Close()
			registry.close(r.regKey)
		}
	})
}

// unreachable explains a failed first ping.
func unreachable(pcfg *pgxpool.Config, s *Settings, err error) error {
	cc := pcfg.ConnConfig
	target := fmt.Sprintf("%s:%d", cc.Host, cc.Port)
	err = dberr.Translate(err)
	if errors.Is(err, dberr.ErrPoolTimeout) {
		return fmt.Errorf("repo: open %s: %w", s.Redacted, err)
	}
	// The server answered: it is reachable, and its own message says why
	// it refused.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("repo: PostgreSQL at %s (database %q, user %q) refused the connection: %w\n%s",
			target, cc.Database, cc.User, err, refusedHint(pgErr.Code))
	}
	return fmt.Errorf("repo: cannot reach PostgreSQL at %s (database %q, user %q): %w\n"+
		"check that the server is running and accepts TCP connections on %s, that host and port in the URL "+
		"(%s) are right, firewalls, sslmode, and the user's password and pg_hba.conf entry; "+
		"connect_timeout is %s", target, cc.Database, cc.User, err, target, s.Redacted, durText(s.ConnectTimeout, "none"))
}

// refusedHint says what to check for a SQLSTATE the server reports at
// connect.
func refusedHint(code string) string {
	switch {
	case code == "28P01" || code == "28000":
		return "check the user name and password in the URL, and the server's pg_hba.conf entry for this client"
	case code == "3D000":
		return "the database does not exist: create it, or fix the database name in the URL's path"
	case code == "42704" || code == "22023" || code == "42602":
		return "a URL parameter reached the server as a run-time setting it does not accept: fix or remove it (evaldb passes on every parameter it and pgx do not know)"
	case code == "53300":
		return "the server has no connection slots left: lower connection_limit, the number of instances, or raise max_connections"
	case code == "57P03":
		return "the server is starting up, shutting down or in recovery: retry shortly"
	}
	return "the server's message above says why"
}

// manyPools is the number of pools to one database from one process from
// which Open warns. Two is common (an app and its migrations); more is the
// per-request anti-pattern.
const manyPools = 3

type poolRegistry struct {
	mu    sync.Mutex
	count map[string]int
}

var registry = &poolRegistry{count: map[string]int{}}

func (p *poolRegistry) open(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count[key]++
	return p.count[key]
}

func (p *poolRegistry) close(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[key]--; p.count[key] <= 0 {
		delete(p.count, key)
	}
}

// registryKey identifies a database without secrets: user@host:port/db.
func registryKey(pcfg *pgxpool.Config) string {
	cc := pcfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
}

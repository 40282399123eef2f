package repo

import (
	"crypto/tls"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/internal/dsn"
)

// Settings is what a connection URL means once translated: the pgxpool
// configuration plus evaldb's own settings, with where each came from.
// ParseURL returns it; Open uses it. A Settings is not modified after
// ParseURL returns and may be read concurrently.
type Settings struct {
	// Pool is the configuration handed to pgxpool, Prisma's parameters
	// already mapped and removed. It holds the password: never log it.
	// Open adds its tracers to a copy.
	Pool *pgxpool.Config

	// Env is the environment whose defaults filled the gaps.
	Env Environment

	// MaxConns is the connection limit (connection_limit or pool_max_conns).
	MaxConns int32
	// PoolTimeout is how long a query waits for a free connection; 0 waits
	// for ever (bounded only by the caller's context).
	PoolTimeout time.Duration
	// ConnectTimeout bounds dialling one connection; 0 means none.
	ConnectTimeout time.Duration
	// QueryTimeout is the per-statement deadline (socket_timeout); 0 means none.
	QueryTimeout time.Duration
	// PgBouncer is true when pgbouncer=true: exec mode, no statement cache.
	PgBouncer bool
	// ExecMode is pgx's default query exec mode.
	ExecMode pgx.QueryExecMode
	// StatementCacheSize is pgx's statement cache capacity per connection.
	StatementCacheSize int
	// SearchPath is the search_path sent at connect ("" = server default).
	SearchPath string

	// Redacted is the URL without Prisma's parameters and without password.
	Redacted string

	// Explain lists every setting with its value and where it came from, in
	// a fixed order, for `evaldb config`.
	Explain []Setting

	url *dsn.URL
}

// Setting is one line of Settings.Explain.
type Setting struct {
	// Name is the setting, e.g. "max_conns".
	Name string
	// Value is its value as text.
	Value string
	// Source is where it came from: "url: connection_limit",
	// "default (production)", "pgx default", ….
	Source string
}

// ParseURL translates a Prisma-style connection URL for environment env
// (Development when empty). Prisma's parameters are removed before pgx sees
// them and mapped:
//
//	connection_limit             → MaxConns (pgx's pool_max_conns also works; both must agree)
//	pool_timeout (s, 0=forever)  → PoolTimeout, enforced on every acquire
//	connect_timeout (s)          → pgx's ConnectTimeout
//	socket_timeout (s)           → QueryTimeout, a per-statement deadline
//	pgbouncer=true               → exec mode and no statement cache (PgBouncer transaction pooling)
//	schema                       → search_path
//	statement_cache_size         → pgx's statement cache capacity (0 = none)
//	max_idle_connection_lifetime → pgxpool's MaxConnIdleTime (0 = never)
//
// Anything not given takes the environment's default (DefaultsFor). The
// error names the parameter and the accepted range and never contains the
// password. It refuses require_auth and channel_binding=require without
// sslmode=verify-full: pgx v5.11 does not enforce them against a server that
// impersonates the real one unless the certificate and host name are
// verified, so they would promise a protection they do not give. It refuses
// default_query_exec_mode=simple_protocol, which evaldb's batches must not
// use. ParseURL does no I/O beyond what pgx's parser does (reading sslrootcert
// and similar files named in the URL).
func ParseURL(rawURL string, env Environment) (*Settings, error) {
	if env == "" {
		env = Development
	}
	if !env.Valid() {
		return nil, fmt.Errorf("repo: environment %q: must be development, production or test", env)
	}
	u, err := dsn.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	// pgx parses the redacted URL, so none of its errors can hold the
	// password; the password is set afterwards.
	pcfg, err := pgxpool.ParseConfig(u.Redacted)
	if err != nil {
		return nil, &dsn.Error{Param: "url", Reason: "malformed: " + err.Error()}
	}
	if pw, ok := u.Password(); ok {
		pcfg.ConnConfig.Password = pw
	}
	d := DefaultsFor(env)
	envSrc := "default (" + string(env) + ")"
	s := &Settings{Pool: pcfg, Env: env, Redacted: u.Redacted, url: u}
	add := func(name, value, source string) {
		s.Explain = append(s.Explain, Setting{Name: name, Value: value, Source: source})
	}
	bad := func(param, value, reason string) error {
		return &dsn.Error{Param: param, Value: value, Reason: reason}
	}

	// Connection limit.
	pmc, hasPMC := u.Params["pool_max_conns"]
	switch {
	case u.ConnectionLimit != nil:
		if hasPMC && pcfg.MaxConns != *u.ConnectionLimit {
			return nil, bad(dsn.ParamConnectionLimit, strconv.Itoa(int(*u.ConnectionLimit)),
				"conflicts with pool_max_conns="+pmc+"; give only one of them")
		}
		s.MaxConns = *u.ConnectionLimit
		add("max_conns", strconv.Itoa(int(s.MaxConns)), "url: connection_limit")
	case hasPMC:
		s.MaxConns = pcfg.MaxConns
		add("max_conns", strconv.Itoa(int(s.MaxConns)), "url: pool_max_conns")
	default:
		s.MaxConns = d.MaxConns
		add("max_conns", strconv.Itoa(int(s.MaxConns)), envSrc)
	}
	pcfg.MaxConns = s.MaxConns
	if pcfg.MinConns > pcfg.MaxConns {
		return nil, bad("pool_min_conns", u.Params["pool_min_conns"], fmt.Sprintf("must not exceed the connection limit (%d)", pcfg.MaxConns))
	}
	if pcfg.MinIdleConns > pcfg.MaxConns {
		return nil, bad("pool_min_idle_conns", u.Params["pool_min_idle_conns"], fmt.Sprintf("must not exceed the connection limit (%d)", pcfg.MaxConns))
	}

	// Pool timeout.
	if u.PoolTimeout != nil {
		s.PoolTimeout = *u.PoolTimeout
		add("pool_timeout", durText(s.PoolTimeout, "wait forever"), "url: pool_timeout")
	} else {
		s.PoolTimeout = d.PoolTimeout
		add("pool_timeout", durText(s.PoolTimeout, "wait forever"), envSrc)
	}

	// Connect timeout. pgx would also read connect_timeout, but dsn removed
	// it so that its range is checked here; PGCONNECT_TIMEOUT still reaches pgx.
	switch {
	case u.ConnectTimeout != nil:
		s.ConnectTimeout = *u.ConnectTimeout
		add("connect_timeout", durText(s.ConnectTimeout, "none"), "url: connect_timeout")
	case pcfg.ConnConfig.ConnectTimeout != 0:
		s.ConnectTimeout = pcfg.ConnConfig.ConnectTimeout
		add("connect_timeout", durText(s.ConnectTimeout, "none"), "environment: PGCONNECT_TIMEOUT")
	default:
		s.ConnectTimeout = d.ConnectTimeout
		add("connect_timeout", durText(s.ConnectTimeout, "none"), envSrc)
	}
	pcfg.ConnConfig.ConnectTimeout = s.ConnectTimeout

	// Per-query deadline.
	if u.SocketTimeout != nil {
		s.QueryTimeout = *u.SocketTimeout
		add("query_timeout", durText(s.QueryTimeout, "none"), "url: socket_timeout")
	} else {
		add("query_timeout", "none", "default")
	}

	// Exec mode and statement cache.
	modeText, hasMode := u.Params["default_query_exec_mode"]
	if pcfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol {
		return nil, bad("default_query_exec_mode", modeText,
			"simple_protocol is not supported: evaldb sends batches, which must not run in simple protocol; "+
				"use exec (what pgbouncer=true selects) or leave it unset")
	}
	if u.PgBouncer != nil && *u.PgBouncer {
		s.PgBouncer = true
		if hasMode && pcfg.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeExec &&
			pcfg.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeDescribeExec {
			return nil, bad("default_query_exec_mode", modeText, "conflicts with pgbouncer=true, which needs exec; remove one of them")
		}
		if u.StatementCacheSize != nil && *u.StatementCacheSize > 0 {
			return nil, bad(dsn.ParamStatementCacheSize, strconv.Itoa(*u.StatementCacheSize),
				"conflicts with pgbouncer=true: PgBouncer's transaction pooling cannot keep prepared statements; use 0 or remove it")
		}
		if !hasMode {
			pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		}
		pcfg.ConnConfig.StatementCacheCapacity = 0
		pcfg.ConnConfig.DescriptionCacheCapacity = 0
		add("pgbouncer", "true", "url: pgbouncer")
	} else {
		add("pgbouncer", "false", "default")
	}
	switch {
	case s.PgBouncer:
		add("statement_cache_size", "0", "url: pgbouncer=true")
	case u.StatementCacheSize != nil:
		pcfg.ConnConfig.StatementCacheCapacity = *u.StatementCacheSize
		add("statement_cache_size", strconv.Itoa(*u.StatementCacheSize), "url: statement_cache_size")
	case u.Params["statement_cache_capacity"] != "":
		add("statement_cache_size", strconv.Itoa(pcfg.ConnConfig.StatementCacheCapacity), "url: statement_cache_capacity")
	default:
		add("statement_cache_size", strconv.Itoa(pcfg.ConnConfig.StatementCacheCapacity), "pgx default")
	}
	if pcfg.ConnConfig.StatementCacheCapacity == 0 && pcfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		// pgx fails every query in cache_statement mode without a cache.
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		if pcfg.ConnConfig.DescriptionCacheCapacity == 0 {
			pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
		}
	}
	s.StatementCacheSize = pcfg.ConnConfig.StatementCacheCapacity
	s.ExecMode = pcfg.ConnConfig.DefaultQueryExecMode
	switch {
	case s.PgBouncer && !hasMode:
		add("exec_mode", s.ExecMode.String(), "url: pgbouncer=true")
	case hasMode:
		add("exec_mode", s.ExecMode.String(), "url: default_query_exec_mode")
	default:
		add("exec_mode", s.ExecMode.String(), "pgx default")
	}

	// Schema.
	if u.Schema != nil {
		if sp, ok := u.Params["search_path"]; ok {
			return nil, bad(dsn.ParamSchema, *u.Schema, "conflicts with search_path="+sp+"; give only one of them")
		}
		s.SearchPath = pgx.Identifier{*u.Schema}.Sanitize()
		pcfg.ConnConfig.RuntimeParams["search_path"] = s.SearchPath
		add("search_path", s.SearchPath, "url: schema")
	} else if sp, ok := pcfg.ConnConfig.RuntimeParams["search_path"]; ok {
		s.SearchPath = sp
		add("search_path", sp, "url: search_path")
	} else {
		add("search_path", "server default", "default")
	}

	if s.PgBouncer && s.SearchPath != "" {
		// PgBouncer (1.18) refuses search_path as a startup parameter, and
		// a SET per connection would not survive transaction pooling.
		param := "search_path"
		if u.Schema != nil {
			param = dsn.ParamSchema
		}
		return nil, bad(param, s.SearchPath, "cannot be combined with pgbouncer=true: PgBouncer rejects search_path at connect; "+
			"set it on the role or database instead (ALTER ROLE <user> SET search_path = "+s.SearchPath+") and drop it from the URL")
	}

	// Idle lifetime.
	if u.MaxIdleLifetime != nil {
		pcfg.MaxConnIdleTime = *u.MaxIdleLifetime
		if pcfg.MaxConnIdleTime == 0 {
			pcfg.MaxConnIdleTime = math.MaxInt64
		}
		add("max_conn_idle_time", durText(*u.MaxIdleLifetime, "never"), "url: max_idle_connection_lifetime")
	}

	// require_auth and channel_binding promise protection against an
	// impersonating server that pgx only gives with full verification.
	if err := checkAuthPins(pcfg.ConnConfig, u); err != nil {
		return nil, err
	}
	return s, nil
}

func checkAuthPins(cc *pgx.ConnConfig, u *dsn.URL) error {
	ra, cb := cc.RequireAuth, cc.ChannelBinding
	if ra == "" && cb != "require" {
		return nil
	}
	verified := func(t *tls.Config) bool { return t != nil && !t.InsecureSkipVerify && t.ServerName != "" }
	ok := verified(cc.TLSConfig)
	for _, fb := range cc.Fallbacks {
		ok = ok && verified(fb.TLSConfig)
	}
	if ok {
		return nil
	}
	param, value := "require_auth", ra
	if ra == "" {
		param, value = "channel_binding", cb
	}
	return &dsn.Error{Param: param, Value: value, Reason: "needs sslmode=verify-full (got sslmode=" + orText(u.Params["sslmode"], "prefer") +
		"): pgx v5.11 does not enforce it against a server that impersonates the real one unless the TLS certificate and host name are verified; " +
		"add sslmode=verify-full (with sslrootcert if the CA is private) or remove " + param}
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func durText(d time.Duration, zero string) string {
	if d == 0 {
		return "0 (" + zero + ")"
	}
	return d.String()
}

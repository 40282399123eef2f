// Package repo provides evaldb's database handle: one pgx connection pool
// per process, configured from a Prisma-style environment, with the typed
// accessors of package gen on top.
//
// A *Repo is safe for concurrent use. Create it once per process with Open
// and share it (the Prisma pooling guide's singleton); opening a Repo per
// request opens a pool per request, exhausts the server's connections and
// makes every request pay for a TCP and authentication handshake. Open logs a
// warning when one process holds several pools to the same database.
//
// Configuration comes from the environment (ConfigFromEnv): DATABASE_URL or
// POSTGRES_PRISMA_URL, whose Prisma parameters (connection_limit,
// pool_timeout, connect_timeout, socket_timeout, pgbouncer, schema,
// statement_cache_size) are translated for pgx by ParseURL, and APP_ENV,
// which chooses the defaults and how much is logged.
//
// Every generated query of Queries goes through one generic function, run
// (statement.go), handed the query's metadata from package querymeta by a
// generated one-line method: the cache lookup, routing to the primary or a
// replica with read-your-writes, the acquire within the pool timeout (see
// ErrPoolTimeout), the sqlc method under the caller's context plus the
// per-statement deadline, error translation once (package dberr's errors),
// a bounded retry of what is safe to run again, and after a write the WAL
// position and the cache's generations. Hand-written SQL through DB() gets
// the pool timeout, the deadline and the translation. pgx tracers log and
// time every statement by its sqlc name (see Metrics and Collector), and
// Config.Observer sees each one (see package observe).
package repo

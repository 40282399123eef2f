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
// Queries go through three layers: the pool (which bounds how long a query
// waits for a connection, see ErrPoolTimeout), an executor that applies the
// per-query deadline, retries once a statement that never reached the
// server, and translates driver errors with internal/dberr, and pgx tracers
// that log and time every query by its sqlc name (see Metrics and
// Collector).
package repo

-- CountConnectionsByState counts the connections to the current database by
-- state (active, idle, idle in transaction, …), the pooling guide's
-- monitoring query broken down. Background workers have no state and are
-- left out. Never cached: it reports live server state.
-- cache: off
-- name: CountConnectionsByState :many
SELECT state::text AS state, count(*) AS connections
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND state IS NOT NULL
GROUP BY state
ORDER BY state;

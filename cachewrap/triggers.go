package cachewrap

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/querymeta"
)

// TriggerQuerier is what CheckTriggers needs of a connection: a pool, a
// pgx.Conn, or package repo's executor.
type TriggerQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// TriggeredTablesSQL lists the tables visible on the search path that have
// a statement-level trigger running evaldb_notify_invalidate on INSERT,
// UPDATE, DELETE and TRUNCATE (tgtype bit 1 is FOR EACH ROW; 4, 8, 16 and 32
// are the events), and that is enabled.
const TriggeredTablesSQL = `SELECT DISTINCT c.relname::text
FROM pg_catalog.pg_trigger tg
JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
WHERE p.proname = 'evaldb_notify_invalidate' AND tg.tgenabled <> 'D'
  AND tg.tgtype & 1 = 0 AND tg.tgtype & 60 = 60 AND pg_catalog.pg_table_is_visible(c.oid)`

// CheckTriggers asks the database which of the tables this cache holds reads
// of lack evaldb's notification trigger (a database that evaldb's migrations
// did not create, such as one still managed by Prisma, or one migrated
// without the generated triggers). Writes to such a table by another
// process or by psql never reach the cache, so CheckTriggers stops caching
// every query that reads one, logs a warning naming the tables and what to
// do, and returns them. Tables in ttlOnly ("*" for all) are cached anyway:
// the caller accepts that other writers' changes show only when cached
// reads expire (Options.TTL or the query's ttl=). Call it before the cache
// is used; package repo's Open does, with Options.TTLOnly.
func (c *Cache) CheckTriggers(ctx context.Context, db TriggerQuerier, ttlOnly []string, log *slog.Logger) ([]string, error) {
	rows, err := db.Query(ctx, TriggeredTablesSQL)
	if err != nil {
		return nil, fmt.Errorf("cachewrap: check the notification triggers: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cachewrap: check the notification triggers: %w", err)
	}
	return c.UseTriggers(ctx, have, ttlOnly, log), nil
}

// UseTriggers is CheckTriggers for a caller that ran TriggeredTablesSQL
// itself: have are the tables it returned.
func (c *Cache) UseTriggers(ctx context.Context, have, ttlOnly []string, log *slog.Logger) []string {
	all := slices.Contains(ttlOnly, "*")
	missing := make([]bool, len(querymeta.Tables))
	for id, name := range querymeta.Tables {
		missing[id] = !all && !slices.Contains(have, name) && !slices.Contains(ttlOnly, name)
	}
	var names []string
	var off []string
	for i := range querymeta.Queries {
		if c.off[i] {
			continue
		}
		q := &querymeta.Queries[i]
		for _, t := range q.ReadTables {
			if !missing[t] {
				continue
			}
			if !c.off[i] {
				c.off[i] = true
				off = append(off, q.Name)
			}
			if !slices.Contains(names, querymeta.Tables[t]) {
				names = append(names, querymeta.Tables[t])
			}
		}
	}
	if len(names) > 0 && log != nil {
		slices.Sort(names)
		log.WarnContext(ctx, "evaldb: the database has no cache notification trigger on "+strings.Join(names, ", ")+
			": writes to them by other processes would never reach this cache, so reads of them are not cached. "+
			"Run `evaldb migrate` (or apply schema/generated/notify_gen.sql), or accept TTL-only staleness for them "+
			"with cachewrap.Options.TTLOnly",
			"tables", names, "uncached_queries", off)
	}
	return names
}

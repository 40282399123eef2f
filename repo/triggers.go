package repo

import (
	"context"
	"fmt"

	"github.com/aah/evaldb/cachewrap"
)

// checkTriggers makes the cache of a Repo made by Open skip reads of tables
// the connected database has no notification trigger for (see
// cachewrap.Cache.CheckTriggers), unless CacheOptions.TTLOnly names them.
// The catalog read goes through pgconn, below pgx's tracer: it is evaldb's
// own, not one of the application's statements in the query metrics.
func (r *Repo) checkTriggers(ctx context.Context) error {
	if r.cache == nil || r.pool == nil {
		return nil
	}
	var ttlOnly []string
	if r.cfg.CacheOptions != nil {
		ttlOnly = r.cfg.CacheOptions.TTLOnly
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("repo: check the cache notification triggers: %w", err)
	}
	defer conn.Release()
	res := conn.Conn().PgConn().ExecParams(ctx, cachewrap.TriggeredTablesSQL, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("repo: check the cache notification triggers: %w", res.Err)
	}
	have := make([]string, len(res.Rows))
	for i, row := range res.Rows {
		have[i] = string(row[0])
	}
	r.cache.UseTriggers(ctx, have, ttlOnly, r.log)
	return nil
}

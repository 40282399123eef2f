package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/cachewrap"
)

// Coherence is how a Repo's read cache learns of writes made by other
// processes (other instances, psql, migrations, the TypeScript service).
// Writes through the Repo itself are always seen at once.
type Coherence string

const (
	// CoherenceAuto picks CoherencePoll when the URL goes through PgBouncer
	// (pgbouncer=true) and CoherenceListen otherwise.
	CoherenceAuto Coherence = ""
	// CoherenceListen holds one session connection per process, on
	// DirectURL, outside connection_limit, and LISTENs for the triggers'
	// commit-time notifications: invalidation within about a millisecond of
	// COMMIT, nothing per read. For long-running services with a direct URL.
	CoherenceListen Coherence = "listen"
	// CoherencePoll needs no session: before serving a cached read, when
	// the last look is older than Config.MaxStaleness, the Repo reads the
	// triggers' change counters through its ordinary pool (one small query,
	// shared by concurrent readers) and invalidates the tables that changed.
	// An idle process costs the server nothing. For PgBouncer's transaction
	// pooling and serverless instances.
	CoherencePoll Coherence = "poll"
	// CoherenceTTL trusts the TTL: other processes' writes are seen when
	// cached reads expire. Prisma 8's cache does only this.
	CoherenceTTL Coherence = "ttl"
)

// Valid reports whether c is one of the modes.
func (c Coherence) Valid() bool {
	switch c {
	case CoherenceAuto, CoherenceListen, CoherencePoll, CoherenceTTL:
		return true
	}
	return false
}

// DefaultMaxStaleness is the default Config.MaxStaleness.
const DefaultMaxStaleness = 100 * time.Millisecond

// ResolveCoherence returns the mode that Open would choose for cfg, and
// why, without any I/O (for `evaldb config`). Automatic (Coherence unset):
//
//   - CoherencePoll when URL says pgbouncer=true and there is no direct URL
//     of the server's own (DirectURL unset, equal to URL, or itself through
//     PgBouncer), or the process runs serverless (Config.Serverless): a
//     LISTEN session per instance would bypass PgBouncer and exhaust the
//     server's connections;
//   - CoherenceListen otherwise: a long-running process with a direct URL.
func ResolveCoherence(cfg *Config) (Coherence, string, error) {
	if cfg == nil || cfg.URL == "" {
		return "", "", errors.New("repo: Config.URL is empty")
	}
	url, err := ParseURL(cfg.URL, cfg.Env)
	if err != nil {
		return "", "", fmt.Errorf("repo: %w", err)
	}
	direct, err := directSettings(cfg, url)
	if err != nil {
		return "", "", err
	}
	mode, why := coherence(cfg, url, direct)
	return mode, why, nil
}

// directSettings parses DirectURL, or returns url's settings when there is
// no separate DirectURL.
func directSettings(cfg *Config, url *Settings) (*Settings, error) {
	if cfg.DirectURL == "" || cfg.DirectURL == cfg.URL {
		return url, nil
	}
	s, err := ParseURL(cfg.DirectURL, cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("repo: Config.DirectURL (the cache invalidation listener's connection): %w", err)
	}
	return s, nil
}

func coherence(cfg *Config, url, direct *Settings) (Coherence, string) {
	switch {
	case cfg.DisableCache:
		return CoherenceTTL, "the cache is off (Config.DisableCache)"
	case cfg.Coherence != CoherenceAuto:
		return cfg.Coherence, "chosen by Config.Coherence"
	case cfg.DisableListen:
		return CoherenceTTL, "Config.DisableListen is set"
	case url.PgBouncer && direct.PgBouncer:
		return CoherencePoll, "pgbouncer=true and no direct URL (POSTGRES_URL_NON_POOLING or DIRECT_URL): " +
			"LISTEN needs a session, so the change counters are read through the pool instead"
	case url.PgBouncer && cfg.Serverless:
		return CoherencePoll, "pgbouncer=true on a serverless platform (Config.Serverless): " +
			"a LISTEN session per instance would exhaust the server's connections"
	case direct.PgBouncer:
		return CoherencePoll, "the direct URL goes through PgBouncer (pgbouncer=true), which cannot hold a LISTEN"
	}
	return CoherenceListen, "a long-running process with a direct URL: one LISTEN session per process"
}

// startCoherence starts what keeps the cache coherent with other
// processes' writes: the Listener or the Poller, per Coherence.
func (r *Repo) startCoherence(ctx context.Context) error {
	direct, err := directSettings(&r.cfg, r.settings)
	if err != nil {
		return err
	}
	r.coherence, r.coherenceWhy = coherence(&r.cfg, r.settings, direct)
	if r.coherence == CoherenceListen {
		notify, err := r.notifySetting(ctx)
		if err != nil {
			return err
		}
		if notify == "off" {
			if r.cfg.Coherence == CoherenceListen {
				return fmt.Errorf("repo: Config.Coherence is %q, but this database sets evaldb.notify = 'off', so no notification is ever sent: "+
					"use %q, or ALTER DATABASE … RESET evaldb.notify", CoherenceListen, CoherencePoll)
			}
			r.coherence, r.coherenceWhy = CoherencePoll, "the database sets evaldb.notify = 'off' (no NOTIFY is sent), so the change counters are read instead"
		}
	}
	switch r.coherence {
	case CoherenceListen:
		return r.startListener(ctx, direct)
	case CoherencePoll:
		return r.startPoller()
	}
	return nil
}

// pollerHook, when set (by tests, before Open), wraps the Poller's Look.
var pollerHook func(look func(context.Context) (map[string]int64, error)) func(context.Context) (map[string]int64, error)

// notifySetting reads the database's evaldb.notify (see schema.NotifySQL),
// which Open checks once in listen mode. Like checkTriggers it reads through
// pgconn, below pgx's tracer: it is evaldb's own, not one of the
// application's statements in the query metrics.
func (r *Repo) notifySetting(ctx context.Context) (string, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("repo: read the database's evaldb.notify setting: %w", err)
	}
	defer conn.Release()
	res := conn.Conn().PgConn().ExecParams(ctx, "SELECT coalesce(current_setting('evaldb.notify', true), '')", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return "", fmt.Errorf("repo: read the database's evaldb.notify setting: %w", res.Err)
	}
	return string(res.Rows[0][0]), nil
}

// coherenceQuery is cachewrap.ChangesQuery with a name, so that metrics,
// logs and spans show it as one query.
const coherenceQuery = "-- name: CacheCoherenceCheck :many\n" + cachewrap.ChangesQuery

func (r *Repo) startPoller() error {
	look := func(ctx context.Context) (map[string]int64, error) {
		// On the primary (DB), never a replica: a replica's counters lag.
		rows, err := r.DB().Query(ctx, coherenceQuery)
		if err != nil {
			return nil, err
		}
		sums := map[string]int64{}
		var t string
		var v int64
		_, err = pgx.ForEachRow(rows, []any{&t, &v}, func() error {
			sums[t] = v
			return nil
		})
		return sums, err
	}
	if pollerHook != nil {
		look = pollerHook(look)
	}
	p, err := cachewrap.NewPoller(r.invalidator(), &cachewrap.PollerOptions{
		Look:         look,
		MaxStaleness: cmp.Or(r.cfg.MaxStaleness, DefaultMaxStaleness),
		Logger:       r.log,
	})
	if err != nil {
		return fmt.Errorf("repo: Config.MaxStaleness: %w", err)
	}
	r.poller = p
	r.cache.UseCoherence(p)
	return nil
}

// Coherence returns the mode that keeps the cache coherent with other
// processes' writes and why it was chosen (for `evaldb config`).
func (r *Repo) Coherence() (Coherence, string) { return r.coherence, r.coherenceWhy }

// Poller returns the session-free coherence check that Open started in
// CoherencePoll mode (for its Stats and Prometheus Collector), or nil.
func (r *Repo) Poller() *cachewrap.Poller { return r.poller }

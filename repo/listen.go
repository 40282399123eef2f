package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/cachewrap"
)

// listening is a running cache invalidation listener.
type listening struct {
	l      *cachewrap.Listener
	cancel context.CancelFunc
	done   chan struct{}
}

// listenHook, when set (by tests, before Open), is the listener's
// OnInvalidate.
var listenHook func(table string)

// listenerAppName names the listener's session in pg_stat_activity.
const listenerAppName = "evaldb-cache-listener"

// startListener starts the cache invalidation listener of a Repo made by
// Open, unless the cache or the listener is off. It listens on DirectURL,
// else URL, and never through PgBouncer's transaction pooling: when the only
// URL it has says pgbouncer=true, it logs a warning and does not listen
// (other processes' writes are then seen within the cache TTL).
func (r *Repo) startListener(ctx context.Context) error {
	if r.cache == nil || r.cfg.DisableListen {
		return nil
	}
	raw, field := r.cfg.DirectURL, "DirectURL"
	if raw == "" {
		raw, field = r.cfg.URL, "URL"
	}
	s := r.settings
	if field == "DirectURL" {
		var err error
		if s, err = ParseURL(raw, r.cfg.Env); err != nil {
			return fmt.Errorf("repo: Config.DirectURL (the cache invalidation listener's connection): %w", err)
		}
	}
	if s.PgBouncer {
		r.log.WarnContext(ctx, "evaldb: not listening for cache invalidations: "+
			"LISTEN needs a session and the "+field+" goes through PgBouncer (pgbouncer=true); "+
			"set DirectURL (POSTGRES_URL_NON_POOLING or DIRECT_URL) to the server's own address, "+
			"or writes by other processes are seen only when cached reads expire",
			"url", s.Redacted)
		return nil
	}
	cc := s.Pool.ConnConfig.Copy()
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = listenerAppName
	}
	var target cachewrap.Invalidator = r.cache
	if r.rep != nil {
		target = replicaAwareInvalidator{r: r, next: r.cache}
	}
	l, err := cachewrap.NewListener(target, &cachewrap.ListenerOptions{
		Connect:      func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cc.Copy()) },
		Logger:       r.log,
		OnInvalidate: listenHook,
	})
	if err != nil {
		return fmt.Errorf("repo: cache invalidation listener: %w", err)
	}
	// The listener outlives Open's ctx: Close stops it.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.listen = &listening{l: l, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.listen.done)
		_ = l.Run(lctx) // returns only when Close cancels lctx
	}()
	return nil
}

// replicaAwareInvalidator makes another process's write safe to invalidate
// when reads may go to a replica: before the cache entries are dropped, the
// Repo records the primary's current WAL position (past the notifying
// commit, which has already happened), so the read that refills the cache
// goes to the primary until a replica has replayed that far. Without it,
// the refill could come from a lagging replica and re-cache the old rows.
type replicaAwareInvalidator struct {
	r    *Repo
	next cachewrap.Invalidator
}

func (m replicaAwareInvalidator) mark() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.r.MarkWritten(ctx); err != nil {
		// Invalidate anyway: a stale refill is bounded by the TTL, a skipped
		// invalidation is not.
		m.r.log.WarnContext(ctx, "evaldb: cache listener could not read the primary's WAL position; "+
			"a read right after this invalidation may come from a lagging replica", "err", err)
	}
}

func (m replicaAwareInvalidator) Invalidate(tables ...string) { m.mark(); m.next.Invalidate(tables...) }
func (m replicaAwareInvalidator) InvalidateAll()              { m.mark(); m.next.InvalidateAll() }

func (r *Repo) stopListener() {
	if r.listen != nil {
		r.listen.cancel()
		<-r.listen.done
	}
}

// Listener returns the cache invalidation listener that Open started (for
// its Stats, its Prometheus Collector, and WaitListening), or nil when
// there is none: a Repo made by New, Config.DisableCache or
// Config.DisableListen set, or no URL that can hold a LISTEN (see
// Config.DisableListen).
//
// Open does not wait for the listener to connect: reads cached before its
// LISTEN takes effect are invalidated when it does, so nothing stale
// survives; a caller that wants other processes' writes seen promptly from
// the first read on calls r.Listener().WaitListening(ctx) after Open.
func (r *Repo) Listener() *cachewrap.Listener {
	if r.listen == nil {
		return nil
	}
	return r.listen.l
}

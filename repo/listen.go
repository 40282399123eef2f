package repo

import (
	"context"
	"fmt"

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
// Open in CoherenceListen mode, on s (DirectURL's settings, else URL's). It
// never listens through PgBouncer's transaction pooling, which would hand
// the LISTEN's server connection to other clients between statements.
func (r *Repo) startListener(ctx context.Context, s *Settings) error {
	if s.PgBouncer {
		return fmt.Errorf("repo: Config.Coherence is %q, but LISTEN needs a session and %s goes through PgBouncer (pgbouncer=true): "+
			"set DirectURL (POSTGRES_URL_NON_POOLING or DIRECT_URL) to the server's own address, or use %q, which needs no session",
			CoherenceListen, s.Redacted, CoherencePoll)
	}
	cc := s.Pool.ConnConfig.Copy()
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = listenerAppName
	}
	l, err := cachewrap.NewListener(r.invalidator(), &cachewrap.ListenerOptions{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			c := cc.Copy()
			if r.cfg.BeforeConnect != nil { // a fresh IAM token for the listener's connection too
				if err := r.cfg.BeforeConnect(ctx, c); err != nil {
					return nil, fmt.Errorf("Config.BeforeConnect: %w", err)
				}
			}
			return pgx.ConnectConfig(ctx, c)
		},
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
	ctx := context.Background() // MarkWritten bounds its read (noteTimeout)
	if err := m.r.MarkWritten(ctx); err != nil {
		// Invalidate anyway: a stale refill is bounded by the TTL, a skipped
		// invalidation is not.
		m.r.log.WarnContext(ctx, "evaldb: cache listener could not read the primary's WAL position; "+
			"a read right after this invalidation may come from a lagging replica", "err", err)
	}
}

// invalidator is what a coherence mode (the listener, the poller) tells of
// other processes' writes: the cache, behind MarkWritten when the Repo
// has replicas.
func (r *Repo) invalidator() cachewrap.Invalidator {
	if r.rep != nil {
		return replicaAwareInvalidator{r: r, next: r.cache}
	}
	return r.cache
}

func (m replicaAwareInvalidator) Invalidate(tables ...string) { m.mark(); m.next.Invalidate(tables...) }
func (m replicaAwareInvalidator) InvalidateAll()              { m.mark(); m.next.InvalidateAll() }

func (r *Repo) stopListener() {
	if r.listen != nil {
		r.listen.cancel()
		<-r.listen.done
	}
}

// Listener returns the cache invalidation listener that Open started in
// CoherenceListen mode (for its Stats, its Prometheus Collector, and
// WaitListening), or nil in any other mode and for a Repo made by New.
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

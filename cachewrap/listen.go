package cachewrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/internal/backoff"
)

// DefaultChannel is the notification channel that the triggers of
// schema/00003_notify_cache_invalidation.sql notify, with the changed
// table's name as the payload, when a transaction that wrote a cached table
// commits.
const DefaultChannel = "evaldb_invalidate"

// Invalidator is what a Listener tells about changed tables. *Cache
// implements it. Implementations must be safe for concurrent use.
type Invalidator interface {
	// Invalidate marks the named tables as changed; an unknown name must
	// invalidate everything.
	Invalidate(tables ...string)
	// InvalidateAll marks every table as changed.
	InvalidateAll()
}

// ListenerOptions configures a Listener.
type ListenerOptions struct {
	// Connect opens the Listener's own connection, which it keeps for as
	// long as it runs and closes when done. It must be a session: the
	// non-pooling URL (POSTGRES_URL_NON_POOLING / DIRECT_URL), never
	// PgBouncer in transaction mode, which would hand LISTEN's server
	// connection to other clients between statements. Required.
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// Channel is the channel to LISTEN on. Default: DefaultChannel.
	Channel string
	// Logger receives a line when the Listener connects (Info) and when it
	// loses or cannot get its connection (Warn). nil discards them.
	// Default: nil.
	Logger *slog.Logger
	// MinBackoff is the wait before the first reconnection attempt; it
	// doubles after each failed attempt, up to MaxBackoff, each wait
	// jittered to between half and all of that. Default: 100 ms.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between reconnection attempts. Default: 10 s.
	MaxBackoff time.Duration
	// PingInterval is how long the connection may stay silent before the
	// Listener checks it with a ping, so that a connection that died without
	// a word (a network partition) is noticed and replaced. Default: 30 s.
	PingInterval time.Duration
	// OnInvalidate, when set, is called after the Invalidator was told of a
	// change: with the notification's table name, or with "" after an
	// InvalidateAll (on each (re)connection). It runs on the Listener's
	// goroutine and must not block. For tests and measurements. Default: nil.
	OnInvalidate func(table string)
}

// ListenerStats is a snapshot of a Listener's counters, monotonic since
// NewListener.
type ListenerStats struct {
	// Notifications counts the notifications received and applied.
	Notifications uint64
	// Connects counts the times the Listener connected and LISTEN took
	// effect; each one ends with an InvalidateAll.
	Connects uint64
	// Reconnects counts connects after the first: each follows a gap in
	// which notifications may have been missed.
	Reconnects uint64
	// ConnectionErrors counts failed connection attempts and lost
	// connections.
	ConnectionErrors uint64
	// Listening reports whether LISTEN is in effect right now.
	Listening bool
}

// Listener keeps a cache coherent with writes made anywhere: by other
// processes, psql, migrations. It holds one connection on which it LISTENs
// to DefaultChannel, and for each notification (one per table per
// committed transaction, sent by schema/'s triggers) it invalidates that
// table.
//
// Whenever notifications may have been missed, the Listener invalidates
// everything: after LISTEN takes effect on start-up (reads cached before
// that saw no notifications), and after every reconnection (a lost
// connection loses the notifications sent meanwhile). It reconnects by
// itself with exponential backoff.
//
// Build it with NewListener and start it with Run. Its methods are safe for
// concurrent use; Run must not be called twice at once.
type Listener struct {
	target Invalidator
	o      ListenerOptions

	notifications, connects, connErrors atomic.Uint64

	mu        sync.Mutex
	listening bool
	changed   chan struct{} // closed and replaced when listening changes
}

// NewListener returns a Listener that tells target about changed tables.
// opts may not be nil (Connect is required). It returns an error naming the
// field when an option is invalid. It does no I/O.
func NewListener(target Invalidator, opts *ListenerOptions) (*Listener, error) {
	if target == nil {
		return nil, errors.New("cachewrap: NewListener needs an Invalidator such as a *Cache (got nil)")
	}
	if opts == nil || opts.Connect == nil {
		return nil, errors.New("cachewrap: ListenerOptions.Connect is required: a function opening a session connection on the non-pooling URL")
	}
	o := *opts
	switch {
	case o.MinBackoff < 0:
		return nil, fmt.Errorf("cachewrap: ListenerOptions.MinBackoff must be >= 0 (got %s)", o.MinBackoff)
	case o.MaxBackoff < 0:
		return nil, fmt.Errorf("cachewrap: ListenerOptions.MaxBackoff must be >= 0 (got %s)", o.MaxBackoff)
	case o.PingInterval < 0:
		return nil, fmt.Errorf("cachewrap: ListenerOptions.PingInterval must be >= 0 (got %s)", o.PingInterval)
	}
	o.Channel = cmp.Or(o.Channel, DefaultChannel)
	o.MinBackoff = cmp.Or(o.MinBackoff, 100*time.Millisecond)
	o.MaxBackoff = max(cmp.Or(o.MaxBackoff, 10*time.Second), o.MinBackoff)
	o.PingInterval = cmp.Or(o.PingInterval, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{target: target, o: o, changed: make(chan struct{})}, nil
}

// Run listens until ctx ends, reconnecting whenever the connection is lost,
// and returns ctx's error. Connection failures are logged and retried, never
// returned.
func (l *Listener) Run(ctx context.Context) error {
	policy := backoff.Policy{Base: l.o.MinBackoff, Max: l.o.MaxBackoff}
	failures := 0
	for {
		established, err := l.session(ctx)
		l.setListening(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.connErrors.Add(1)
		if established {
			failures = 0
		}
		failures++
		wait := policy.Delay(failures)
		l.o.Logger.WarnContext(ctx, "evaldb: cache invalidation listener lost its connection; "+
			"reconnecting, and invalidating the whole cache once reconnected",
			"channel", l.o.Channel, "error", err, "retry_in", wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// session connects, LISTENs, invalidates everything and applies
// notifications until the connection fails or ctx ends. established
// reports whether LISTEN took effect.
func (l *Listener) session(ctx context.Context) (established bool, err error) {
	conn, err := l.o.Connect(ctx)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.o.Channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen %s: %w", l.o.Channel, err)
	}
	// From here every commit is notified; reads cached before may be older
	// than writes we were not told about.
	l.target.InvalidateAll()
	if n := l.connects.Add(1); n > 1 {
		l.o.Logger.InfoContext(ctx, "evaldb: cache invalidation listener reconnected; invalidated the whole cache",
			"channel", l.o.Channel, "pid", conn.PgConn().PID())
	} else {
		l.o.Logger.InfoContext(ctx, "evaldb: cache invalidation listener started",
			"channel", l.o.Channel, "pid", conn.PgConn().PID())
	}
	l.setListening(true)
	if l.o.OnInvalidate != nil {
		l.o.OnInvalidate("")
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, l.o.PingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
				// Silence: make sure the connection still works.
				pctx, cancel := context.WithTimeout(ctx, l.o.PingInterval)
				err = conn.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
				return true, fmt.Errorf("ping after %s of silence: %w", l.o.PingInterval, err)
			}
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		if n.Channel != l.o.Channel {
			continue
		}
		l.target.Invalidate(n.Payload)
		l.notifications.Add(1)
		if l.o.OnInvalidate != nil {
			l.o.OnInvalidate(n.Payload)
		}
	}
}

func (l *Listener) setListening(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.listening != on {
		l.listening = on
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// WaitListening blocks until LISTEN is in effect (and the start-up
// InvalidateAll done), or ctx ends. From then on, every commit that changes
// a cached table invalidates it here, promptly. Safe for concurrent use.
func (l *Listener) WaitListening(ctx context.Context) error {
	for {
		l.mu.Lock()
		on, ch := l.listening, l.changed
		l.mu.Unlock()
		if on {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cachewrap: wait for the invalidation listener: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Stats returns a snapshot of the Listener's counters. Safe for concurrent
// use.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	on := l.listening
	l.mu.Unlock()
	c := l.connects.Load()
	return ListenerStats{
		Notifications:    l.notifications.Load(),
		Connects:         c,
		Reconnects:       max(c, 1) - 1,
		ConnectionErrors: l.connErrors.Load(),
		Listening:        on,
	}
}

var (
	descNotifications = prometheus.NewDesc("evaldb_cache_listener_notifications_total",
		"Invalidation notifications received from PostgreSQL and applied to the cache.", nil, nil)
	descReconnects = prometheus.NewDesc("evaldb_cache_listener_reconnects_total",
		"Times the invalidation listener reconnected after losing its connection (each invalidates the whole cache).", nil, nil)
	descConnErrors = prometheus.NewDesc("evaldb_cache_listener_connection_errors_total",
		"Failed connection attempts and lost connections of the invalidation listener.", nil, nil)
	descListening = prometheus.NewDesc("evaldb_cache_listener_up",
		"1 while the invalidation listener's LISTEN is in effect, else 0 (writes by other processes are then seen only within the TTL).", nil, nil)
)

type listenerCollector struct{ l *Listener }

// Collector returns a prometheus.Collector exporting Stats as
// evaldb_cache_listener_notifications_total,
// evaldb_cache_listener_reconnects_total,
// evaldb_cache_listener_connection_errors_total and the gauge
// evaldb_cache_listener_up. The caller registers it.
func (l *Listener) Collector() prometheus.Collector { return listenerCollector{l} }

// Describe implements prometheus.Collector.
func (listenerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNotifications
	ch <- descReconnects
	ch <- descConnErrors
	ch <- descListening
}

// Collect implements prometheus.Collector.
func (k listenerCollector) Collect(ch chan<- prometheus.Metric) {
	s := k.l.Stats()
	up := 0.0
	if s.Listening {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(s.Notifications))
	ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(s.Reconnects))
	ch <- prometheus.MustNewConstMetric(descConnErrors, prometheus.CounterValue, float64(s.ConnectionErrors))
	ch <- prometheus.MustNewConstMetric(descListening, prometheus.GaugeValue, up)
}

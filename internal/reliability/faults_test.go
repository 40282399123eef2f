package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/internal/faultproxy"
	"github.com/aah/evaldb/repo"
)

// durations summarises a sample for the log (the figures of RELIABILITY.md).
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("n=%d min=%s p50=%s p90=%s max=%s", len(s), s[0].Round(time.Millisecond),
		q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// awaitReturn waits for a call's result, failing the test when it has not
// come back within bound (a hang, not a slow answer: bound is tens of
// seconds).
func awaitReturn(t *testing.T, done <-chan error, bound time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("%s did not return within %s", what, bound)
		return nil
	}
}

// TestCancelMidQuery cancels the context of a long query (pg_sleep(60))
// once the server runs it: the call returns with context.Canceled, the
// statement stops on the server too (it is gone from pg_stat_activity), and
// the pool (of one connection) runs the next query at once on the same
// backend: the connection is reused, not replaced.
func TestCancelMidQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	admin := adminPool(t, dbtest.GetServer(t).AdminURL)
	r := openRepo(t, ctx, withPassword(t, base, "connection_limit=1&pool_timeout=30"), &l)

	pid := func() int32 {
		t.Helper()
		var p int32
		if err := r.DB().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p); err != nil {
			t.Fatalf("query after cancel: %v", err)
		}
		return p
	}
	first := pid()
	var returns []time.Duration
	replaced := 0
	for i := range pick(3, 30) {
		marker := "reliability-cancel-" + uuid.NewString()
		qctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := r.DB().Exec(qctx, "SELECT pg_sleep(60) -- "+marker)
			done <- err
		}()
		if !waitFor(20*time.Second, func() bool { n, _ := runningQueries(ctx, admin, marker); return n == 1 }) {
			cancel()
			t.Fatalf("round %d: the query never showed as active in pg_stat_activity", i)
		}
		start := time.Now()
		cancel()
		err := awaitReturn(t, done, 30*time.Second, "a cancelled pg_sleep(60)")
		returns = append(returns, time.Since(start))
		l.scanErr("cancelled query error", err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("round %d: error = %v, want one wrapping context.Canceled", i, err)
		}
		if !waitFor(10*time.Second, func() bool { n, err := runningQueries(ctx, admin, marker); return err == nil && n == 0 }) {
			t.Errorf("round %d: the cancelled statement still runs on the server 10 s after the cancel", i)
		}
		// The pool of one is usable at once, on the same connection: repo
		// cancels with a cancel request (CancelRequestContextWatcherHandler)
		// and keeps the connection, where pgx's default handling closed it.
		if got := pid(); got != first {
			replaced++
			t.Errorf("round %d: the next query ran on backend %d, want %d: the cancelled connection was not reused", i, got, first)
			first = got
		}
	}
	scanMetrics(t, r, &l)
	t.Logf("FIGURE cancel-to-return: %s; connection replaced after %d of %d cancels", durations(returns), replaced, len(returns))
	l.check(t)
}

// proxied returns base rewritten to go through a fault proxy in front of
// its server, plus the proxy.
func proxied(t *testing.T, base, params string) (string, *faultproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("fault proxy: %v", err)
		}
	})
	u.Host = "127.0.0.1:" + strconv.Itoa(p.Port())
	return withPassword(t, u.String(), params), p
}

// TestNetworkStall freezes the client's TCP connections mid-query with the
// fault proxy (new connections still get through, so a cancel request can
// reach the server): the caller's deadline fires, the statement is
// cancelled on the server, the pool gives back the frozen connections and,
// once the network is back, works again without leaking connections on
// either side. The per-query deadline (socket_timeout) fires the same way
// for a caller without a deadline. Then a full partition (stall + refuse
// new connections): deadlines still fire and nothing leaks.
func TestNetworkStall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	db := dbName(t, base)
	admin := adminPool(t, dbtest.GetServer(t).AdminURL)
	const limit = 4
	dsn, proxy := proxied(t, base, "connection_limit=4&pool_timeout=20&socket_timeout=3&connect_timeout=5")
	r := openRepo(t, ctx, dsn, &l)

	settle := func(stage string) {
		t.Helper()
		ok := waitFor(30*time.Second, func() bool {
			ps := r.PoolStats()
			total, _, err := backends(ctx, admin, db)
			return err == nil && ps.AcquiredConns == 0 && ps.TotalConns <= limit && total <= limit
		})
		ps := r.PoolStats()
		total, _, _ := backends(ctx, admin, db)
		if !ok {
			t.Errorf("%s: pool has %d acquired, %d total (limit %d); server has %d backends on the database: a connection leaked",
				stage, ps.AcquiredConns, ps.TotalConns, limit, total)
		}
	}
	works := func(stage string) {
		t.Helper()
		for i := range 2 * limit {
			var one int
			qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := r.DB().QueryRow(qctx, "SELECT 1").Scan(&one)
			cancel()
			l.scanErr(stage, err)
			if err != nil {
				t.Fatalf("%s: query %d: %v", stage, i, err)
			}
		}
	}

	var returns []time.Duration
	for round := range pick(1, 5) {
		// Caller deadlines, with the statements running on the server.
		markers := make([]string, limit)
		done := make(chan error, limit)
		for i := range limit {
			markers[i] = "reliability-stall-" + uuid.NewString()
			go func() {
				qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := r.DB().Exec(qctx, "SELECT pg_sleep(60) -- "+markers[i])
				done <- err
			}()
		}
		if !waitFor(20*time.Second, func() bool {
			n := 0
			for _, m := range markers {
				c, _ := runningQueries(ctx, admin, m)
				n += c
			}
			return n == limit
		}) {
			t.Fatalf("round %d: the statements never all showed as active", round)
		}
		proxy.Stall()
		start := time.Now()
		for range limit {
			err := awaitReturn(t, done, 30*time.Second, "a query on a stalled connection")
			returns = append(returns, time.Since(start))
			l.scanErr("stalled query error", err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("round %d: stalled query error = %v, want one wrapping context.DeadlineExceeded", round, err)
			}
		}
		for _, m := range markers {
			if !waitFor(10*time.Second, func() bool { n, err := runningQueries(ctx, admin, m); return err == nil && n == 0 }) {
				t.Errorf("round %d: a statement whose deadline passed still runs on the server 10 s later", round)
			}
		}
		proxy.Resume()
		settle(fmt.Sprintf("round %d after caller deadlines", round))
		works(fmt.Sprintf("round %d after caller deadlines", round))

		// socket_timeout for a caller without a deadline.
		done2 := make(chan error, 1)
		marker := "reliability-sockettimeout-" + uuid.NewString()
		go func() { _, err := r.DB().Exec(ctx, "SELECT pg_sleep(60) -- "+marker); done2 <- err }()
		if !waitFor(20*time.Second, func() bool { n, _ := runningQueries(ctx, admin, marker); return n == 1 }) {
			t.Fatalf("round %d: the socket_timeout statement never showed as active", round)
		}
		proxy.Stall()
		err := awaitReturn(t, done2, 30*time.Second, "a query past socket_timeout on a stalled connection")
		l.scanErr("socket_timeout error", err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("round %d: socket_timeout error = %v, want one wrapping context.DeadlineExceeded", round, err)
		}
		proxy.Resume()
		settle(fmt.Sprintf("round %d after socket_timeout", round))
		works(fmt.Sprintf("round %d after socket_timeout", round))

		// Full partition: nothing gets through, not even a cancel request
		// or a new connection, until it heals.
		proxy.Stall()
		proxy.Refuse(true)
		partDone := make(chan error, 2*limit)
		for range 2 * limit {
			go func() {
				qctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				var one int
				partDone <- r.DB().QueryRow(qctx, "SELECT 1").Scan(&one)
			}()
		}
		for range 2 * limit {
			err := awaitReturn(t, partDone, 30*time.Second, "a query during a partition")
			l.scanErr("partition error", err)
			if err == nil {
				t.Errorf("round %d: a query succeeded during a full partition", round)
			}
		}
		proxy.Refuse(false)
		proxy.Resume()
		settle(fmt.Sprintf("round %d after the partition", round))
		works(fmt.Sprintf("round %d after the partition", round))
	}
	scanMetrics(t, r, &l)
	t.Logf("FIGURE stall: deadline 2 s after the statement started; returns after the stall began: %s", durations(returns))
	l.check(t)
}

// TestNetworkDrop resets every connection between client and server in the
// middle of queries: the callers get repo.ErrConnClosed at once, the pool
// replaces the connections by itself and no connection is left checked out.
func TestNetworkDrop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var l leaks
	base := dbtest.URL(t)
	db := dbName(t, base)
	admin := adminPool(t, dbtest.GetServer(t).AdminURL)
	const limit = 4
	dsn, proxy := proxied(t, base, "connection_limit=4&pool_timeout=20")
	r := openRepo(t, ctx, dsn, &l)

	for round := range pick(2, 20) {
		markers := make([]string, limit)
		done := make(chan error, limit)
		for i := range limit {
			markers[i] = "reliability-drop-" + uuid.NewString()
			go func() {
				_, err := r.DB().Exec(ctx, "SELECT pg_sleep(1) -- "+markers[i])
				done <- err
			}()
		}
		if !waitFor(20*time.Second, func() bool {
			n := 0
			for _, m := range markers {
				c, _ := runningQueries(ctx, admin, m)
				n += c
			}
			return n == limit
		}) {
			t.Fatalf("round %d: the statements never all showed as active", round)
		}
		if n := proxy.Drop(); n < limit {
			t.Errorf("round %d: Drop closed %d connections, want at least %d", round, n, limit)
		}
		for range limit {
			err := awaitReturn(t, done, 30*time.Second, "a query on a dropped connection")
			l.scanErr("dropped query error", err)
			if !errors.Is(err, repo.ErrConnClosed) {
				t.Errorf("round %d: error = %v, want repo.ErrConnClosed", round, err)
			}
		}
		// The pool recovers by itself: the next queries succeed.
		for i := range 2 * limit {
			var one int
			if err := r.DB().QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				l.scanErr("query after drop", err)
				t.Fatalf("round %d: query %d after the drop: %v", round, i, err)
			}
		}
		// Server side: the dropped backends finish their pg_sleep(1), find
		// the socket closed and exit.
		if !waitFor(30*time.Second, func() bool {
			ps := r.PoolStats()
			total, _, err := backends(ctx, admin, db)
			return err == nil && ps.AcquiredConns == 0 && ps.TotalConns <= limit && total <= limit
		}) {
			total, _, _ := backends(ctx, admin, db)
			t.Errorf("round %d: pool %+v, server backends %d: a connection leaked", round, r.PoolStats(), total)
		}
	}
	l.check(t)
}

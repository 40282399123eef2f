package repo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// LSN handling for read-your-writes on replicas.
//
// A write made through the Repo is followed (after its COMMIT, or after the
// statement of an implicit transaction) by a fetch of the primary's WAL
// insert position. Every record of the write, its commit record included,
// ends at or before that position, so a standby whose replay position has
// reached it shows the write. The Repo keeps the highest such position
// (walState.need) and reads use a replica only when its last polled replay
// position is at least that high.
//
// pg_current_wal_insert_lsn is used rather than pg_current_wal_lsn: with
// synchronous_commit=off (the throwaway test clusters, and some
// production setups) COMMIT returns before its record is written out, and
// pg_current_wal_lsn (the write position) can still be below it.

// parseLSN parses PostgreSQL's text form of a pg_lsn ("16/B374D848").
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("parse LSN %q: want two hex numbers of up to 8 digits separated by /", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// formatLSN is parseLSN's inverse.
func formatLSN(v uint64) string {
	return strconv.FormatUint(v>>32, 16) + "/" + strconv.FormatUint(v&0xffffffff, 16)
}

// maxUint64 raises a to at least v.
func maxUint64(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// walState is what the Repo knows about its own writes' positions. Safe
// for concurrent use.
type walState struct {
	// need is the highest WAL position fetched after a write.
	need atomic.Uint64
	// lost counts writes whose position could not be fetched; cleared is
	// the value of lost that a later successful fetch (which started after
	// those writes ended) covers. While lost > cleared, no replica is
	// known to be fresh enough and every read goes to the primary.
	lost, cleared atomic.Uint64

	// fetches, fetchErrors and fetchNanos measure the bookkeeping's cost.
	fetches, fetchErrors, fetchNanos atomic.Int64

	mu      sync.Mutex
	samples []walSample // (time, primary position) pairs, oldest first
}

// walSample says that the primary's WAL had reached lsn at t.
type walSample struct {
	t   time.Time
	lsn uint64
}

const (
	// maxSamples bounds the lag history; with sampleEvery it covers at
	// least 16 s of continuous writes.
	maxSamples  = 1 << 14
	sampleEvery = time.Millisecond
)

// unknown reports whether some write's position is not known, so that no
// replica can be proven fresh.
func (w *walState) unknown() bool { return w.lost.Load() > w.cleared.Load() }

// sample records that the primary had reached lsn at t (t taken after the
// fetch returned).
func (w *walState) sample(t time.Time, lsn uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.samples); n > 0 {
		last := w.samples[n-1]
		if lsn <= last.lsn || t.Sub(last.t) < sampleEvery {
			return // keep the older sample: lag is then a lower bound, never an overestimate
		}
	}
	if len(w.samples) == maxSamples {
		w.samples = append(w.samples[:0], w.samples[maxSamples/2:]...)
	}
	w.samples = append(w.samples, walSample{t: t, lsn: lsn})
}

// lag returns how long ago the primary first had WAL that a server at
// position replay has not replayed: a lower bound of that server's
// staleness (0 when it has everything sampled).
func (w *walState) lag(now time.Time, replay uint64) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.samples {
		if s.lsn > replay {
			return max(now.Sub(s.t), 0)
		}
	}
	return 0
}

// prune drops the samples that every replica has replayed.
func (w *walState) prune(minReplay uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := 0
	for i < len(w.samples)-1 && w.samples[i].lsn <= minReplay {
		i++
	}
	if i > 0 {
		w.samples = append(w.samples[:0], w.samples[i:]...)
	}
}

// lsnGroup coalesces concurrent fetches of the primary's WAL position. A
// caller needs a fetch that starts after it asked (its write must be
// covered); while one fetch is in flight, callers queue, and when it ends
// one of them runs a single fetch for all of them. So at most one fetch is
// in flight and N concurrent writers cost at most two fetches' latency,
// not N round trips on N connections. Safe for concurrent use.
type lsnGroup struct {
	mu      sync.Mutex
	busy    bool
	waiting []chan lsnResult
}

type lsnResult struct {
	lsn  uint64
	err  error
	lead []chan lsnResult // non-nil: the receiver fetches for these
}

// do returns a WAL position fetched by fetch after do was called.
func (g *lsnGroup) do(fetch func() (uint64, error)) (uint64, error) {
	g.mu.Lock()
	if g.busy {
		ch := make(chan lsnResult, 1)
		g.waiting = append(g.waiting, ch)
		g.mu.Unlock()
		r := <-ch
		if r.lead == nil {
			return r.lsn, r.err
		}
		return g.lead(fetch, r.lead)
	}
	g.busy = true
	g.mu.Unlock()
	return g.lead(fetch, nil)
}

// lead fetches for itself and for, then hands the queue that built up
// meanwhile to its first member.
func (g *lsnGroup) lead(fetch func() (uint64, error), batch []chan lsnResult) (uint64, error) {
	lsn, err := fetch()
	for _, ch := range batch {
		ch <- lsnResult{lsn: lsn, err: err}
	}
	g.mu.Lock()
	next := g.waiting
	g.waiting = nil
	if len(next) == 0 {
		g.busy = false
	}
	g.mu.Unlock()
	if len(next) > 0 {
		next[0] <- lsnResult{lead: append(make([]chan lsnResult, 0, len(next)-1), next[1:]...)}
	}
	return lsn, err
}

// queryOne runs sql (no arguments) on a connection of p below pgx's
// tracers, so the bookkeeping and health polls are neither logged nor
// counted as application queries, and returns the text of the first row's
// columns. It works in every exec mode, PgBouncer's included.
func queryOne(ctx context.Context, p *target, sql string) ([]string, error) {
	c, err := p.acquire(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	res := c.Conn().PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	if len(res.Rows) != 1 {
		return nil, fmt.Errorf("%s: got %d rows, want 1", sql, len(res.Rows))
	}
	out := make([]string, len(res.Rows[0]))
	for i, v := range res.Rows[0] {
		out[i] = string(v)
	}
	return out, nil
}

// errNotStandby is a replica URL's server that is not in recovery.
var errNotStandby = errors.New("server is not a standby (pg_is_in_recovery() is false): check the replica URL")

// Statements of the bookkeeping; their "-- name:" makes them recognisable
// in pg_stat_statements.
const (
	sqlWALInsertLSN = "-- name: evaldbWALInsertLSN\nSELECT pg_current_wal_insert_lsn()::text"
	sqlReplayLSN    = "-- name: evaldbReplayLSN\nSELECT pg_is_in_recovery()::text, coalesce(pg_last_wal_replay_lsn(), '0/0')::text"
)

// replicaFailover reports whether a read that failed on a replica with err
// may be run on the primary instead: the replica could not be reached, its
// connection broke, its pool was exhausted, or the standby cancelled the
// query for a conflict with recovery. A read-only query is safe to run
// again wherever it may have run.
func replicaFailover(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "57P04": // conflict with recovery; database dropped on the standby
			return true
		}
	}
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrConnClosed) || errors.Is(err, ErrPoolTimeout)
}

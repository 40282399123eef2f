package repo

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// QueryName returns the sqlc name of a query ("GetEvalRun" for SQL starting
// with "-- name: GetEvalRun :one"), "begin", "commit" or "rollback" for the
// statements that frame transactions, or "other" for any other SQL, so that
// metrics have one series per query and not one per SQL text.
func QueryName(sql string) string {
	const prefix = "-- name: "
	if !strings.HasPrefix(sql, prefix) {
		switch {
		case len(sql) >= 5 && strings.EqualFold(sql[:5], "begin"): // "begin isolation level …" too
			return "begin"
		case len(sql) < 16 && strings.EqualFold(sql, "commit"):
			return "commit"
		case len(sql) < 16 && strings.EqualFold(sql, "rollback"):
			return "rollback"
		}
		return "other"
	}
	rest := sql[len(prefix):]
	end := strings.IndexAny(rest, " \t\r\n")
	if end <= 0 {
		return "other"
	}
	return rest[:end]
}

// latencyWindow is how many recent latencies per query the percentiles of
// QueryStats are computed from.
const latencyWindow = 1024

// histogramBounds are the upper bounds (seconds) of the Prometheus latency
// histogram buckets.
var histogramBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// QueryStats are the figures of one query name since the Repo opened.
type QueryStats struct {
	// Name is the sqlc query name, "batch" for a batch, "copy <table>" for
	// COPY, "other" for SQL without a sqlc name.
	Name string
	// Count is how many times it ran; Errors how many of those failed.
	Count, Errors int64
	// Total is the sum of all durations.
	Total time.Duration
	// P50, P90, P95, P99 and Max are latency percentiles over the last 1024
	// runs.
	P50, P90, P95, P99, Max time.Duration
}

type queryStat struct {
	count, errors int64
	total         time.Duration
	window        [latencyWindow]time.Duration
	n             int // samples in window (≤ latencyWindow)
	next          int
	buckets       []uint64 // per histogramBounds, not cumulative; last = +Inf
}

// Metrics collects per-query timings. It is filled by the Repo's tracers and
// read with Snapshot or through the Prometheus collector. Safe for
// concurrent use.
type Metrics struct {
	mu      sync.Mutex
	queries map[string]*queryStat
	connect struct{ count, errors int64 }
}

func newMetrics() *Metrics { return &Metrics{queries: map[string]*queryStat{}} }

func (m *Metrics) stat(name string) *queryStat {
	s := m.queries[name]
	if s == nil {
		s = &queryStat{buckets: make([]uint64, len(histogramBounds)+1)}
		m.queries[name] = s
	}
	return s
}

func (m *Metrics) observe(name string, d time.Duration, failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stat(name)
	s.count++
	if failed {
		s.errors++
	}
	s.total += d
	s.window[s.next] = d
	s.next = (s.next + 1) % latencyWindow
	if s.n < latencyWindow {
		s.n++
	}
	i := sort.SearchFloat64s(histogramBounds, d.Seconds())
	s.buckets[i]++
}

func (m *Metrics) observeConnect(failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.connect.count++
	if failed {
		m.connect.errors++
	}
}

// Snapshot returns the figures of every query name seen so far, sorted by
// name. A nil *Metrics has none.
func (m *Metrics) Snapshot() []QueryStats {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]QueryStats, 0, len(m.queries))
	for name, s := range m.queries {
		w := slices.Clone(s.window[:s.n])
		slices.Sort(w)
		out = append(out, QueryStats{
			Name: name, Count: s.count, Errors: s.errors, Total: s.total,
			P50: pct(w, 0.50), P90: pct(w, 0.90), P95: pct(w, 0.95), P99: pct(w, 0.99), Max: pct(w, 1),
		})
	}
	slices.SortFunc(out, func(a, b QueryStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

type histSnapshot struct {
	name          string
	count, errors int64
	sum           float64
	buckets       map[float64]uint64 // cumulative
}

func (m *Metrics) histograms() []histSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]histSnapshot, 0, len(m.queries))
	for name, s := range m.queries {
		h := histSnapshot{name: name, count: s.count, errors: s.errors, sum: s.total.Seconds(), buckets: map[float64]uint64{}}
		var cum uint64
		for i, b := range histogramBounds {
			cum += s.buckets[i]
			h.buckets[b] = cum
		}
		out = append(out, h)
	}
	return out
}

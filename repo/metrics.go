package repo

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	i := 0
	for i < len(rest) && !nameEnd[rest[i]] {
		i++
	}
	if i == 0 || i == len(rest) {
		return "other"
	}
	return rest[:i]
}

// nameEnd marks the bytes that end a query name: space, tab and line
// breaks. (A table, not strings.IndexAny, which builds its set on every
// call, and this runs for every statement.)
var nameEnd = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

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

// queryStat is one query name's figures. Everything is atomic: statements
// of different queries share nothing, and statements of one query only
// atomic counters.
type queryStat struct {
	count, errors, total atomic.Int64
	window               [latencyWindow]atomic.Int64 // nanoseconds, a ring
	next                 atomic.Uint64
	hist                 prometheus.Observer
	runs, fails          prometheus.Counter
}

// Metrics collects per-query timings. It is filled by the Repo's tracers and
// read with Snapshot or through the Prometheus collector, whose families are
// client_golang vectors (built once). Safe for concurrent use; no lock is
// shared by all statements.
type Metrics struct {
	queries                 sync.Map // name -> *queryStat
	duration                *prometheus.HistogramVec
	runs, fails             *prometheus.CounterVec
	connects, connectErrors prometheus.Counter
}

func newMetrics(db string) *Metrics {
	labels := prometheus.Labels{"db": db}
	return &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "evaldb_query_duration_seconds",
			Help: "Statement latency, by sqlc query name.", Buckets: histogramBounds, ConstLabels: labels}, []string{"query"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "evaldb_queries_total",
			Help: "Statements run, by sqlc query name.", ConstLabels: labels}, []string{"query"}),
		fails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "evaldb_query_errors_total",
			Help: "Statements that failed, by sqlc query name.", ConstLabels: labels}, []string{"query"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Name: "evaldb_connects_total",
			Help: "Connection attempts.", ConstLabels: labels}),
		connectErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "evaldb_connect_errors_total",
			Help: "Connection attempts that failed.", ConstLabels: labels}),
	}
}

func (m *Metrics) stat(name string) *queryStat {
	if s, ok := m.queries.Load(name); ok {
		return s.(*queryStat)
	}
	s := &queryStat{hist: m.duration.WithLabelValues(name), runs: m.runs.WithLabelValues(name), fails: m.fails.WithLabelValues(name)}
	s.fails.Add(0) // the family lists every query, failed or not
	got, _ := m.queries.LoadOrStore(name, s)
	return got.(*queryStat)
}

func (m *Metrics) observe(name string, d time.Duration, failed bool) {
	s := m.stat(name)
	s.count.Add(1)
	s.total.Add(int64(d))
	if failed {
		s.errors.Add(1)
		s.fails.Inc()
	}
	s.window[(s.next.Add(1)-1)%latencyWindow].Store(int64(d))
	s.runs.Inc()
	s.hist.Observe(d.Seconds())
}

func (m *Metrics) observeConnect(failed bool) {
	m.connects.Inc()
	if failed {
		m.connectErrors.Inc()
	}
}

// Snapshot returns the figures of every query name seen so far, sorted by
// name. A nil *Metrics has none.
func (m *Metrics) Snapshot() []QueryStats {
	if m == nil {
		return nil
	}
	var out []QueryStats
	m.queries.Range(func(k, v any) bool {
		s := v.(*queryStat)
		n := min(s.next.Load(), latencyWindow)
		w := make([]time.Duration, n)
		for i := range w {
			w[i] = time.Duration(s.window[i].Load())
		}
		slices.Sort(w)
		out = append(out, QueryStats{
			Name: k.(string), Count: s.count.Load(), Errors: s.errors.Load(), Total: time.Duration(s.total.Load()),
			P50: pct(w, 0.50), P90: pct(w, 0.90), P95: pct(w, 0.95), P99: pct(w, 0.99), Max: pct(w, 1),
		})
		return true
	})
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

func (m *Metrics) describe(ch chan<- *prometheus.Desc) {
	m.duration.Describe(ch)
	m.runs.Describe(ch)
	m.fails.Describe(ch)
	m.connects.Describe(ch)
	m.connectErrors.Describe(ch)
}

func (m *Metrics) collect(ch chan<- prometheus.Metric) {
	m.duration.Collect(ch)
	m.runs.Collect(ch)
	m.fails.Collect(ch)
	m.connects.Collect(ch)
	m.connectErrors.Collect(ch)
}

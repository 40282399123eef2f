package cachewrap

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/querymeta"
)

type queryCounters struct {
	hits, misses, stale atomic.Uint64
}

type counters struct {
	q         [querymeta.NumQueries]queryCounters
	evictions atomic.Uint64
	rejected  atomic.Uint64
	bypassed  atomic.Uint64
}

// QueryStats counts the cache lookups of one query.
type QueryStats struct {
	// Hits counts reads served from a fresh entry.
	Hits uint64
	// Misses counts reads that ran the query (or waited for a concurrent
	// read of the same key that did).
	Misses uint64
	// StaleServes counts reads served from an expired entry within its
	// stale-while-revalidate window.
	StaleServes uint64
}

// Stats is a snapshot of a Cache's counters, all monotonic since New.
type Stats struct {
	// QueryStats holds the totals over all queries.
	QueryStats
	// Evictions counts entries ristretto evicted to stay within MaxBytes.
	Evictions uint64
	// RejectedSets counts values that were not cached: refused by
	// ristretto's admission policy or dropped because its set buffer was
	// full.
	RejectedSets uint64
	// Bypassed counts reads sent to the database uncached because the
	// coherence Gate (UseCoherence) could not vouch for the cache.
	Bypassed uint64
	// Queries holds the counters per cached query, by gen.Querier method
	// name. Queries that are never cached are absent.
	Queries map[string]QueryStats
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (c *Cache) Stats() Stats {
	s := Stats{
		Evictions:    c.m.evictions.Load(),
		RejectedSets: c.m.rejected.Load(),
		Bypassed:     c.m.bypassed.Load(),
		Queries:      map[string]QueryStats{},
	}
	for i := range c.m.q {
		qi := &querymeta.Queries[i]
		if !qi.Cached() {
			continue
		}
		qc := &c.m.q[i]
		qs := QueryStats{Hits: qc.hits.Load(), Misses: qc.misses.Load(), StaleServes: qc.stale.Load()}
		s.Queries[qi.Name] = qs
		s.Hits += qs.Hits
		s.Misses += qs.Misses
		s.StaleServes += qs.StaleServes
	}
	return s
}

var (
	descHits = prometheus.NewDesc("evaldb_cache_hits_total",
		"Reads served from a fresh cache entry.", []string{"query"}, nil)
	descMisses = prometheus.NewDesc("evaldb_cache_misses_total",
		"Reads that missed the cache and ran (or joined) the query.", []string{"query"}, nil)
	descStale = prometheus.NewDesc("evaldb_cache_stale_serves_total",
		"Reads served from an expired entry within its stale-while-revalidate window.", []string{"query"}, nil)
	descEvictions = prometheus.NewDesc("evaldb_cache_evictions_total",
		"Entries evicted to stay within MaxBytes.", nil, nil)
	descRejected = prometheus.NewDesc("evaldb_cache_rejected_sets_total",
		"Values not cached: refused by admission or dropped under contention.", nil, nil)
)

// collector exports a Cache's counters to Prometheus.
type collector struct{ c *Cache }

// Collector returns a prometheus.Collector exporting the counters of Stats
// as evaldb_cache_hits_total, evaldb_cache_misses_total and
// evaldb_cache_stale_serves_total (labelled by query),
// evaldb_cache_evictions_total and evaldb_cache_rejected_sets_total. The
// caller registers it; register one Collector per Cache and registry.
func (c *Cache) Collector() prometheus.Collector { return collector{c} }

// Describe implements prometheus.Collector.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHits
	ch <- descMisses
	ch <- descStale
	ch <- descEvictions
	ch <- descRejected
}

// Collect implements prometheus.Collector.
func (k collector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Stats()
	for name, q := range s.Queries {
		ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(q.Hits), name)
		ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(q.Misses), name)
		ch <- prometheus.MustNewConstMetric(descStale, prometheus.CounterValue, float64(q.StaleServes), name)
	}
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(s.RejectedSets))
}

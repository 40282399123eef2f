package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/cachewrap"
)

// PoolStats are the pool's figures, from pgxpool.Stat plus evaldb's own
// count of acquires that ran out of pool timeout.
type PoolStats struct {
	// TotalConns, IdleConns and AcquiredConns are open, idle and in-use
	// connections; ConstructingConns are being dialled.
	TotalConns, IdleConns, AcquiredConns, ConstructingConns int32
	// MaxConns is the connection limit.
	MaxConns int32
	// AcquireCount is the number of successful acquires.
	AcquireCount int64
	// AcquireDuration is the total time successful acquires took.
	AcquireDuration time.Duration
	// EmptyAcquireCount is the number of acquires that had to wait because
	// no connection was idle; EmptyAcquireWaitTime is the time they waited.
	EmptyAcquireCount    int64
	EmptyAcquireWaitTime time.Duration
	// CanceledAcquireCount is the number of acquires given up because their
	// context ended (including pool timeouts).
	CanceledAcquireCount int64
	// AcquireTimeouts is the number of acquires that ran out of pool
	// timeout (each returned ErrPoolTimeout).
	AcquireTimeouts int64
	// NewConnsCount is the number of connections opened so far.
	NewConnsCount int64
}

// Stats are a Repo's pool figures, the database's connections by state and
// the per-query timings.
type Stats struct {
	// Pool are the pool's figures (zero for a Repo made by New over an
	// executor without Stat).
	Pool PoolStats
	// Connections counts every connection to this database, from any
	// client, by pg_stat_activity state ("active", "idle", "idle in
	// transaction", …): the pooling guide's monitoring query.
	Connections map[string]int64
	// Queries are the per-query timings, sorted by name.
	Queries []QueryStats
	// Cache are the read cache's hit and miss counters, nil when
	// Config.DisableCache is set.
	Cache *cachewrap.Stats
	// Replicas are the read-replica routing figures, nil without
	// Config.ReplicaURLs.
	Replicas *ReplicaStats
}

// PoolStats returns the pool's figures without a round trip.
func (r *Repo) PoolStats() PoolStats { return poolStats(r.primary) }

// Stats returns the pool figures, the per-query timings and, in one query
// (CountConnectionsByState, itself counted), the database's connections by
// state. The error is that query's, translated.
func (r *Repo) Stats(ctx context.Context) (Stats, error) {
	rows, err := r.Queries().CountConnectionsByState(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("count connections by state: %w", err)
	}
	st := Stats{Pool: r.PoolStats(), Connections: make(map[string]int64, len(rows)), Queries: r.metrics.Snapshot()}
	for _, row := range rows {
		st.Connections[row.State] = row.Connections
	}
	if r.cache != nil {
		cs := r.cache.Stats()
		st.Cache = &cs
	}
	st.Replicas = r.ReplicaStats()
	return st, nil
}

// Collector returns a Prometheus collector of this Repo's figures, labelled
// db=Config.Name. Register it once (prometheus.MustRegister(r.Collector()));
// two Repos with the same Name cannot be registered together. The names
// follow Prisma's removed $metrics, with evaldb_ for prisma_:
//
//	evaldb_queries_total{query}                  counter   statements run, by sqlc name
//	evaldb_query_errors_total{query}             counter   statements that failed
//	evaldb_query_duration_seconds{query}         histogram statement latency
//	evaldb_pool_connections_open                 gauge     open connections (prisma_pool_connections_open)
//	evaldb_pool_connections_idle                 gauge     idle connections
//	evaldb_pool_connections_busy                 gauge     acquired connections
//	evaldb_pool_connections_max                  gauge     connection limit
//	evaldb_pool_connections_opened_total         counter   connections opened
//	evaldb_pool_acquires_total                   counter   successful acquires
//	evaldb_pool_acquire_seconds_total            counter   time successful acquires took
//	evaldb_pool_acquires_waited_total            counter   acquires that had to wait (prisma_client_queries_wait)
//	evaldb_pool_acquire_wait_seconds_total       counter   time those waited
//	evaldb_pool_acquires_canceled_total          counter   acquires abandoned (context ended)
//	evaldb_pool_acquire_timeouts_total           counter   acquires that hit the pool timeout (P2024)
//	evaldb_connects_total / evaldb_connect_errors_total    connection attempts and failures
//
// With replicas, the replica_* families of replica.go are added.
// The cache has its own collector: register r.Cache().Collector() too.
// Collect takes no round trip to the server. Safe for concurrent use.
func (r *Repo) Collector() prometheus.Collector {
	labels := prometheus.Labels{"db": r.cfg.Name}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, labels) }
	return &collector{r: r, rep: replicaDescs(labels), d: map[string]*prometheus.Desc{
		"open":     d("evaldb_pool_connections_open", "Open connections in the pool."),
		"idle":     d("evaldb_pool_connections_idle", "Idle connections in the pool."),
		"busy":     d("evaldb_pool_connections_busy", "Connections acquired from the pool."),
		"max":      d("evaldb_pool_connections_max", "The pool's connection limit."),
		"opened":   d("evaldb_pool_connections_opened_total", "Connections the pool opened."),
		"acquires": d("evaldb_pool_acquires_total", "Successful acquires."),
		"acqsec":   d("evaldb_pool_acquire_seconds_total", "Time successful acquires took."),
		"waited":   d("evaldb_pool_acquires_waited_total", "Acquires that had to wait for a connection."),
		"waitsec":  d("evaldb_pool_acquire_wait_seconds_total", "Time acquires spent waiting for a connection."),
		"canceled": d("evaldb_pool_acquires_canceled_total", "Acquires abandoned because their context ended."),
		"timeouts": d("evaldb_pool_acquire_timeouts_total", "Acquires that ran out of pool timeout (ErrPoolTimeout)."),
	}}
}

// collector's descriptors are built once, by Collector; the per-query
// families are the client_golang vectors of Metrics.
type collector struct {
	r   *Repo
	d   map[string]*prometheus.Desc
	rep map[string]*prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.r.metrics.describe(ch)
	for _, d := range c.d {
		ch <- d
	}
	if c.r.rep != nil {
		for _, d := range c.rep {
			ch <- d
		}
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.r.metrics.collect(ch)
	ps := c.r.PoolStats()
	gauge := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.d[k], prometheus.GaugeValue, v) }
	counter := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.d[k], prometheus.CounterValue, v) }
	gauge("open", float64(ps.TotalConns))
	gauge("idle", float64(ps.IdleConns))
	gauge("busy", float64(ps.AcquiredConns))
	gauge("max", float64(ps.MaxConns))
	counter("opened", float64(ps.NewConnsCount))
	counter("acquires", float64(ps.AcquireCount))
	counter("acqsec", ps.AcquireDuration.Seconds())
	counter("waited", float64(ps.EmptyAcquireCount))
	counter("waitsec", ps.EmptyAcquireWaitTime.Seconds())
	counter("canceled", float64(ps.CanceledAcquireCount))
	counter("timeouts", float64(ps.AcquireTimeouts))
	collectReplicas(ch, c.rep, c.r.ReplicaStats())
}

// Command benchscale measures how the cost of each of evaldb's operations
// grows with the tables (issue 16): it loads eval_results at 10⁴, 10⁵, 10⁶
// and 10⁷ rows (eval_runs, users, student_profiles and performance_metrics
// scaled alongside), and at each size measures the p50 and p99 of every read
// query, uncached, and of RecordEvalRun at 1,000 and 10,000 results.
//
// It writes, under -out: results.csv (one row per size and operation),
// table.md, scale.png (the curves, drawn with gonum/plot) and explain.txt
// (EXPLAIN ANALYZE of every read at the largest size).
//
// The server is TEST_DATABASE_URL when set (a superuser URL: the database
// evaldb_scale is dropped and recreated on it), else a throwaway cluster
// started from the installed binaries. `make bench-scale` runs it; it is not
// part of CI (the 10⁷ step loads about 3 GB and takes minutes).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/bench/seed"
	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/schema"
)

const dbName = "evaldb_scale"

func main() {
	sizes := flag.String("sizes", "1e4,1e5,1e6,1e7", "eval_results row counts to measure at, ascending")
	iters := flag.Int("iters", 300, "samples of each read at each size")
	recordIters := flag.Int("record-iters", 10, "samples of RecordEvalRun(1,000) at each size (a third as many of 10,000)")
	out := flag.String("out", "out/scale", "directory for results.csv, table.md, scale.png and explain.txt")
	flag.Parse()
	ns, err := parseSizes(*sizes)
	if err == nil {
		err = os.MkdirAll(*out, 0o755)
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err = run(ctx, ns, *iters, *recordIters, *out)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func parseSizes(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v < 1e3 || v != float64(int(v)) {
			return nil, fmt.Errorf("-sizes: %q is not a whole row count of at least 1000 (write 1e6 or 1000000)", f)
		}
		if len(ns) > 0 && int(v) <= ns[len(ns)-1] {
			return nil, fmt.Errorf("-sizes: %q: sizes must be ascending (the data only grows)", f)
		}
		ns = append(ns, int(v))
	}
	return ns, nil
}

func run(ctx context.Context, sizes []int, iters, recordIters int, out string) error {
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		// A larger shared_buffers than the test default, so that the
		// curves show the queries rather than the kernel's page cache
		// at 10⁶ rows; 10⁷ rows (about 3 GB) exceed it on purpose.
		c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{
			"shared_buffers": "1GB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
		}})
		if err != nil {
			return fmt.Errorf("start a throwaway cluster (or set TEST_DATABASE_URL): %w", err)
		}
		defer c.Stop()
		admin = c.URL("postgres")
	}
	url, err := createDatabase(ctx, admin)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r, err := repo.Open(ctx, &repo.Config{URL: url, Env: repo.Production, DisableCache: true, DisableListen: true})
	if err != nil {
		return err
	}
	defer r.Close()

	var all []sample
	d := &dataset{}
	for _, n := range sizes {
		start := time.Now()
		if err := d.grow(ctx, conn, n); err != nil {
			return fmt.Errorf("load %d results: %w", n, err)
		}
		fmt.Fprintf(os.Stderr, "benchscale: %s results, %d runs, %d students loaded in %s\n",
			human(d.results), d.runs, d.students, time.Since(start).Round(time.Second))
		ss, err := measure(ctx, r, conn, d, iters, recordIters)
		if err != nil {
			return fmt.Errorf("measure at %d results: %w", n, err)
		}
		for _, s := range ss {
			fmt.Fprintf(os.Stderr, "  %-34s p50 %10s  p99 %10s\n", s.op, s.p50, s.p99)
		}
		all = append(all, ss...)
		if err := writeResults(out, all); err != nil { // after every size, so an interrupted run keeps what it measured
			return err
		}
	}
	if err := explain(ctx, conn, d, filepath.Join(out, "explain.txt")); err != nil {
		return err
	}
	return plotCurves(all, filepath.Join(out, "scale.png"))
}

func createDatabase(ctx context.Context, admin string) (string, error) {
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to TEST_DATABASE_URL: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + dbName + " WITH (FORCE)", "CREATE DATABASE " + dbName} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	cfg := c.Config().Copy()
	cfg.Database = dbName
	if _, err := schema.MigrateConfig(ctx, cfg); err != nil {
		return "", fmt.Errorf("migrate %s: %w", dbName, err)
	}
	return seed.WithDatabase(admin, dbName), nil
}

func human(n int) string {
	switch {
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%dM", n/1e6)
	case n >= 1e3 && n%1e3 == 0:
		return fmt.Sprintf("%dk", n/1e3)
	}
	return strconv.Itoa(n)
}

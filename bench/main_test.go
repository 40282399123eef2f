package bench

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/aah/evaldb/bench/seed"
)

// dbURL is the seeded benchmark database, set by TestMain.
var dbURL string

// TestMain finds the benchmark database: BENCH_DATABASE_URL when set (run.sh
// seeds it once for every contender, Prisma included), else a fresh
// evaldb_bench on the server of TEST_DATABASE_URL. Without either it fails
// and says how to run the suite: this module cannot use evaldb's
// internal/dbtest harness (see README), and run.sh starts a throwaway server.
func TestMain(m *testing.M) {
	dbURL = os.Getenv("BENCH_DATABASE_URL")
	if dbURL == "" {
		admin := os.Getenv("TEST_DATABASE_URL")
		if admin == "" {
			fmt.Fprintln(os.Stderr, "bench: no database: run ./run.sh (it starts a throwaway PostgreSQL), "+
				"or set TEST_DATABASE_URL to a superuser postgres:// URL (the database "+seed.DatabaseName+" is recreated there)")
			os.Exit(2)
		}
		var err error
		if dbURL, err = seed.Prepare(context.Background(), admin); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// contenderNames lists the Go contenders in table order.
var contenderNames = []string{"pgx", "evaldb", "gorm", "bun"}

// open opens one contender on the benchmark database; tb's cleanup closes it.
func open(tb testing.TB, name string) contender {
	tb.Helper()
	ctx := context.Background()
	var (
		c   contender
		err error
	)
	switch name {
	case "pgx":
		c, err = openPgx(ctx, dbURL)
	case "evaldb":
		c, err = openEvaldb(ctx, dbURL, false)
	case "evaldb-cached":
		c, err = openEvaldb(ctx, dbURL, true)
	case "evaldb-view":
		var e *evaldbContender
		if e, err = openEvaldb(ctx, dbURL, true); err == nil {
			c = &evaldbViewContender{e}
		}
	case "gorm":
		c, err = openGorm(dbURL)
	case "bun":
		c, err = openBun(dbURL)
	default:
		tb.Fatalf("unknown contender %q", name)
	}
	if err != nil {
		tb.Fatalf("open %s: %v", name, err)
	}
	tb.Cleanup(c.Close)
	return c
}

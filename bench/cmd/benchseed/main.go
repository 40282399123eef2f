// Command benchseed creates the benchmark database on the server of
// TEST_DATABASE_URL (see package seed) and prints its URL. bench/run.sh uses
// it so that the Go benchmarks, Prisma and pgbench share one data set.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aah/evaldb/bench/seed"
)

func main() {
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		fmt.Fprintln(os.Stderr, "benchseed: TEST_DATABASE_URL is empty: set it to a postgres:// URL of a server where it may create the database "+seed.DatabaseName)
		os.Exit(2)
	}
	u, err := seed.Prepare(context.Background(), admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchseed:", err)
		os.Exit(1)
	}
	fmt.Println(u)
}

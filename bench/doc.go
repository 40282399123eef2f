// Package bench holds evaldb's comparative benchmarks (issue 7): the same
// five workloads done the idiomatic way by raw pgx (the floor), evaldb
// (repo, txn, cachewrap), GORM and bun, on evaldb's schema and one seeded
// data set (package seed). Prisma 7's side is in prisma/, and run.sh runs
// everything on one server and writes the comparison table.
//
// The benchmarks are in the _test.go files; they need TEST_DATABASE_URL (a
// server where the database evaldb_bench may be recreated) or
// BENCH_DATABASE_URL (an already seeded database). run.sh sets one of them,
// starting a throwaway cluster when neither is set.
//
// This is a separate module so that GORM, bun and their dependencies never
// reach evaldb's go.mod.
package bench

package repo

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

// BenchmarkGetUser compares one GetUser through a Repo (pool timeout,
// executor, tracers, translation; cache off) with sqlc over a bare pgxpool,
// to measure what evaldb's layers cost per query.
func BenchmarkGetUser(b *testing.B) {
	ctx := context.Background()
	dbURL := dbtest.URL(b)
	r, err := Open(ctx, &Config{URL: dbURL, Env: Production, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	u, err := r.Queries().CreateUser(ctx, gen.CreateUserParams{Email: "bench@example.com", Name: "B"})
	if err != nil {
		b.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	for name, q := range map[string]gen.Querier{"Repo": r.Queries(), "BarePool": gen.New(pool)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.GetUser(ctx, u.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseURL measures translating a Prisma URL.
func BenchmarkParseURL(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseURL("postgres://app:pw@db:5432/aah?connection_limit=10&pool_timeout=20&pgbouncer=true&socket_timeout=30", Production); err != nil {
			b.Fatal(err)
		}
	}
}

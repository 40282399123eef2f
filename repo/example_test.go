package repo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/repo"
)

// A service opens one Repo at start-up, from the environment it used with
// Prisma, and shares it between all requests.
func Example() {
	cfg, err := repo.ConfigFromEnv() // DATABASE_URL, APP_ENV, …
	if err != nil {
		log.Fatal(err)
	}
	cfg.Logger = slog.Default()
	r, err := repo.Open(context.Background(), cfg)
	if err != nil {
		log.Fatal(err) // names host:port and what to check; never the password
	}
	defer r.Close()
	prometheus.MustRegister(r.Collector())

	// The handlers depend on gen.Querier only, so a unit test can hand them
	// a Repo over pgxmock (see repo/mocktest's example).
	q := r.Queries()
	http.HandleFunc("/users/{id}", func(w http.ResponseWriter, req *http.Request) {
		id, _ := strconv.ParseInt(req.PathValue("id"), 10, 64)
		u, err := q.GetUser(req.Context(), id)
		if errors.Is(err, repo.ErrNotFound) {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "hello %s", u.Name)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// ParseURL shows what a Prisma URL means to evaldb, and why.
func ExampleParseURL() {
	s, err := repo.ParseURL("postgres://app:secret@db.example:6543/aah?pgbouncer=true&connection_limit=3&socket_timeout=30", repo.Production)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Redacted)
	for _, set := range s.Explain {
		fmt.Printf("%-20s %-16s %s\n", set.Name, set.Value, set.Source)
	}
	_, err = repo.ParseURL("postgres://app:secret@db.example/aah?connection_limit=0", repo.Production)
	fmt.Println(err)
	// Output:
	// postgres://app:xxxxx@db.example:6543/aah
	// max_conns            3                url: connection_limit
	// pool_timeout         20s              default (production)
	// connect_timeout      5s               default (production)
	// query_timeout        30s              url: socket_timeout
	// pgbouncer            true             url: pgbouncer
	// statement_cache_size 0                url: pgbouncer=true
	// exec_mode            exec             url: pgbouncer=true
	// search_path          server default   default
	// database URL parameter connection_limit="0": must be a whole number from 1 to 10000 (the pool's maximum connections)
}

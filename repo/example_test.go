package repo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/pashagolub/pgxmock/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aah/evaldb/gen"
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

	http.HandleFunc("/users/{id}", userHandler(r.Queries()))
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// userHandler is a tiny service handler: it depends on gen.Querier only, so
// a unit test can hand it a Repo over pgxmock.
func userHandler(q gen.Querier) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		id, err := strconv.ParseInt(req.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		u, err := q.GetUser(req.Context(), id)
		switch {
		case errors.Is(err, repo.ErrNotFound):
			http.Error(w, "no such user", http.StatusNotFound)
		case errors.Is(err, repo.ErrPoolTimeout):
			http.Error(w, "busy, retry later", http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, "internal error", http.StatusInternalServerError)
		default:
			fmt.Fprintf(w, "hello %s", u.Name)
		}
	}
}

// A unit test of the handler needs no database: repo.New wraps a pgxmock
// pool, and the handler sees the same translated errors as in production.
func ExampleNew_pgxmock() {
	mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherEqual))
	if err != nil {
		log.Fatal(err)
	}
	defer mock.Close()
	r, err := repo.New(mock, nil)
	if err != nil {
		log.Fatal(err)
	}
	mock.ExpectQuery(gen.GetUser).WithArgs(int64(7)).
		WillReturnRows(mock.NewRows(gen.GetUserColumns))
	mock.ExpectQuery(gen.GetUser).WithArgs(int64(8)).
		WillReturnError(&repo.PoolTimeoutError{MaxConns: 10, Timeout: 20e9})

	mux := http.NewServeMux()
	mux.HandleFunc("/users/{id}", userHandler(r.Queries()))
	for _, path := range []string{"/users/7", "/users/8"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// /users/7 404 no such user
	// /users/8 503 busy, retry later
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

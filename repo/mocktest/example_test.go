package mocktest_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
)

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
func Example_pgxmock() {
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

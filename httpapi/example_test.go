package httpapi_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"

	"github.com/aah/evaldb/httpapi"
	"github.com/aah/evaldb/repo"
)

// A service mounts the evaldb API under a prefix of its own, next to its
// other routes, on the one Repo of the process.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := repo.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	r, err := repo.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	mux := http.NewServeMux()
	mux.Handle("/evals/", http.StripPrefix("/evals", httpapi.New(r, &httpapi.Options{
		Logger: slog.Default(),
		Prefix: "/evals", // links (Location, next) carry it
	})))
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("the service's own page")) })
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

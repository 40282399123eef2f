package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aah/evaldb/httpapi"
	"github.com/aah/evaldb/repo"
)

func runServe(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("serve", "[flags]",
		"Runs evaldb's HTTP JSON service (package github.com/aah/evaldb/httpapi) on one shared Repo\n"+
			"(one pool for the whole process):\n"+
			"  POST /runs                       record an eval run with its results and metrics\n"+
			"  GET  /runs                       runs, newest first (?model=&status=&limit=)\n"+
			"  GET  /runs/{id}                  a run with its summary and metrics\n"+
			"  GET  /runs/{id}/results          a page of its results (?limit=N&failed=true; follow next)\n"+
			"  GET  /students/{student_id}      a student's profile with its performance metrics\n"+
			"  GET  /healthz                    200 when the database answers, else 503 saying why\n"+
			"  GET  /metrics                    Prometheus metrics\n"+
			"  GET  /openapi.json               the OpenAPI 3.1 document of all of it\n"+
			"It needs DATABASE_URL (or POSTGRES_PRISMA_URL); -local serves the embedded development\n"+
			"database instead. It stops on SIGINT/SIGTERM after finishing the requests in flight.")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	maxBody := fs.Int64("max-body", httpapi.DefaultMaxBodyBytes,
		fmt.Sprintf("largest request body accepted, in bytes (the default fits %d results of %d bytes)", 100_000, httpapi.ResultBudget))
	grace := fs.Duration("grace", 20*time.Second, "how long shutdown waits for requests in flight")
	recordTimeout := fs.Duration("record-timeout", httpapi.DefaultRecordTimeout, "how long recording one posted run may take, BEGIN to COMMIT")
	local := fs.Bool("local", false, "without DATABASE_URL, serve the embedded local PostgreSQL (development only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *maxBody <= 0 {
		return fmt.Errorf("-max-body=%d: must be a positive number of bytes", *maxBody)
	}
	if *recordTimeout < time.Millisecond {
		return fmt.Errorf("-record-timeout=%s: must be at least 1ms", *recordTimeout)
	}
	a.allowLocal = *local
	var logger *slog.Logger
	r, err := a.openRepo(ctx, true, func(cfg *repo.Config) {
		if cfg.Logger == nil {
			cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, nil))
		}
		logger = cfg.Logger
	})
	if err != nil {
		return err
	}
	defer r.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pick another with -addr)", *addr, err)
	}
	srv := &http.Server{
		Handler:           httpapi.New(r, &httpapi.Options{Logger: logger, MaxBodyBytes: *maxBody, RecordTimeout: *recordTimeout}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(a.stdout, "evaldb: serving on http://%s (the API: http://%s/openapi.json)\n", ln.Addr(), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(a.stdout, "evaldb: shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(a.stdout, "evaldb: stopped")
	return nil
}

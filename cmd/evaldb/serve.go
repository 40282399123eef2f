package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

func runServe(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("serve", "[flags]",
		"Runs an HTTP JSON service on one shared Repo (one pool for the whole process):\n"+
			"  POST /runs                       record an eval run with its results and metrics\n"+
			"  GET  /runs/{id}                  a run with its summary\n"+
			"  GET  /runs/{id}/results          a page of its results (?after=CASE_ID&limit=N&failed=true)\n"+
			"  GET  /students/{student_id}      a student's profile with its performance metrics\n"+
			"  GET  /metrics                    Prometheus metrics\n"+
			"  GET  /healthz                    200 when the database answers\n"+
			"It stops on SIGINT/SIGTERM after finishing the requests in flight, then closes the pool.")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	maxBody := fs.Int64("max-body", 256<<20, "largest request body accepted, in bytes")
	grace := fs.Duration("grace", 20*time.Second, "how long shutdown waits for requests in flight")
	if err := fs.Parse(args); err != nil {
		return err
	}
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
		Handler:           newServer(r, logger, *maxBody).routes(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(a.stdout, "evaldb: serving on http://%s\n", ln.Addr())
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

// server is the HTTP service. It holds one Repo, shared by every request:
// the pooling guide's singleton, never a client per request.
type server struct {
	r       *repo.Repo
	log     *slog.Logger
	maxBody int64
	reg     *prometheus.Registry
}

func newServer(r *repo.Repo, log *slog.Logger, maxBody int64) *server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), r.Collector())
	if c := r.Cache(); c != nil {
		reg.MustRegister(c.Collector())
	}
	if l := r.Listener(); l != nil {
		reg.MustRegister(l.Collector())
	}
	return &server{r: r, log: log, maxBody: maxBody, reg: reg}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /runs", s.postRun)
	mux.HandleFunc("GET /runs/{id}", s.getRun)
	mux.HandleFunc("GET /runs/{id}/results", s.getResults)
	mux.HandleFunc("GET /students/{student_id}", s.getStudent)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

// runRequest is the JSON body of POST /runs.
type runRequest struct {
	ID         *uuid.UUID      `json:"id"`
	Name       string          `json:"name"`
	Model      string          `json:"model"`
	Dataset    string          `json:"dataset"`
	Status     string          `json:"status"`
	Config     json.RawMessage `json:"config"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	Results    []struct {
		CaseID           string  `json:"case_id"`
		Input            string  `json:"input"`
		Expected         string  `json:"expected"`
		Output           string  `json:"output"`
		Score            float64 `json:"score"`
		Passed           bool    `json:"passed"`
		LatencyMs        int32   `json:"latency_ms"`
		PromptTokens     int32   `json:"prompt_tokens"`
		CompletionTokens int32   `json:"completion_tokens"`
		Error            *string `json:"error"`
	} `json:"results"`
	Metrics []struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
	} `json:"metrics"`
}

func (req *runRequest) run() txn.Run {
	run := txn.Run{Name: req.Name, Model: req.Model, Dataset: req.Dataset, Status: req.Status,
		Config: req.Config, FinishedAt: req.FinishedAt}
	if req.ID != nil {
		run.ID = *req.ID
	}
	if req.StartedAt != nil {
		run.StartedAt = *req.StartedAt
	}
	run.Results = make([]txn.Result, len(req.Results))
	for i, r := range req.Results {
		run.Results[i] = txn.Result(r)
	}
	run.Metrics = make([]txn.Metric, len(req.Metrics))
	for i, m := range req.Metrics {
		run.Metrics[i] = txn.Metric(m)
	}
	return run
}

type problemJSON struct {
	Field   string `json:"field"`
	Row     *int   `json:"row,omitempty"`
	Message string `json:"message"`
}

type errorJSON struct {
	Error    string        `json:"error"`
	Problems []problemJSON `json:"problems,omitempty"`
}

func (s *server) postRun(w http.ResponseWriter, req *http.Request) {
	var body runRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, s.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{Error: fmt.Sprintf(
				"request body exceeds %d bytes: split the run or raise -max-body", tooBig.Limit)})
			return
		}
		s.writeJSON(w, http.StatusBadRequest, errorJSON{Error: "invalid JSON body: " + err.Error()})
		return
	}
	rec, err := s.r.RecordEvalRun(req.Context(), body.run(), nil)
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	status := http.StatusCreated
	if rec.AlreadyRecorded {
		status = http.StatusOK
	}
	s.writeJSON(w, status, map[string]any{
		"id": rec.Run.ID, "results": rec.Results, "metrics": rec.Metrics,
		"already_recorded": rec.AlreadyRecorded, "run": rec.Run,
	})
}

func (s *server) runID(w http.ResponseWriter, req *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(req.PathValue("id"))
	if err != nil {
		s.writeJSON(w, http.StatusBadRequest, errorJSON{Error: fmt.Sprintf("run id %q is not a UUID", req.PathValue("id"))})
		return uuid.Nil, false
	}
	return id, true
}

func (s *server) getRun(w http.ResponseWriter, req *http.Request) {
	id, ok := s.runID(w, req)
	if !ok {
		return
	}
	q := s.r.Queries()
	run, err := q.GetEvalRun(req.Context(), id)
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	sum, err := q.GetEvalRunSummary(req.Context(), id)
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	metrics, err := q.ListEvalMetrics(req.Context(), id)
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"run": run, "summary": sum, "metrics": metrics})
}

func (s *server) getResults(w http.ResponseWriter, req *http.Request) {
	id, ok := s.runID(w, req)
	if !ok {
		return
	}
	qv := req.URL.Query()
	limit := 100
	if v := qv.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeJSON(w, http.StatusBadRequest, errorJSON{Error: fmt.Sprintf("limit=%q: must be a whole number from 1 to 1000", v)})
			return
		}
		limit = n
	}
	failed, err := strconv.ParseBool(cmpOr(qv.Get("failed"), "false"))
	if err != nil {
		s.writeJSON(w, http.StatusBadRequest, errorJSON{Error: fmt.Sprintf("failed=%q: must be true or false", qv.Get("failed"))})
		return
	}
	q := s.r.Queries()
	after := qv.Get("after")
	var page []gen.EvalResult
	if failed {
		page, err = q.ListFailedEvalResults(req.Context(), gen.ListFailedEvalResultsParams{RunID: id, AfterCaseID: after, RowLimit: int32(limit)})
	} else {
		page, err = q.ListEvalResults(req.Context(), gen.ListEvalResultsParams{RunID: id, AfterCaseID: after, RowLimit: int32(limit)})
	}
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	if len(page) == 0 && after == "" {
		// An empty first page: tell "no results yet" from "no such run".
		if _, err := q.GetEvalRun(req.Context(), id); err != nil {
			s.writeError(w, req, err)
			return
		}
	}
	resp := map[string]any{"results": page}
	if len(page) == limit {
		resp["next"] = fmt.Sprintf("/runs/%s/results?after=%s&limit=%d&failed=%t", id, page[len(page)-1].CaseID, limit, failed)
	}
	s.writeJSON(w, http.StatusOK, resp)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type studentMetricJSON struct {
	Name       string    `json:"name"`
	Value      float64   `json:"value"`
	RecordedAt time.Time `json:"recorded_at"`
}

func (s *server) getStudent(w http.ResponseWriter, req *http.Request) {
	st, err := s.r.Queries().GetStudentWithMetrics(req.Context(), req.PathValue("student_id"))
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	metrics := make([]studentMetricJSON, len(st.MetricNames))
	for i := range metrics {
		metrics[i] = studentMetricJSON{Name: st.MetricNames[i], Value: st.MetricValues[i], RecordedAt: st.MetricRecordedAt[i]}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"id": st.ID, "user_id": st.UserID, "student_id": st.StudentID, "cohort": st.Cohort,
		"created_at": st.CreatedAt, "performance_metrics": metrics,
	})
}

func (s *server) healthz(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if err := s.r.Ping(ctx); err != nil {
		s.writeError(w, req, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// writeError maps evaldb's errors to HTTP statuses. Only validation and
// client errors echo details; server-side failures are logged and answered
// with a generic message, so nothing internal (hosts, SQL) leaks.
func (s *server) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var verr *txn.ValidationError
	var conflict *repo.ConflictError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &verr):
		body := errorJSON{Error: "invalid eval run: fix the fields listed in problems"}
		for _, p := range verr.Problems {
			pj := problemJSON{Field: p.Field, Message: p.Message}
			if p.Row >= 0 {
				row := p.Row
				pj.Row = &row
			}
			body.Problems = append(body.Problems, pj)
		}
		s.writeJSON(w, http.StatusBadRequest, body)
	case errors.Is(err, repo.ErrNotFound):
		s.writeJSON(w, http.StatusNotFound, errorJSON{Error: "not found"})
	case errors.Is(err, txn.ErrRunConflict):
		s.writeJSON(w, http.StatusConflict, errorJSON{Error: "a run with this id was already recorded with different content"})
	case errors.As(err, &conflict):
		s.writeJSON(w, http.StatusConflict, errorJSON{Error: "conflict on " + conflict.Constraint})
	case errors.Is(err, repo.ErrPoolTimeout):
		w.Header().Set("Retry-After", "1")
		s.writeJSON(w, http.StatusServiceUnavailable, errorJSON{Error: "the database is busy: retry shortly"})
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22"):
		// A data exception (class 22) is the client's input that the server
		// refused, e.g. a NUL byte or invalid UTF-8 in a path or query value.
		s.writeJSON(w, http.StatusBadRequest, errorJSON{Error: "invalid input: " + pgErr.Message})
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		s.log.ErrorContext(req.Context(), "request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		s.writeJSON(w, http.StatusInternalServerError, errorJSON{Error: "internal error"})
	}
}

func (s *server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("write response", "err", err)
	}
}

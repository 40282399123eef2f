// Package httpapi is evaldb's HTTP JSON service as a handler that a
// service mounts: recording eval runs, reading them back (a run with its
// summary, keyset-paged listings of runs and of a run's results), students
// with their performance metrics, a health check, Prometheus metrics and
// the OpenAPI 3.1 document that describes all of it (served at
// /openapi.json, kept in this package as openapi.json).
//
//	r, err := repo.Open(ctx, cfg)      // one Repo, one pool, per process
//	...
//	mux.Handle("/evals/", http.StripPrefix("/evals", httpapi.New(r, &httpapi.Options{Prefix: "/evals"})))
//
// Every answer is JSON. Every error has one shape (see Error): 400 for a
// body or parameter that is wrong, saying what and where; 404 and 405 for
// unknown routes and methods; 409 with the differences from the run
// recorded before; 413 over the body limit; 503 with Retry-After when the
// database is unreachable or the pool stays busy; 500, saying nothing
// internal, for the rest (logged).
package httpapi

import (
	"cmp"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// ResultBudget is the JSON size of one result that DefaultMaxBodyBytes
// allows for on average, in bytes: about 160 bytes of field names,
// punctuation and numbers plus 480 bytes of text (case id, input, expected,
// output). See DefaultMaxBodyBytes.
const ResultBudget = 640

// DefaultMaxBodyBytes is the default limit of a POST /runs body: a run of
// txn.MaxResults (100,000) results at ResultBudget bytes each, plus a
// config at its largest (txn.MaxConfigBytes, 1 MiB) and 1 MiB for the run's
// own fields and its metrics: 100,000 × 640 + 1,048,576 + 1,048,576 =
// 66,097,152 bytes (63 MiB). Runs with longer texts need Options.MaxBodyBytes
// raised (evaldb serve -max-body); the body is decoded as it streams in, so
// the memory a request holds is about the decoded run, not twice the body.
const DefaultMaxBodyBytes = txn.MaxResults*ResultBudget + txn.MaxConfigBytes + 1<<20

// Options configures New. The zero value (or nil) means the defaults.
type Options struct {
	// Logger receives one line per request that failed on the server side
	// (500s and 503s). Default: discard.
	Logger *slog.Logger
	// MaxBodyBytes is the largest request body accepted; a larger one gets
	// 413. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Prefix is the path the handler is mounted under (with
	// http.StripPrefix), such as "/evals". It is prepended to the links the
	// service answers (Location, next). Default "": mounted at the root.
	Prefix string
	// DisableMetrics leaves out GET /metrics, for a service that exports
	// r.Collector() through its own registry.
	DisableMetrics bool
	// RecordTimeout bounds the transaction that records a POSTed run
	// (txn.Options.Timeout). txn's default, Prisma's 5 s for interactive
	// transactions, is too short for the largest run the body limit admits
	// on a busy server. Default DefaultRecordTimeout.
	RecordTimeout time.Duration
}

// DefaultRecordTimeout is the default Options.RecordTimeout: a run of
// txn.MaxResults results records in about a second on the development
// machine, so a minute leaves room for a loaded server without holding a
// connection forever.
const DefaultRecordTimeout = time.Minute

// Handler is the service. Make it with New.
type Handler struct {
	r       *repo.Repo
	record  *txn.Options // RecordEvalRun's options
	log     *slog.Logger
	maxBody int64
	prefix  string
	mux     *http.ServeMux
}

// New returns the service over r. The handler shares r among all requests:
// the pooling guide's singleton, never a client per request. Safe for
// concurrent use.
func New(r *repo.Repo, o *Options) *Handler {
	if o == nil {
		o = &Options{}
	}
	h := &Handler{r: r, log: o.Logger, maxBody: o.MaxBodyBytes, prefix: strings.TrimSuffix(o.Prefix, "/")}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	h.record = &txn.Options{Timeout: cmp.Or(max(o.RecordTimeout, 0), DefaultRecordTimeout)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /runs", h.postRun)
	mux.HandleFunc("GET /runs", h.listRuns)
	mux.HandleFunc("GET /runs/{id}", h.getRun)
	mux.HandleFunc("GET /runs/{id}/results", h.getResults)
	mux.HandleFunc("GET /students/{student_id}", h.getStudent)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	if !o.DisableMetrics {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), r.Collector())
		if c := r.Cache(); c != nil {
			reg.MustRegister(c.Collector())
		}
		if l := r.Listener(); l != nil {
			reg.MustRegister(l.Collector())
		}
		if p := r.Poller(); p != nil {
			reg.MustRegister(p.Collector())
		}
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	h.mux = mux
	return h
}

// ServeHTTP routes the request. What the mux would answer in plain text
// (404 for an unknown path, 405 for a known path with another method) is
// answered in the error shape instead, with the mux's Allow header.
//
// A panic in a handler is answered as a 500 in the error shape and logged
// with its stack (not its value, which could hold anything), instead of
// net/http's dropped connection.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.ErrorContext(req.Context(), "httpapi: handler panicked", "method", req.Method, "path", req.URL.Path,
				"panic_type", fmt.Sprintf("%T", v), "stack", string(debug.Stack()))
			h.writeError(w, http.StatusInternalServerError, Error{Code: CodeInternal, Message: "internal error"})
		}
	}()
	handler, pattern := h.mux.Handler(req)
	if pattern != "" {
		h.mux.ServeHTTP(w, req) // sets the path values
		return
	}
	cw := &captureWriter{header: http.Header{}}
	handler.ServeHTTP(cw, req)
	switch cw.code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", cw.header.Get("Allow"))
		h.writeError(w, http.StatusMethodNotAllowed, Error{Code: CodeMethodNotAllowed,
			Message: req.Method + " is not allowed on " + req.URL.Path + "; allowed: " + cw.header.Get("Allow")})
	case http.StatusNotFound, 0:
		h.writeError(w, http.StatusNotFound, Error{Code: CodeNotFound,
			Message: "no route " + req.URL.Path + "; the routes are listed at /openapi.json"})
	default:
		// A redirect (a path cleaned by the mux): pass it on.
		for k, v := range cw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(cw.code)
	}
}

// captureWriter keeps the status and headers the mux's fallback handlers
// write, and drops their plain-text bodies.
type captureWriter struct {
	header http.Header
	code   int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return len(b), nil
}

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of the service, as served at
// GET /openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}

package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/txn"
)

// runJSON is the representation of a run, answered by GET /runs/{id} and
// by POST /runs: the run, its summary and its metrics.
type runJSON struct {
	Run     gen.EvalRun              `json:"run"`
	Summary gen.GetEvalRunSummaryRow `json:"summary"`
	Metrics []gen.EvalMetric         `json:"metrics"`
}

// Paging limits of the listings.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func (h *Handler) postRun(w http.ResponseWriter, req *http.Request) {
	run, err := decodeRun(http.MaxBytesReader(w, req.Body, h.maxBody))
	if err != nil {
		h.fail(w, req, err)
		return
	}
	rec, err := h.r.RecordEvalRun(req.Context(), run, h.record)
	if err != nil {
		h.fail(w, req, err)
		return
	}
	rep, err := h.readRun(req.Context(), rec.Run.ID)
	if err != nil {
		h.fail(w, req, err)
		return
	}
	status := http.StatusCreated
	if rec.AlreadyRecorded {
		status = http.StatusOK
	}
	w.Header().Set("Location", h.prefix+"/runs/"+rec.Run.ID.String())
	h.writeJSON(w, status, rep)
}

// readRun reads a run's representation. The three reads go through the
// Repo's cache, which a write through the same Repo has already
// invalidated.
func (h *Handler) readRun(ctx context.Context, id uuid.UUID) (runJSON, error) {
	q := h.r.Queries()
	var rep runJSON
	var err error
	if rep.Run, err = q.GetEvalRun(ctx, id); err != nil {
		return rep, err
	}
	if rep.Summary, err = q.GetEvalRunSummary(ctx, id); err != nil {
		return rep, err
	}
	rep.Metrics, err = q.ListEvalMetrics(ctx, id)
	return rep, err
}

func (h *Handler) runID(w http.ResponseWriter, req *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(req.PathValue("id"))
	if err != nil {
		h.badParam(w, "run id %q is not a UUID", truncate(req.PathValue("id")))
		return uuid.Nil, false
	}
	return id, true
}

func (h *Handler) getRun(w http.ResponseWriter, req *http.Request) {
	id, ok := h.runID(w, req)
	if !ok {
		return
	}
	rep, err := h.readRun(req.Context(), id)
	if err != nil {
		h.fail(w, req, err)
		return
	}
	h.writeJSON(w, http.StatusOK, rep)
}

// limitParam reads ?limit=, defaultLimit when absent.
func (h *Handler) limitParam(w http.ResponseWriter, qv url.Values) (int, bool) {
	v := qv.Get("limit")
	if v == "" {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		h.badParam(w, "limit=%q: must be a whole number from 1 to %d", truncate(v), maxLimit)
		return 0, false
	}
	return n, true
}

// link builds a next link: path with the query values, every one escaped,
// so that whatever bytes a case id or a model name holds, following the
// link sends them back unchanged.
func (h *Handler) link(path string, qv url.Values) string {
	return h.prefix + path + "?" + qv.Encode()
}

type resultsPage struct {
	Results []gen.EvalResult `json:"results"`
	Next    string           `json:"next,omitempty"`
}

func (h *Handler) getResults(w http.ResponseWriter, req *http.Request) {
	id, ok := h.runID(w, req)
	if !ok {
		return
	}
	qv := req.URL.Query()
	limit, ok := h.limitParam(w, qv)
	if !ok {
		return
	}
	failed := false
	if v := qv.Get("failed"); v != "" {
		var err error
		if failed, err = strconv.ParseBool(v); err != nil {
			h.badParam(w, "failed=%q: must be true or false", truncate(v))
			return
		}
	}
	q := h.r.Queries()
	after := qv.Get("after")
	// One row more than the page tells whether there is a next page, so
	// the last page has no next link and no empty page follows it.
	var page []gen.EvalResult
	var err error
	if failed {
		page, err = q.ListFailedEvalResults(req.Context(), gen.ListFailedEvalResultsParams{RunID: id, AfterCaseID: after, RowLimit: int32(limit + 1)})
	} else {
		page, err = q.ListEvalResults(req.Context(), gen.ListEvalResultsParams{RunID: id, AfterCaseID: after, RowLimit: int32(limit + 1)})
	}
	if err != nil {
		h.fail(w, req, err)
		return
	}
	if len(page) == 0 && after == "" {
		// An empty first page: tell "no results yet" from "no such run".
		if _, err := q.GetEvalRun(req.Context(), id); err != nil {
			h.fail(w, req, err)
			return
		}
	}
	resp := resultsPage{Results: page}
	if len(page) > limit {
		resp.Results = page[:limit]
		next := url.Values{"after": {page[limit-1].CaseID}, "limit": {strconv.Itoa(limit)}}
		if failed {
			next.Set("failed", "true")
		}
		resp.Next = h.link("/runs/"+id.String()+"/results", next)
	}
	h.writeJSON(w, http.StatusOK, resp)
}

type runsPage struct {
	Runs []gen.EvalRun `json:"runs"`
	Next string        `json:"next,omitempty"`
}

// A runs cursor is the last run's created_at and id, base64url-encoded:
// opaque to clients, who follow next links.
func encodeCursor(r gen.EvalRun) string {
	return base64.RawURLEncoding.EncodeToString([]byte(r.CreatedAt.UTC().Format(time.RFC3339Nano) + " " + r.ID.String()))
}

func decodeCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	ts, id, ok := strings.Cut(string(b), " ")
	if !ok {
		return time.Time{}, uuid.Nil, fmt.Errorf("no id")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	u, err := uuid.Parse(id)
	return t, u, err
}

func (h *Handler) listRuns(w http.ResponseWriter, req *http.Request) {
	qv := req.URL.Query()
	limit, ok := h.limitParam(w, qv)
	if !ok {
		return
	}
	arg := gen.ListEvalRunsParams{RowLimit: int32(limit + 1)}
	next := url.Values{"limit": {strconv.Itoa(limit)}}
	if qv.Has("model") {
		m := qv.Get("model")
		arg.Model = &m
		next.Set("model", m)
	}
	if qv.Has("status") {
		s := qv.Get("status")
		switch s {
		case txn.StatusRunning, txn.StatusCompleted, txn.StatusFailed:
		default:
			h.badParam(w, "status=%q: must be %s, %s or %s", truncate(s), txn.StatusRunning, txn.StatusCompleted, txn.StatusFailed)
			return
		}
		arg.Status = &s
		next.Set("status", s)
	}
	if v := qv.Get("before"); v != "" {
		t, id, err := decodeCursor(v)
		if err != nil {
			h.badParam(w, "before=%q: not a cursor from a next link; start without it", truncate(v))
			return
		}
		arg.BeforeCreatedAt, arg.BeforeID = &t, &id
	}
	page, err := h.r.Queries().ListEvalRuns(req.Context(), arg)
	if err != nil {
		h.fail(w, req, err)
		return
	}
	resp := runsPage{Runs: page}
	if len(page) > limit {
		resp.Runs = page[:limit]
		next.Set("before", encodeCursor(page[limit-1]))
		resp.Next = h.link("/runs", next)
	}
	h.writeJSON(w, http.StatusOK, resp)
}

type studentMetricJSON struct {
	Name       string    `json:"name"`
	Value      float64   `json:"value"`
	RecordedAt time.Time `json:"recorded_at"`
}

type studentJSON struct {
	ID                 int64               `json:"id"`
	UserID             int64               `json:"user_id"`
	StudentID          string              `json:"student_id"`
	Cohort             *string             `json:"cohort"`
	CreatedAt          time.Time           `json:"created_at"`
	PerformanceMetrics []studentMetricJSON `json:"performance_metrics"`
}

func (h *Handler) getStudent(w http.ResponseWriter, req *http.Request) {
	st, err := h.r.Queries().GetStudentWithMetrics(req.Context(), req.PathValue("student_id"))
	if err != nil {
		h.fail(w, req, err)
		return
	}
	resp := studentJSON{ID: st.ID, UserID: st.UserID, StudentID: st.StudentID, Cohort: st.Cohort, CreatedAt: st.CreatedAt,
		PerformanceMetrics: make([]studentMetricJSON, len(st.MetricNames))}
	for i := range resp.PerformanceMetrics {
		resp.PerformanceMetrics[i] = studentMetricJSON{Name: st.MetricNames[i], Value: st.MetricValues[i], RecordedAt: st.MetricRecordedAt[i]}
	}
	h.writeJSON(w, http.StatusOK, resp)
}

// healthz answers 200 when the database answers within 2 s, else 503
// saying why: unreachable, the pool busy for its timeout, or no answer in
// time.
func (h *Handler) healthz(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if err := h.r.Ping(ctx); err != nil {
		if _, _, _, ok := unavailable(err); ok || req.Context().Err() != nil {
			h.fail(w, req, err)
			return
		}
		// The server answered, with an error (authentication, a missing
		// database): not a matter of retrying soon, and not "unreachable".
		h.log.ErrorContext(req.Context(), "httpapi: health check failed", "err", err)
		h.writeError(w, http.StatusServiceUnavailable, Error{Code: CodeDatabaseError,
			Message: "the database answered the health check with an error; see the service's log"})
		return
	}
	h.writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "ok"})
}

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

// Error is the body of every error answer:
//
//	{"code": "invalid_run", "error": "invalid eval run: fix the fields listed in problems",
//	 "problems": [{"field": "results.score", "row": 3, "message": "is NaN; it must be a finite number"}]}
//
// Code is one of the Code constants, for programs; Message is for people.
// Problems comes with invalid_run, Differences with run_conflict.
type Error struct {
	Code        string    `json:"code"`
	Message     string    `json:"error"`
	Problems    []Problem `json:"problems,omitempty"`
	Differences []string  `json:"differences,omitempty"`
}

// Problem is one thing wrong with a posted run: the field, the row in
// results or metrics when the field is a row's, and what to do.
type Problem struct {
	Field   string `json:"field"`
	Row     *int   `json:"row,omitempty"`
	Message string `json:"message"`
}

// The error codes.
const (
	CodeInvalidBody      = "invalid_body"      // 400: the body is not one JSON object of the documented shape
	CodeInvalidRun       = "invalid_run"       // 400: the run breaks a rule; see problems
	CodeInvalidParameter = "invalid_parameter" // 400: a path or query value is wrong
	CodeNotFound         = "not_found"         // 404
	CodeMethodNotAllowed = "method_not_allowed"
	CodeRunConflict      = "run_conflict"   // 409: the id was recorded with other content; see differences
	CodeConflict         = "conflict"       // 409: another unique constraint
	CodeBodyTooLarge     = "body_too_large" // 413
	CodeUnreachable      = "database_unreachable"
	CodePoolTimeout      = "pool_timeout"     // 503: every connection stayed busy for the pool timeout
	CodeTimeout          = "database_timeout" // 503: the database did not answer in time
	CodeDatabaseError    = "database_error"   // 503 from /healthz: the server answered with an error
	CodeInternal         = "internal"         // 500
)

// Retry-After values, in seconds: a busy pool frees up quickly; a server
// that is down or restarting takes longer.
const (
	retryBusy        = 1
	retryUnreachable = 5
)

func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Warn("httpapi: write response", "err", err)
	}
}

func (h *Handler) writeError(w http.ResponseWriter, status int, e Error) {
	h.writeJSON(w, status, e)
}

func (h *Handler) badParam(w http.ResponseWriter, format string, args ...any) {
	h.writeError(w, http.StatusBadRequest, Error{Code: CodeInvalidParameter, Message: fmt.Sprintf(format, args...)})
}

// unavailable classifies an error as the database's being unavailable:
// the code and Retry-After seconds, or ok false.
func unavailable(err error) (code, message string, retry int, ok bool) {
	switch {
	case errors.Is(err, repo.ErrPoolTimeout):
		return CodePoolTimeout, "the database is busy: every connection stayed in use for the pool timeout; retry shortly", retryBusy, true
	case errors.Is(err, repo.ErrUnreachable):
		return CodeUnreachable, "the database is unreachable; retry later", retryUnreachable, true
	case errors.Is(err, repo.ErrConnClosed):
		return CodeUnreachable, "the connection to the database was lost; retry later", retryUnreachable, true
	case errors.Is(err, txn.ErrCommitUnknown):
		return CodeUnreachable, "the connection to the database was lost during COMMIT; retry with the same id (it is recorded once)", retryUnreachable, true
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout, "the database did not answer in time; retry shortly", retryBusy, true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "57P03" || pgErr.Code == "53300") {
		// cannot_connect_now (starting up, shutting down), too_many_connections
		return CodeUnreachable, "the database does not accept connections right now; retry later", retryUnreachable, true
	}
	return "", "", 0, false
}

// fail answers err, mapping evaldb's errors to statuses. Only client errors
// echo details; server-side failures are logged and answered with a generic
// message, so nothing internal (hosts, SQL) leaks.
func (h *Handler) fail(w http.ResponseWriter, req *http.Request, err error) {
	var (
		verr     *txn.ValidationError
		conflict *repo.ConflictError
		runConf  *txn.RunConflictError
		tooBig   *http.MaxBytesError
		bodyErr  *bodyError
		pgErr    *pgconn.PgError
	)
	if code, msg, retry, ok := unavailable(err); ok && req.Context().Err() == nil {
		h.log.WarnContext(req.Context(), "httpapi: database unavailable", "method", req.Method, "path", req.URL.Path, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		h.writeError(w, http.StatusServiceUnavailable, Error{Code: code, Message: msg})
		return
	}
	switch {
	case errors.As(err, &tooBig):
		h.writeError(w, http.StatusRequestEntityTooLarge, Error{Code: CodeBodyTooLarge, Message: fmt.Sprintf(
			"the request body exceeds %d bytes: split the run, or raise the limit (evaldb serve -max-body)", tooBig.Limit)})
	case errors.As(err, &bodyErr):
		h.writeError(w, http.StatusBadRequest, Error{Code: CodeInvalidBody, Message: "invalid JSON body: " + bodyErr.Error()})
	case errors.As(err, &verr):
		body := Error{Code: CodeInvalidRun, Message: "invalid eval run: fix the fields listed in problems"}
		for _, p := range verr.Problems {
			pj := Problem{Field: p.Field, Message: p.Message}
			if p.Row >= 0 {
				row := p.Row
				pj.Row = &row
			}
			body.Problems = append(body.Problems, pj)
		}
		h.writeError(w, http.StatusBadRequest, body)
	case errors.Is(err, repo.ErrNotFound):
		h.writeError(w, http.StatusNotFound, Error{Code: CodeNotFound, Message: "not found"})
	case errors.As(err, &runConf):
		h.writeError(w, http.StatusConflict, Error{Code: CodeRunConflict,
			Message:     "a run with this id was already recorded with different content; use a new id for a different run",
			Differences: runConf.Differences})
	case errors.Is(err, txn.ErrRunConflict):
		h.writeError(w, http.StatusConflict, Error{Code: CodeRunConflict,
			Message: "a run with this id was already recorded with different content; use a new id for a different run"})
	case errors.As(err, &conflict):
		h.writeError(w, http.StatusConflict, Error{Code: CodeConflict, Message: "conflict on " + conflict.Constraint})
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22"):
		// A data exception (class 22) is the client's input that the server
		// refused, e.g. a NUL byte or invalid UTF-8 in a path or query value.
		h.writeError(w, http.StatusBadRequest, Error{Code: CodeInvalidParameter, Message: "invalid input: " + pgErr.Message})
	case req.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		h.log.ErrorContext(req.Context(), "httpapi: request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		h.writeError(w, http.StatusInternalServerError, Error{Code: CodeInternal, Message: "internal error"})
	}
}

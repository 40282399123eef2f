package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pashagolub/pgxmock/v5"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
)

// setupServer returns a test server over a real, migrated database.
func setupServer(t *testing.T) (*httptest.Server, *repo.Repo) {
	t.Helper()
	r, err := repo.Open(context.Background(), &repo.Config{URL: dbtest.URL(t), Env: repo.Test})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ts := httptest.NewServer(newServer(r, nil, 1<<20).routes())
	t.Cleanup(ts.Close)
	return ts, r
}

func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", method, url, err, raw)
		}
	}
	return resp.StatusCode, m
}

func runJSON(id uuid.UUID, results int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%q,"name":"nightly","model":"gpt-4o","dataset":"gsm8k","status":"completed",
		"started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:05:00Z","config":{"t":0.2},"results":[`, id)
	for i := range results {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"case_id":"c%03d","input":"q%d","expected":"a","output":"a","score":%g,"passed":%t,"latency_ms":%d,"prompt_tokens":10,"completion_tokens":2}`,
			i, i, float64(i%4)/4, i%4 >= 2, 100+i)
	}
	b.WriteString(`],"metrics":[{"name":"accuracy","value":0.5}]}`)
	return b.String()
}

// TestServeRoundTrip records a run over HTTP and reads it back: the run with
// its summary, its results page by page, and a student.
func TestServeRoundTrip(t *testing.T) {
	t.Parallel()
	ts, r := setupServer(t)
	id := uuid.New()

	code, body := do(t, "POST", ts.URL+"/runs", runJSON(id, 7))
	if code != http.StatusCreated {
		t.Fatalf("POST /runs = %d %v, want 201", code, body)
	}
	if diff := cmp.Diff(map[string]any{"id": id.String(), "results": 7.0, "metrics": 1.0, "already_recorded": false},
		map[string]any{"id": body["id"], "results": body["results"], "metrics": body["metrics"], "already_recorded": body["already_recorded"]}); diff != "" {
		t.Errorf("POST /runs body mismatch (-want +got):\n%s", diff)
	}
	// The same run again is found, not duplicated.
	if code, body := do(t, "POST", ts.URL+"/runs", runJSON(id, 7)); code != http.StatusOK || body["already_recorded"] != true {
		t.Errorf("second POST of the same run = %d %v, want 200 already_recorded", code, body)
	}

	code, body = do(t, "GET", ts.URL+"/runs/"+id.String(), "")
	if code != http.StatusOK {
		t.Fatalf("GET run = %d %v", code, body)
	}
	sum := body["summary"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"result_count": 7.0, "passed_count": 3.0}, map[string]any{
		"result_count": sum["result_count"], "passed_count": sum["passed_count"]}); diff != "" {
		t.Errorf("summary mismatch (-want +got):\n%s", diff)
	}

	var seen []string
	next := "/runs/" + id.String() + "/results?limit=3"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		code, body = do(t, "GET", ts.URL+next, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d %v", next, code, body)
		}
		for _, r := range body["results"].([]any) {
			seen = append(seen, r.(map[string]any)["case_id"].(string))
		}
		next, _ = body["next"].(string)
	}
	if diff := cmp.Diff([]string{"c000", "c001", "c002", "c003", "c004", "c005", "c006"}, seen); diff != "" {
		t.Errorf("paged case ids mismatch (-want +got):\n%s", diff)
	}
	code, body = do(t, "GET", ts.URL+"/runs/"+id.String()+"/results?failed=true", "")
	if got := len(body["results"].([]any)); code != http.StatusOK || got != 4 {
		t.Errorf("failed results = %d %d, want 200 and 4", code, got)
	}

	q := r.Queries()
	u, err := q.CreateUser(context.Background(), gen.CreateUserParams{Email: "ada@example.edu", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.CreateStudentProfile(context.Background(), gen.CreateStudentProfileParams{UserID: u.ID, StudentID: "S-1"}); err != nil {
		t.Fatal(err)
	}
	code, body = do(t, "GET", ts.URL+"/students/S-1", "")
	if code != http.StatusOK || body["student_id"] != "S-1" || len(body["performance_metrics"].([]any)) != 0 {
		t.Errorf("GET student = %d %v, want S-1 with no metrics", code, body)
	}

	if code, body := do(t, "GET", ts.URL+"/healthz", ""); code != http.StatusOK {
		t.Errorf("healthz = %d %v", code, body)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"evaldb_", `GetEvalRunSummary`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestServeClientErrors checks the 4xx answers: each says what is wrong.
func TestServeClientErrors(t *testing.T) {
	t.Parallel()
	ts, _ := setupServer(t)
	id := uuid.New()
	bad := strings.Replace(runJSON(id, 3), `"status":"completed"`, `"status":"done"`, 1)
	bad = strings.Replace(bad, `"case_id":"c002"`, `"case_id":"c001"`, 1)
	code, body := do(t, "POST", ts.URL+"/runs", bad)
	if code != http.StatusBadRequest {
		t.Fatalf("POST invalid run = %d %v, want 400", code, body)
	}
	problems, _ := body["problems"].([]any)
	var fields []string
	for _, p := range problems {
		pm := p.(map[string]any)
		f := pm["field"].(string)
		if row, ok := pm["row"]; ok {
			f += fmt.Sprintf("[%v]", row)
		}
		fields = append(fields, f)
	}
	if diff := cmp.Diff([]string{"status", "results.case_id[2]"}, fields); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s\n%v", diff, body)
	}
	// Nothing of the rejected run was written.
	if code, _ := do(t, "GET", ts.URL+"/runs/"+id.String(), ""); code != http.StatusNotFound {
		t.Errorf("GET rejected run = %d, want 404", code)
	}

	for _, tc := range []struct{ name, method, path, body, want string }{
		{"UnknownField", "POST", "/runs", `{"nmae":"x"}`, `unknown field "nmae"`},
		{"NotJSON", "POST", "/runs", `{`, "invalid JSON body"},
		{"BadRunID", "GET", "/runs/not-a-uuid", "", "is not a UUID"},
		{"BadLimit", "GET", "/runs/" + id.String() + "/results?limit=0", "", "limit"},
		{"MissingRunResults", "GET", "/runs/" + id.String() + "/results", "", "not found"},
		{"MissingStudent", "GET", "/students/nobody", "", "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, ts.URL+tc.path, tc.body)
			if code < 400 || code > 499 || !strings.Contains(fmt.Sprint(body["error"]), tc.want) {
				t.Errorf("%s %s = %d %v, want 4xx mentioning %q", tc.method, tc.path, code, body, tc.want)
			}
		})
	}

	big := httptest.NewServer(newServer(mustMockRepo(t), nil, 64).routes())
	defer big.Close()
	if code, body := do(t, "POST", big.URL+"/runs", runJSON(id, 3)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body = %d %v, want 413", code, body)
	}
}

func mustMockRepo(t *testing.T) *repo.Repo {
	t.Helper()
	mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mock.Close)
	r, err := repo.New(mock, &repo.Config{DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestServeServerErrors drives the error paths with pgxmock: a busy pool is
// a 503 with Retry-After, an unexpected failure a 500 that says nothing
// internal, a unique violation a 409.
func TestServeServerErrors(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	cases := []struct {
		name       string
		err        error
		wantStatus int
		wantError  string
	}{
		{"PoolTimeout", &repo.PoolTimeoutError{MaxConns: 10, Timeout: 20e9}, http.StatusServiceUnavailable, "busy"},
		{"Unexpected", errors.New("relation secret_internal_table does not exist at 10.1.2.3"), http.StatusInternalServerError, "internal error"},
		{"Conflict", &pgconn.PgError{Code: "23505", ConstraintName: "eval_runs_pkey"}, http.StatusConflict, "eval_runs_pkey"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherEqual))
			if err != nil {
				t.Fatal(err)
			}
			defer mock.Close()
			mock.ExpectQuery(gen.GetEvalRun).WithArgs(id).WillReturnError(tc.err)
			r, err := repo.New(mock, &repo.Config{DisableCache: true})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			newServer(r, nil, 1<<20).routes().ServeHTTP(rec, httptest.NewRequest("GET", "/runs/"+id.String(), nil))
			if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantError) {
				t.Errorf("status %d body %s, want %d mentioning %q", rec.Code, rec.Body, tc.wantStatus, tc.wantError)
			}
			if strings.Contains(rec.Body.String(), "10.1.2.3") || strings.Contains(rec.Body.String(), "secret_internal_table") {
				t.Errorf("response leaks internals: %s", rec.Body)
			}
			if tc.wantStatus == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if err := mock.ExpectationsWereMet(); err != nil {
				t.Error(err)
			}
		})
	}
}

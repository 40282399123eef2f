package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
)

// hostileServer is evaldb serve's handler on a fresh database, with its
// logger writing into the returned buffer.
func hostileServer(t *testing.T, maxBody int64) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", testSecret)
	r, err := repo.Open(context.Background(), &repo.Config{URL: u.String() + "&connection_limit=4", Env: repo.Development, Logger: logger})
	if err != nil {
		t.Fatalf("repo.Open: %v", err)
	}
	t.Cleanup(r.Close)
	return newServer(r, logger, maxBody).routes(), &logs
}

func hdo(t *testing.T, h http.Handler, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req) // a panic fails the test
	return w.Code, w.Body.String()
}

// TestServeHostileInput sends hostile input to evaldb serve's handler:
// injection strings are stored and served back verbatim; NUL bytes, NaN,
// infinities, out-of-range numbers, unknown fields, bodies over the limit,
// malformed ids and hostile path or query values are refused with a 4xx
// whose body says what is wrong; nothing answers 500 and nothing panics.
func TestServeHostileInput(t *testing.T) {
	t.Parallel()
	h, logs := hostileServer(t, 1<<20)

	inj := `'; DROP TABLE eval_runs; -- " \ $1 ` + "\U0001F600"
	id := uuid.New()
	body, _ := json.Marshal(map[string]any{
		"id": id, "name": inj, "model": inj, "dataset": inj, "config": map[string]string{"q": inj},
		"results": []map[string]any{{"case_id": inj, "input": inj, "expected": inj, "output": inj, "score": 0.5, "error": inj}},
		"metrics": []map[string]any{{"name": inj, "value": 1}},
	})
	if code, resp := hdo(t, h, "POST", "/runs", bytes.NewReader(body)); code != http.StatusCreated {
		t.Fatalf("POST /runs with injection strings: %d %s, want 201", code, resp)
	}
	code, resp := hdo(t, h, "GET", "/runs/"+id.String(), nil)
	var got struct {
		Run struct{ Name, Model, Dataset string }
	}
	if err := json.Unmarshal([]byte(resp), &got); code != 200 || err != nil {
		t.Fatalf("GET /runs/%s: %d %s (%v)", id, code, resp, err)
	}
	if diff := cmp.Diff([]string{inj, inj, inj}, []string{got.Run.Name, got.Run.Model, got.Run.Dataset}); diff != "" {
		t.Errorf("stored run fields mismatch (-want +got):\n%s", diff)
	}
	code, resp = hdo(t, h, "GET", "/runs/"+id.String()+"/results", nil)
	if code != 200 || !strings.Contains(resp, `"output":`+mustJSON(inj)) {
		t.Errorf("GET results: %d %s, want the output served verbatim", code, resp)
	}

	run := func(result string) string {
		return `{"name":"n","model":"m","dataset":"d","results":[` + result + `],"metrics":[{"name":"x","value":1}]}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		says                     string // the response body must contain it
	}{
		{"NULInName", "POST", "/runs", `{"name":"a\u0000b","model":"m","dataset":"d"}`, 400, `"field":"name"`},
		{"NULInOutput", "POST", "/runs", run(`{"case_id":"c","output":"\u0000"}`), 400, `"field":"results.output"`},
		{"NULInConfig", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","config":{"k":"\u0000"}}`, 400, `"field":"config"`},
		{"NaNScore", "POST", "/runs", run(`{"case_id":"c","score":NaN}`), 400, "invalid JSON"},
		{"InfinityScore", "POST", "/runs", run(`{"case_id":"c","score":Infinity}`), 400, "invalid JSON"},
		{"OverflowScore", "POST", "/runs", run(`{"case_id":"c","score":1e400}`), 400, "invalid JSON"},
		{"OverflowLatency", "POST", "/runs", run(`{"case_id":"c","latency_ms":99999999999}`), 400, "invalid JSON"},
		{"NegativeTokens", "POST", "/runs", run(`{"case_id":"c","prompt_tokens":-1}`), 400, `"field":"results.prompt_tokens"`},
		{"UnknownStatus", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","status":"'; DROP TABLE x; --"}`, 400, `"field":"status"`},
		{"UnknownField", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","is_admin":true}`, 400, "unknown field"},
		{"NotJSON", "POST", "/runs", "\xff\xfe\x00", 400, "invalid JSON"},
		{"Empty", "POST", "/runs", "", 400, "invalid JSON"},
		{"TooBig", "POST", "/runs", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "exceeds"},
		{"DuplicateCases", "POST", "/runs", run(`{"case_id":"c"},{"case_id":"c"}`), 400, `"field":"results.case_id"`},
		{"BadRunID", "GET", "/runs/'%3B%20DROP%20TABLE%20eval_runs", "", 400, "not a UUID"},
		{"NULRunID", "GET", "/runs/%00", "", 400, "not a UUID"},
		{"UnknownRun", "GET", "/runs/" + uuid.NewString(), "", 404, "not found"},
		{"InjectionStudent", "GET", "/students/'%20OR%201=1%20--", "", 404, "not found"},
		{"NULStudent", "GET", "/students/a%00b", "", 400, "invalid"},
		{"InvalidUTF8Student", "GET", "/students/%FF%FE", "", 400, "invalid"},
		{"NULAfter", "GET", "/runs/" + id.String() + "/results?after=%00", "", 400, "invalid"},
		{"InvalidUTF8After", "GET", "/runs/" + id.String() + "/results?after=%FF", "", 400, "invalid"},
		{"HugeLimit", "GET", "/runs/" + id.String() + "/results?limit=99999999999999999999", "", 400, "limit"},
		{"NegativeLimit", "GET", "/runs/" + id.String() + "/results?limit=-1", "", 400, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := hdo(t, h, tc.method, tc.path, strings.NewReader(tc.body))
			if code != tc.want || !strings.Contains(resp, tc.says) {
				t.Errorf("%s %s: %d %.300s; want %d with %q", tc.method, tc.path, code, resp, tc.want, tc.says)
			}
		})
	}
	scanSecret(t, "serve log", logs.String())
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestServeLargestRun posts a run of 100,000 results (the limit) and one
// over it.
func TestServeLargestRun(t *testing.T) {
	t.Parallel()
	h, logs := hostileServer(t, 64<<20)
	build := func(n int) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"id":%q,"name":"big","model":"m","dataset":"d","results":[`, uuid.NewString())
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"case_id":"c%06d","score":0.5,"passed":true}`, i)
		}
		b.WriteString(`],"metrics":[]}`)
		return b.Bytes()
	}
	if code, resp := hdo(t, h, "POST", "/runs", bytes.NewReader(build(100_000))); code != http.StatusCreated || !strings.Contains(resp, `"results":100000`) {
		t.Errorf("POST /runs with 100,000 results: %d %.300s, want 201 with 100000 results", code, resp)
	}
	if code, resp := hdo(t, h, "POST", "/runs", bytes.NewReader(build(100_001))); code != http.StatusBadRequest || !strings.Contains(resp, `"field":"results"`) {
		t.Errorf("POST /runs with 100,001 results: %d %.300s, want 400 naming results", code, resp)
	}
	scanSecret(t, "serve log", logs.String())
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/repo"
)

// testSecret is the password the tests put into every URL; the throwaway
// cluster trusts every local connection, so any password works.
const testSecret = "Http/S3cret!pw-41cd"

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// realHandler is the service over a fresh, migrated database, with its
// logger writing into the returned buffer.
func realHandler(t *testing.T, o *Options) (*Handler, *repo.Repo, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", testSecret)
	r, err := repo.Open(context.Background(), &repo.Config{URL: u.String() + "&connection_limit=4", Env: repo.Test, Logger: logger})
	if err != nil {
		t.Fatalf("repo.Open: %v", err)
	}
	t.Cleanup(r.Close)
	if o == nil {
		o = &Options{}
	}
	o.Logger = logger
	return New(r, o), r, &logs
}

// scanSecret fails the test when text holds the password.
func scanSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, f := range []string{testSecret, url.QueryEscape(testSecret), "S3cret!pw-41cd"} {
		if i := strings.Index(text, f); i >= 0 {
			t.Errorf("the password appears in %s: …%s…", where, text[max(0, i-80):min(len(text), i+80)])
			return
		}
	}
}

// failing is an executor on which every statement fails with err: the
// database's failures as the service meets them, without a database.
type failing struct{ err error }

func (f failing) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, f.err
}
func (f failing) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, f.err }
func (f failing) QueryRow(context.Context, string, ...any) pgx.Row        { return failingRow(f) }
func (f failing) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, f.err
}
func (f failing) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { return nil }
func (f failing) Begin(context.Context) (pgx.Tx, error)                  { return nil, f.err }
func (f failing) Ping(context.Context) error                             { return f.err }

type failingRow failing

func (f failingRow) Scan(...any) error { return f.err }

var errUnexpected = errors.New("relation secret_internal_table does not exist at 10.1.2.3")

func failingRepo(t *testing.T, err error) *repo.Repo {
	t.Helper()
	r, rerr := repo.New(failing{err}, &repo.Config{DisableCache: true})
	if rerr != nil {
		t.Fatal(rerr)
	}
	return r
}

func runBodyJSON(id uuid.UUID, caseIDs ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%q,"name":"nightly","model":"gpt-4o","dataset":"gsm8k","status":"completed",
		"started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:05:00Z","config":{"t":0.2},"results":[`, id)
	for i, c := range caseIDs {
		if i > 0 {
			b.WriteString(",")
		}
		cj, _ := json.Marshal(c)
		fmt.Fprintf(&b, `{"case_id":%s,"input":"q%d","expected":"a","output":"a","score":%g,"passed":%t,"latency_ms":%d,"prompt_tokens":10,"completion_tokens":2}`,
			cj, i, float64(i%4)/4, i%4 >= 2, 100+i)
	}
	b.WriteString(`],"metrics":[{"name":"accuracy","value":0.5}]}`)
	return []byte(b.String())
}

func caseIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%03d", i)
	}
	return ids
}

// TestRoundTrip records a run and reads it back: POST answers the
// representation GET answers, with Location; the results page by page; a
// student; health and metrics.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	h, r, logs := realHandler(t, nil)
	id := uuid.New()

	post := call(t, h, "POST", "/runs", runBodyJSON(id, caseIDs(7)...))
	if post.Code != http.StatusCreated {
		t.Fatalf("POST /runs = %d %s, want 201", post.Code, post.Body)
	}
	loc := post.Header.Get("Location")
	if loc != "/runs/"+id.String() {
		t.Errorf("Location = %q, want /runs/%s", loc, id)
	}
	got := call(t, h, "GET", loc, nil)
	if got.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", loc, got.Code, got.Body)
	}
	if diff := cmp.Diff(got.JSON(t), post.JSON(t)); diff != "" {
		t.Errorf("POST answers another representation than GET (-get +post):\n%s", diff)
	}
	sum := got.JSON(t)["summary"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"result_count": 7.0, "passed_count": 3.0}, map[string]any{
		"result_count": sum["result_count"], "passed_count": sum["passed_count"]}); diff != "" {
		t.Errorf("summary mismatch (-want +got):\n%s", diff)
	}
	// The same run again is found, not duplicated: 200 with the same body.
	again := call(t, h, "POST", "/runs", runBodyJSON(id, caseIDs(7)...))
	if again.Code != http.StatusOK || again.Header.Get("Location") != loc {
		t.Errorf("second POST of the same run = %d (Location %q), want 200 at %s", again.Code, again.Header.Get("Location"), loc)
	}
	if diff := cmp.Diff(got.JSON(t), again.JSON(t)); diff != "" {
		t.Errorf("repeated POST answers another representation (-get +post):\n%s", diff)
	}

	if diff := cmp.Diff(caseIDs(7), followResults(t, h, "/runs/"+id.String()+"/results?limit=3")); diff != "" {
		t.Errorf("paged case ids mismatch (-want +got):\n%s", diff)
	}
	failed := call(t, h, "GET", "/runs/"+id.String()+"/results?failed=true", nil)
	if n := len(failed.JSON(t)["results"].([]any)); failed.Code != 200 || n != 4 {
		t.Errorf("failed results = %d %d, want 200 and 4", failed.Code, n)
	}

	q := r.Queries()
	u, err := q.CreateUser(context.Background(), gen.CreateUserParams{Email: "ada@example.edu", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.CreateStudentProfile(context.Background(), gen.CreateStudentProfileParams{UserID: u.ID, StudentID: "S-1"}); err != nil {
		t.Fatal(err)
	}
	st := call(t, h, "GET", "/students/S-1", nil)
	if m := st.JSON(t); st.Code != 200 || m["student_id"] != "S-1" || len(m["performance_metrics"].([]any)) != 0 {
		t.Errorf("GET student = %d %s, want S-1 with no metrics", st.Code, st.Body)
	}
	if res := call(t, h, "GET", "/healthz", nil); res.Code != 200 {
		t.Errorf("healthz = %d %s", res.Code, res.Body)
	}
	metrics := call(t, h, "GET", "/metrics", nil)
	for _, want := range []string{"evaldb_", "GetEvalRunSummary"} {
		if !bytes.Contains(metrics.Body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	scanSecret(t, "service log", logs.String())
}

// followResults follows next links from first and returns every case id
// seen, in order; it fails on a page loop.
func followResults(t *testing.T, h http.Handler, first string) []string {
	t.Helper()
	var seen []string
	next := first
	for pages := 0; next != ""; pages++ {
		if pages > 200 {
			t.Fatal("pagination does not end")
		}
		res := call(t, h, "GET", next, nil)
		if res.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", next, res.Code, res.Body)
		}
		var page resultsPage
		if err := json.Unmarshal(res.Body, &page); err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Results {
			seen = append(seen, r.CaseID)
		}
		next = page.Next
	}
	return seen
}

// hostileCaseIDs are case ids holding every byte that means something in a
// URL, and some that mean something elsewhere, in PostgreSQL's byte order
// (the throwaway cluster's collation is C).
var hostileCaseIDs = []string{
	" leading space", "#fragment", "%", "%25", "%zz", "&", "&after=zzz", "+plus+", "/slash/", "100%", "=", "?q=1",
	"a b", "a#b", "a&b", "a+b", "a;b", "back\\slash", "quote\"", "tab\tx", "\u00e9t\u00e9", "\u65e5\u672c", "\U0001F600",
}

// TestNextLinksVisitEveryResultOnce pages through a run whose case ids hold
// bytes that a query string gives meaning to, at every page size, and
// checks that following next visits every result exactly once, in order.
func TestNextLinksVisitEveryResultOnce(t *testing.T) {
	t.Parallel()
	h, _, _ := realHandler(t, nil)
	id := uuid.New()
	if res := call(t, h, "POST", "/runs", runBodyJSON(id, hostileCaseIDs...)); res.Code != http.StatusCreated {
		t.Fatalf("POST = %d %s", res.Code, res.Body)
	}
	for _, size := range []int{1, 2, 3, 5, len(hostileCaseIDs) - 1, len(hostileCaseIDs), 100} {
		got := followResults(t, h, fmt.Sprintf("/runs/%s/results?limit=%d", id, size))
		if diff := cmp.Diff(hostileCaseIDs, got); diff != "" {
			t.Errorf("limit=%d: case ids visited mismatch (-want +got):\n%s", size, diff)
		}
	}
	// The failed filter survives the links.
	var wantFailed []string
	for i, c := range hostileCaseIDs {
		if i%4 < 2 {
			wantFailed = append(wantFailed, c)
		}
	}
	if diff := cmp.Diff(wantFailed, followResults(t, h, "/runs/"+id.String()+"/results?limit=2&failed=true")); diff != "" {
		t.Errorf("failed=true: case ids visited mismatch (-want +got):\n%s", diff)
	}
}

// TestListRuns pages through GET /runs, newest first, with filters whose
// values need escaping, and checks every run is seen once.
func TestListRuns(t *testing.T) {
	t.Parallel()
	h, _, _ := realHandler(t, nil)
	models := []string{"a&b c#d", "m+1%"}
	var all []string
	byModel := map[string][]string{}
	for i := range 7 {
		id := uuid.Must(uuid.NewV7())
		body := strings.Replace(string(runBodyJSON(id, "c")), `"model":"gpt-4o"`, fmt.Sprintf(`"model":%q`, models[i%2]), 1)
		if i == 3 {
			body = strings.Replace(body, `"status":"completed"`, `"status":"failed"`, 1)
		}
		if res := call(t, h, "POST", "/runs", []byte(body)); res.Code != http.StatusCreated {
			t.Fatalf("POST = %d %s", res.Code, res.Body)
		}
		all = append([]string{id.String()}, all...) // newest first
		byModel[models[i%2]] = append([]string{id.String()}, byModel[models[i%2]]...)
	}
	follow := func(first string) []string {
		var ids []string
		for next, pages := first, 0; next != ""; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			res := call(t, h, "GET", next, nil)
			if res.Code != 200 {
				t.Fatalf("GET %s = %d %s", next, res.Code, res.Body)
			}
			var page runsPage
			if err := json.Unmarshal(res.Body, &page); err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Runs {
				ids = append(ids, r.ID.String())
			}
			next = page.Next
		}
		return ids
	}
	// The runs were recorded one by one, so created_at orders them.
	for _, size := range []int{1, 2, 7, 50} {
		if diff := cmp.Diff(all, follow(fmt.Sprintf("/runs?limit=%d", size))); diff != "" {
			t.Errorf("limit=%d mismatch (-want +got):\n%s", size, diff)
		}
	}
	for _, m := range models {
		if diff := cmp.Diff(byModel[m], follow("/runs?limit=1&model="+url.QueryEscape(m))); diff != "" {
			t.Errorf("model=%q mismatch (-want +got):\n%s", m, diff)
		}
	}
	if diff := cmp.Diff([]string{all[3]}, follow("/runs?status=failed&limit=1")); diff != "" {
		t.Errorf("status=failed mismatch (-want +got):\n%s", diff)
	}
	for _, target := range []string{"/runs?status=done", "/runs?before=nonsense", "/runs?limit=0", "/runs?limit=1001"} {
		if res := call(t, h, "GET", target, nil); res.Code != 400 || res.JSON(t)["code"] != CodeInvalidParameter {
			t.Errorf("GET %s = %d %s, want 400 invalid_parameter", target, res.Code, res.Body)
		}
	}
}

// TestConflictCarriesDifferences posts a run, then another with the same id
// and other content: the 409 names what differs.
func TestConflictCarriesDifferences(t *testing.T) {
	t.Parallel()
	h, _, _ := realHandler(t, nil)
	id := uuid.New()
	if res := call(t, h, "POST", "/runs", runBodyJSON(id, "a", "b")); res.Code != 201 {
		t.Fatalf("POST = %d %s", res.Code, res.Body)
	}
	changed := strings.Replace(string(runBodyJSON(id, "a", "b")), `"name":"nightly"`, `"name":"weekly"`, 1)
	changed = strings.Replace(changed, `{"name":"accuracy","value":0.5}`, `{"name":"accuracy","value":0.75}`, 1)
	res := call(t, h, "POST", "/runs", []byte(changed))
	var e Error
	if err := json.Unmarshal(res.Body, &e); err != nil || res.Code != http.StatusConflict || e.Code != CodeRunConflict {
		t.Fatalf("POST changed run = %d %s, want 409 run_conflict", res.Code, res.Body)
	}
	want := []string{`name: recorded "nightly", given "weekly"`, `metrics[0] ("accuracy"): recorded 0.5, given 0.75`}
	if diff := cmp.Diff(want, e.Differences); diff != "" {
		t.Errorf("differences mismatch (-want +got):\n%s", diff)
	}
}

// TestUnavailable: when the pool times out or the database is unreachable,
// every route that reads or writes answers 503 with Retry-After and says
// which; an unexpected failure is a 500 that says nothing internal.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	routes := []struct{ method, target string }{
		{"POST", "/runs"}, {"GET", "/runs"}, {"GET", "/runs/" + id}, {"GET", "/runs/" + id + "/results"},
		{"GET", "/students/S-1"}, {"GET", "/healthz"},
	}
	for _, tc := range []struct {
		name  string
		err   error
		code  int
		ecode string
		retry string
	}{
		{"PoolTimeout", &repo.PoolTimeoutError{MaxConns: 10, Timeout: 20e9}, 503, CodePoolTimeout, "1"},
		{"Unreachable", fmt.Errorf("%w: dial tcp 10.1.2.3:5432: connection refused", repo.ErrUnreachable), 503, CodeUnreachable, "5"},
		{"ShuttingDown", &pgconn.PgError{Code: "57P03", Message: "the database system is shutting down"}, 503, CodeUnreachable, "5"},
		{"Unexpected", errUnexpected, 500, CodeInternal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(failingRepo(t, tc.err), nil)
			for _, rt := range routes {
				var body []byte
				if rt.method == "POST" {
					body = runBodyJSON(uuid.New(), "a")
				}
				res := call(t, h, rt.method, rt.target, body)
				code, ecode := tc.code, tc.ecode
				if rt.target == "/healthz" && tc.code == 500 {
					code, ecode = 503, CodeDatabaseError
				}
				if res.Code != code || res.JSON(t)["code"] != ecode || res.Header.Get("Retry-After") != tc.retry {
					t.Errorf("%s %s = %d %s (Retry-After %q), want %d %s (Retry-After %q)", rt.method, rt.target,
						res.Code, res.Body, res.Header.Get("Retry-After"), code, ecode, tc.retry)
				}
				if bytes.Contains(res.Body, []byte("10.1.2.3")) || bytes.Contains(res.Body, []byte("secret_internal_table")) {
					t.Errorf("%s %s leaks internals: %s", rt.method, rt.target, res.Body)
				}
			}
		})
	}
	t.Run("OtherConflict", func(t *testing.T) {
		t.Parallel()
		h := New(failingRepo(t, &repo.ConflictError{Constraint: "eval_runs_name_key"}), nil)
		if res := call(t, h, "POST", "/runs", runBodyJSON(uuid.New(), "a")); res.Code != 409 || res.JSON(t)["code"] != CodeConflict {
			t.Errorf("POST on a conflict = %d %s, want 409 conflict", res.Code, res.Body)
		}
	})
}

// TestUnreachableServer stops a real server under a live Repo: /healthz
// and the routes then answer 503 database_unreachable with Retry-After.
func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	c, err := pgcluster.Start(t.Context(), pgcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	r, err := repo.Open(t.Context(), &repo.Config{URL: c.URL("postgres") + "&connect_timeout=2", Env: repo.Test, DisableListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := New(r, nil)
	if res := call(t, h, "GET", "/healthz", nil); res.Code != 200 {
		t.Fatalf("healthz before the stop = %d %s", res.Code, res.Body)
	}
	if err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/healthz", "/runs", "/runs/" + uuid.NewString()} {
		res := call(t, h, "GET", target, nil)
		if res.Code != 503 || res.JSON(t)["code"] != CodeUnreachable || res.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s with the server down = %d %s (Retry-After %q), want 503 database_unreachable with Retry-After",
				target, res.Code, res.Body, res.Header.Get("Retry-After"))
		}
	}
}

// TestUnknownRoutesAnswerJSON: 404 and 405 come in the error shape, 405
// with Allow.
func TestUnknownRoutesAnswerJSON(t *testing.T) {
	t.Parallel()
	h := New(failingRepo(t, errUnexpected), nil)
	for _, tc := range []struct {
		method, target string
		code           int
		allow          string
	}{
		{"GET", "/nowhere", 404, ""},
		{"GET", "/runs/a/b/c", 404, ""},
		{"DELETE", "/runs", 405, "GET, HEAD, POST"},
		{"PUT", "/runs/" + uuid.NewString(), 405, "GET, HEAD"},
		{"POST", "/healthz", 405, "GET, HEAD"},
	} {
		res := call(t, h, tc.method, tc.target, nil)
		wantCode := map[int]string{404: CodeNotFound, 405: CodeMethodNotAllowed}[tc.code]
		if res.Code != tc.code || res.JSON(t)["code"] != wantCode || res.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d %s (Allow %q), want %d %s (Allow %q)", tc.method, tc.target, res.Code, res.Body,
				res.Header.Get("Allow"), tc.code, wantCode, tc.allow)
		}
	}
}

// TestPrefix: mounted under a prefix, the links carry it.
func TestPrefix(t *testing.T) {
	t.Parallel()
	h, _, _ := realHandler(t, &Options{Prefix: "/evals/"})
	mux := http.NewServeMux()
	mux.Handle("/evals/", http.StripPrefix("/evals", h))
	id := uuid.New()
	res := call(t, h, "POST", "/runs", runBodyJSON(id, "a", "b"))
	if loc := res.Header.Get("Location"); loc != "/evals/runs/"+id.String() {
		t.Errorf("Location = %q, want /evals/runs/%s", loc, id)
	}
	page := call(t, h, "GET", "/runs/"+id.String()+"/results?limit=1", nil)
	next, _ := page.JSON(t)["next"].(string)
	if !strings.HasPrefix(next, "/evals/runs/") {
		t.Fatalf("next = %q, want it under /evals", next)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", next, nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"case_id":"b"`) {
		t.Errorf("following next through the mounting mux = %d %s", rec.Code, rec.Body.String())
	}
}

// panicking is an executor whose every statement panics, as a bug would.
type panicking struct{ failing }

func (panicking) QueryRow(context.Context, string, ...any) pgx.Row {
	panic("a bug holding postgres://u:" + testSecret + "@db/x")
}

// TestPanicAnswersJSON: a panic in a handler is a 500 in the error shape,
// logged with its stack but not its value.
func TestPanicAnswersJSON(t *testing.T) {
	t.Parallel()
	r, err := repo.New(panicking{}, &repo.Config{DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := New(r, &Options{Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil))})
	res := call(t, h, "GET", "/runs/"+uuid.NewString(), nil)
	if res.Code != 500 || res.JSON(t)["code"] != CodeInternal {
		t.Errorf("GET on a panicking executor = %d %s, want 500 internal", res.Code, res.Body)
	}
	if !strings.Contains(logs.String(), "handler panicked") {
		t.Errorf("the panic is not logged:\n%s", logs.String())
	}
	scanSecret(t, "service log", logs.String())
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/aah/evaldb/internal/dbtest"
)

// The OpenAPI document, loaded once with kin-openapi, and a router over it.
var (
	specOnce   sync.Once
	spec       *openapi3.T
	specRouter routers.Router
	specErr    error
)

func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		spec, specErr = loader.LoadFromData(openAPIDoc)
		if specErr != nil {
			return
		}
		if specErr = spec.Validate(context.Background()); specErr != nil {
			return
		}
		specRouter, specErr = gorillamux.NewRouter(spec)
	})
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return spec, specRouter
}

// seen records which documented responses (operation and status key) the
// tests have produced and checked, for TestMain's coverage check.
var seen sync.Map

func TestMain(m *testing.M) {
	os.Exit(dbtest.Run(m, func(code int) int {
		if code != 0 || flag.Lookup("test.run").Value.String() != "" || testing.Short() {
			return code // a partial run cannot cover every response
		}
		doc, _ := loadSpec(&testing.B{})
		var missing []string
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				for status := range op.Responses.Map() {
					if _, ok := seen.Load(op.OperationID + " " + status); !ok {
						missing = append(missing, fmt.Sprintf("%s %s → %s (%s)", method, path, status, op.OperationID))
					}
				}
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			fmt.Fprintf(os.Stderr, "FAIL: openapi.json documents responses that no test produced and checked:\n  %s\n"+
				"Add a test that makes each, or remove it from the document.\n", strings.Join(missing, "\n  "))
			return 1
		}
		n := 0
		seen.Range(func(any, any) bool { n++; return true })
		fmt.Printf("openapi.json: every one of the %d documented responses was produced and checked\n", n)
		return code
	}))
}

// response is one answer of the handler, checked against the document.
type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r *response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%.300s", err, r.Body)
	}
	return m
}

// call sends a request to h in-process and checks the answer against
// openapi.json with kin-openapi: the status must be documented for the
// operation, and the headers and body must match its schema. A 2xx answer's
// request must match the document too (what the service accepts is
// described). A request outside the document must get a 404 or 405 whose
// body is an Error.
func call(t *testing.T, h http.Handler, method, target string, body []byte) *response {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // a panic fails the test
	res := &response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	checkResponse(t, method, target, body, res)
	return res
}

func checkResponse(t *testing.T, method, target string, body []byte, res *response) {
	t.Helper()
	doc, router := loadSpec(t)
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		if res.Code != http.StatusNotFound && res.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: not in openapi.json (%v), but answered %d, not 404 or 405", method, target, err, res.Code)
		}
		checkErrorShape(t, doc, method, target, res)
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.Code, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(res.Body)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		t.Errorf("%s %s: the %d answer does not match openapi.json: %v\nbody: %.500s", method, target, res.Code, err, res.Body)
	}
	status := strconv.Itoa(res.Code)
	if route.Operation.Responses.Status(res.Code) == nil {
		status = "default"
	}
	seen.Store(route.Operation.OperationID+" "+status, true)
	// Bodies over 1 MiB (the 100,000-result run) test the limits, not the
	// shapes, which the smaller ones cover; validating them would take
	// minutes under the race detector.
	if res.Code >= 200 && res.Code < 300 && len(body) <= 1<<20 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s was accepted (%d), but the request does not match openapi.json: %v", method, target, res.Code, err)
		}
	}
	if res.Code >= 400 {
		checkErrorShape(t, doc, method, target, res)
	}
}

// checkErrorShape checks that an error answer is JSON of the Error schema.
func checkErrorShape(t *testing.T, doc *openapi3.T, method, target string, res *response) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: %d answered with Content-Type %q, want application/json", method, target, res.Code, ct)
	}
	var v any
	if err := json.Unmarshal(res.Body, &v); err != nil {
		t.Errorf("%s %s: %d body is not JSON: %v\n%.300s", method, target, res.Code, err, res.Body)
		return
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s %s: %d body is not an Error: %v\n%.300s", method, target, res.Code, err, res.Body)
	}
}

// TestOpenAPIDocument checks that openapi.json is a valid OpenAPI 3.1
// document, that GET /openapi.json serves it, and that it names every
// route the handler serves.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	h := New(failingRepo(t, errUnexpected), nil)
	res := call(t, h, "GET", "/openapi.json", nil)
	if res.Code != 200 || !bytes.Equal(res.Body, openAPIDoc) {
		t.Errorf("GET /openapi.json = %d, %d bytes; want 200 and the document (%d bytes)", res.Code, len(res.Body), len(openAPIDoc))
	}
	var paths []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			paths = append(paths, m+" "+p)
		}
	}
	sort.Strings(paths)
	want := []string{"GET /healthz", "GET /metrics", "GET /openapi.json", "GET /runs", "GET /runs/{id}", "GET /runs/{id}/results",
		"GET /students/{student_id}", "POST /runs"}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Errorf("openapi.json documents %v, the handler serves %v", paths, want)
	}
}

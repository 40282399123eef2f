package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestHostileInput sends hostile input: injection strings are stored and
// served back verbatim; NUL bytes, NaN, infinities, out-of-range numbers,
// unknown or repeated fields, trailing data, invalid UTF-8, lone surrogate
// escapes, bodies over the limit, malformed ids and hostile path or query
// values are refused with a 4xx whose body says what is wrong; nothing
// answers 500 and nothing panics.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	h, _, logs := realHandler(t, &Options{MaxBodyBytes: 1 << 20})

	inj := `'; DROP TABLE eval_runs; -- " \ $1 ` + "\U0001F600"
	id := uuid.New()
	body, _ := json.Marshal(map[string]any{
		"id": id, "name": inj, "model": inj, "dataset": inj, "config": map[string]string{"q": inj},
		"results": []map[string]any{{"case_id": inj, "input": inj, "expected": inj, "output": inj, "score": 0.5, "error": inj}},
		"metrics": []map[string]any{{"name": inj, "value": 1}},
	})
	if res := call(t, h, "POST", "/runs", body); res.Code != http.StatusCreated {
		t.Fatalf("POST /runs with injection strings: %d %s, want 201", res.Code, res.Body)
	}
	res := call(t, h, "GET", "/runs/"+id.String(), nil)
	var got struct {
		Run struct{ Name, Model, Dataset string }
	}
	if err := json.Unmarshal(res.Body, &got); res.Code != 200 || err != nil {
		t.Fatalf("GET /runs/%s: %d %s (%v)", id, res.Code, res.Body, err)
	}
	if diff := cmp.Diff([]string{inj, inj, inj}, []string{got.Run.Name, got.Run.Model, got.Run.Dataset}); diff != "" {
		t.Errorf("stored run fields mismatch (-want +got):\n%s", diff)
	}
	res = call(t, h, "GET", "/runs/"+id.String()+"/results", nil)
	if res.Code != 200 || !strings.Contains(string(res.Body), `"output":`+mustJSON(inj)) {
		t.Errorf("GET results: %d %s, want the output served verbatim", res.Code, res.Body)
	}
	// A surrogate pair escape is a character: stored as that character.
	pair := uuid.New()
	if res := call(t, h, "POST", "/runs", []byte(fmt.Sprintf(`{"id":%q,"name":"\ud83d\ude00","model":"m","dataset":"d"}`, pair))); res.Code != 201 ||
		!strings.Contains(string(res.Body), "\"name\":\"\U0001F600\"") {
		t.Errorf("POST with a surrogate pair escape = %d %s, want 201 storing U+1F600", res.Code, res.Body)
	}

	run := func(result string) string {
		return `{"name":"n","model":"m","dataset":"d","results":[` + result + `],"metrics":[{"name":"x","value":1}]}`
	}
	valid := `{"name":"n","model":"m","dataset":"d"}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		says                     string // the response body must contain it
	}{
		{"NULInName", "POST", "/runs", `{"name":"a\u0000b","model":"m","dataset":"d"}`, 400, `"field":"name"`},
		{"NULInOutput", "POST", "/runs", run(`{"case_id":"c","output":"\u0000"}`), 400, `"field":"results.output"`},
		{"NULInConfig", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","config":{"k":"\u0000"}}`, 400, `"field":"config"`},
		{"ConfigNumberOutOfRange", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","config":{"k":1e131072}}`, 400, `"field":"config"`},
		{"ConfigTooDeep", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","config":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, 400, "invalid JSON"},
		{"NaNScore", "POST", "/runs", run(`{"case_id":"c","score":NaN}`), 400, "invalid JSON"},
		{"InfinityScore", "POST", "/runs", run(`{"case_id":"c","score":Infinity}`), 400, "invalid JSON"},
		{"OverflowScore", "POST", "/runs", run(`{"case_id":"c","score":1e400}`), 400, "results[0].score"},
		{"OverflowLatency", "POST", "/runs", run(`{"case_id":"c","latency_ms":99999999999}`), 400, "results[0].latency_ms"},
		{"StringScore", "POST", "/runs", run(`{"case_id":"c","score":"high"}`), 400, "results[0].score"},
		{"NegativeTokens", "POST", "/runs", run(`{"case_id":"c","prompt_tokens":-1}`), 400, `"field":"results.prompt_tokens"`},
		{"UnknownStatus", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","status":"'; DROP TABLE x; --"}`, 400, `"field":"status"`},
		{"UnknownField", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","is_admin":true}`, 400, `unknown field \"is_admin\"`},
		{"UnknownResultField", "POST", "/runs", run(`{"case_id":"c","scroe":1}`), 400, `unknown field \"scroe\"`},
		{"RepeatedField", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","name":"again"}`, 400, `\"name\" appears twice`},
		{"TrailingGarbage", "POST", "/runs", valid + "garbage", 400, "data after the JSON object"},
		{"TwoObjects", "POST", "/runs", valid + valid, 400, "data after the JSON object"},
		{"TrailingComma", "POST", "/runs", valid + ",", 400, "data after the JSON object"},
		{"Array", "POST", "/runs", `[` + valid + `]`, 400, "must be a JSON object"},
		{"Null", "POST", "/runs", `null`, 400, "must be a JSON object"},
		{"ResultsNotArray", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","results":{}}`, 400, "results must be an array"},
		{"Truncated", "POST", "/runs", `{"name":"n","model":"m"`, 400, "ends before the JSON object does"},
		{"InvalidUTF8InName", "POST", "/runs", "{\"name\":\"a\xffb\",\"model\":\"m\",\"dataset\":\"d\"}", 400, "at byte 10: invalid UTF-8"},
		{"InvalidUTF8InCaseID", "POST", "/runs", run("{\"case_id\":\"c\xc3\"}"), 400, "invalid UTF-8"},
		{"OverlongUTF8", "POST", "/runs", "{\"name\":\"\xc0\xaf\",\"model\":\"m\",\"dataset\":\"d\"}", 400, "invalid UTF-8"},
		{"EncodedSurrogate", "POST", "/runs", "{\"name\":\"\xed\xa0\x80\",\"model\":\"m\",\"dataset\":\"d\"}", 400, "invalid UTF-8"},
		{"LoneHighSurrogate", "POST", "/runs", `{"name":"a\ud800b","model":"m","dataset":"d"}`, 400, "high surrogate"},
		{"HighSurrogateAtEnd", "POST", "/runs", `{"name":"a\ud800","model":"m","dataset":"d"}`, 400, "high surrogate"},
		{"TwoHighSurrogates", "POST", "/runs", `{"name":"\ud800\ud800","model":"m","dataset":"d"}`, 400, "high surrogate"},
		{"LoneLowSurrogate", "POST", "/runs", run(`{"case_id":"\udc00"}`), 400, "low surrogate"},
		{"LoneSurrogateInConfig", "POST", "/runs", `{"name":"n","model":"m","dataset":"d","config":{"k":"\udfff"}}`, 400, "low surrogate"},
		{"NotJSON", "POST", "/runs", "\xff\xfe\x00", 400, "invalid UTF-8"},
		{"Empty", "POST", "/runs", "", 400, "invalid JSON"},
		{"TooBig", "POST", "/runs", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "exceeds 1048576 bytes"},
		{"DuplicateCases", "POST", "/runs", run(`{"case_id":"c"},{"case_id":"c"}`), 400, `"field":"results.case_id"`},
		{"BadRunID", "GET", "/runs/'%3B%20DROP%20TABLE%20eval_runs", "", 400, "not a UUID"},
		{"NULRunID", "GET", "/runs/%00", "", 400, "not a UUID"},
		{"UnknownRun", "GET", "/runs/" + uuid.NewString(), "", 404, "not found"},
		{"MissingRunResults", "GET", "/runs/" + uuid.NewString() + "/results", "", 404, "not found"},
		{"InjectionStudent", "GET", "/students/'%20OR%201=1%20--", "", 404, "not found"},
		{"NULStudent", "GET", "/students/a%00b", "", 400, "invalid"},
		{"InvalidUTF8Student", "GET", "/students/%FF%FE", "", 400, "invalid"},
		{"NULAfter", "GET", "/runs/" + id.String() + "/results?after=%00", "", 400, "invalid"},
		{"InvalidUTF8After", "GET", "/runs/" + id.String() + "/results?after=%FF", "", 400, "invalid"},
		{"InvalidUTF8Model", "GET", "/runs?model=%FF", "", 400, "invalid"},
		{"HugeLimit", "GET", "/runs/" + id.String() + "/results?limit=99999999999999999999", "", 400, "limit"},
		{"NegativeLimit", "GET", "/runs/" + id.String() + "/results?limit=-1", "", 400, "limit"},
		{"BadFailed", "GET", "/runs/" + id.String() + "/results?failed=maybe", "", 400, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method == "POST" {
				body = []byte(tc.body)
			}
			res := call(t, h, tc.method, tc.path, body)
			if res.Code != tc.want || !strings.Contains(string(res.Body), tc.says) {
				t.Errorf("%s %s: %d %.300s; want %d with %q", tc.method, tc.path, res.Code, res.Body, tc.want, tc.says)
			}
		})
	}
	scanSecret(t, "service log", logs.String())
}

// TestDecodeRunByteByByte decodes bodies one byte per read, so that every
// UTF-8 sequence and every escape is split between reads: valid ones
// decode as in one read, invalid ones are refused at the same offset.
func TestDecodeRunByteByByte(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		wantName   string // or
		wantErr    string
	}{
		{"MultiByte", `{"name":"é日本😀","model":"m","dataset":"d"}`, "é日本😀", ""},
		{"SurrogatePair", `{"name":"\ud83d\ude00\u00e9","model":"m","dataset":"d"}`, "😀é", ""},
		{"EscapedBackslashU", `{"name":"\\ud800","model":"m","dataset":"d"}`, `\ud800`, ""},
		{"InvalidByte", "{\"name\":\"é\xff\",\"model\":\"m\",\"dataset\":\"d\"}", "", "at byte 11: invalid UTF-8"},
		{"TruncatedSequence", "{\"name\":\"\xe6\x97\"}", "", "at byte 9: invalid UTF-8"},
		{"EndsInSequence", "{\"name\":\"a\xe6", "", "at byte 10: the body ends inside a UTF-8 sequence"},
		{"LoneHigh", `{"name":"x\ud83dy","model":"m","dataset":"d"}`, "", "at byte 10: a UTF-16 high surrogate"},
		{"LoneLow", `{"model":"m","name":"\ude00"}`, "", "at byte 21: a lone UTF-16 low surrogate escape (\\ude00)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				run, err := decodeRun(iotestReader(tc.body, oneByte))
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("oneByte=%v: decodeRun = %v, want an error with %q", oneByte, err, tc.wantErr)
					}
					continue
				}
				if err != nil || run.Name != tc.wantName {
					t.Errorf("oneByte=%v: decodeRun = %q, %v; want %q", oneByte, run.Name, err, tc.wantName)
				}
			}
		})
	}
}

func iotestReader(s string, oneByte bool) io.Reader {
	if oneByte {
		return iotest.OneByteReader(strings.NewReader(s))
	}
	return strings.NewReader(s)
}

// buildRun returns a run body of n results, each result's JSON exactly
// size bytes (size >= 150), and the body's length.
func buildRun(n, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%q,"name":"big","model":"m","dataset":"d","results":[`, uuid.NewString())
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		head := fmt.Sprintf(`{"case_id":"c%06d","score":0.5,"passed":true,"latency_ms":123,"prompt_tokens":456,"completion_tokens":78,"input":"`, i)
		tail := `","expected":"a","output":"a"}`
		b.WriteString(head)
		b.WriteString(strings.Repeat("x", size-len(head)-len(tail)))
		b.WriteString(tail)
	}
	b.WriteString(`],"metrics":[]}`)
	return b.Bytes()
}

// TestDecodeRunStreams decodes a body of 20,000 results and counts the
// bytes allocated: about the decoded run (its strings and its results
// slice), not the body held in a buffer besides. Decoding the whole body
// in one Decode call, as serve did, holds it all in the decoder's buffer,
// grown by doubling, on top of the strings: 3.7× the body (BenchmarkDecodeWhole).
func TestDecodeRunStreams(t *testing.T) {
	const n = 20_000
	body := buildRun(n, ResultBudget)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	run, err := decodeRun(bytes.NewReader(body))
	runtime.ReadMemStats(&after)
	if err != nil || len(run.Results) != n {
		t.Fatalf("decodeRun = %d results, %v", len(run.Results), err)
	}
	// The strings kept: each result's input, case id, expected, output.
	var kept int
	for _, r := range run.Results {
		kept += len(r.Input) + len(r.CaseID) + len(r.Expected) + len(r.Output)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("FIGURE body %d bytes, strings kept %d bytes, allocated %d bytes (%.2f× the body)", len(body), kept, alloc, float64(alloc)/float64(len(body)))
	if limit := uint64(len(body)) * 2; alloc > limit {
		t.Errorf("decoding a %d-byte body allocated %d bytes, over 2× the body: it is buffered, not streamed", len(body), alloc)
	}
}

// TestLargestRun checks the default body limit's arithmetic (a run of
// 100,000 results of ResultBudget bytes fits), then posts a run of 100,000
// results, the limit, and one of 100,001, refused naming results.
func TestLargestRun(t *testing.T) {
	t.Parallel()
	if n := len(buildRun(txn.MaxResults, ResultBudget)); int64(n) > DefaultMaxBodyBytes {
		t.Errorf("a run of %d results of %d bytes is %d bytes, over DefaultMaxBodyBytes (%d)", txn.MaxResults, ResultBudget, n, DefaultMaxBodyBytes)
	}
	h, _, logs := realHandler(t, nil)
	if h.maxBody != DefaultMaxBodyBytes {
		t.Errorf("the default limit is %d, want DefaultMaxBodyBytes (%d)", h.maxBody, DefaultMaxBodyBytes)
	}
	res := call(t, h, "POST", "/runs", buildRun(txn.MaxResults, 150))
	if res.Code != http.StatusCreated || !strings.Contains(string(res.Body), `"result_count":100000`) {
		t.Errorf("POST /runs with 100,000 results: %d %.300s, want 201 with result_count 100000", res.Code, res.Body)
	}
	over := buildRun(txn.MaxResults+1, 150)
	if res := call(t, h, "POST", "/runs", over); res.Code != http.StatusBadRequest || !strings.Contains(string(res.Body), `"field":"results"`) {
		t.Errorf("POST /runs with 100,001 results: %d %.300s, want 400 naming results", res.Code, res.Body)
	}
	scanSecret(t, "service log", logs.String())
}

// BenchmarkDecodeWhole is the decoding serve did before (one Decode of the
// whole body into a struct), for the figure in TestDecodeRunStreams:
// go test -run '^$' -bench DecodeWhole -benchmem ./httpapi/
func BenchmarkDecodeWhole(b *testing.B) {
	body := buildRun(txn.MaxResults, ResultBudget)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v struct {
			runBody
			Results []resultBody `json:"results"`
			Metrics []metricBody `json:"metrics"`
		}
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRun is decodeRun on the same body.
func BenchmarkDecodeRun(b *testing.B) {
	body := buildRun(txn.MaxResults, ResultBudget)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeRun(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOversizedBody posts a body of about 300 MB under the default
// limit: the answer is 413 once 63 MiB are read, and B/op is what the
// request allocated on the way (serve held 807 MB for such a body before
// its 413): go test -run '^$' -bench OversizedBody -benchmem ./httpapi/
func BenchmarkOversizedBody(b *testing.B) {
	body := buildRun(100_000, 3000)
	r, err := repo.New(failing{errUnexpected}, &repo.Config{DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	h := New(r, nil)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/runs", bytes.NewReader(body)))
		if rec.Code != http.StatusRequestEntityTooLarge {
			b.Fatalf("status %d, want 413", rec.Code)
		}
	}
}

// TestRecordOutlastsTxnDefaultTimeout: recording a POSTed run may take
// longer than txn's default transaction timeout (Prisma's 5 s), as the
// largest run the body limit admits can on a busy server. A trigger makes
// the server take 5.5 s over it; the service still answers 201, and with a
// RecordTimeout shorter than that, 503.
func TestRecordOutlastsTxnDefaultTimeout(t *testing.T) {
	t.Parallel()
	h, r, _ := realHandler(t, nil)
	ctx := context.Background()
	for _, stmt := range []string{
		"CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5.5); RETURN NULL; END $$",
		"CREATE TRIGGER slow_down AFTER INSERT ON eval_results FOR EACH STATEMENT EXECUTE FUNCTION slow_down()",
	} {
		if _, err := r.DB().Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if res := call(t, h, "POST", "/runs", buildRun(3, 150)); res.Code != http.StatusCreated {
		t.Errorf("POST /runs that takes 5.5 s: %d %.300s, want 201", res.Code, res.Body)
	}
	short := New(r, &Options{RecordTimeout: time.Second})
	if res := call(t, short, "POST", "/runs", buildRun(3, 150)); res.Code != http.StatusServiceUnavailable {
		t.Errorf("POST /runs that takes 5.5 s with RecordTimeout 1s: %d %.300s, want 503", res.Code, res.Body)
	}
}

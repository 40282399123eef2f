package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// FuzzDecodeRun feeds arbitrary bodies to decodeRun: it never panics; it
// gives the same verdict (and the same message) whether the body arrives
// whole or one byte per read; and a body it accepts is valid UTF-8 holding
// exactly one JSON value.
func FuzzDecodeRun(f *testing.F) {
	f.Add([]byte(`{"name":"n","model":"m","dataset":"d","results":[{"case_id":"a b"}],"metrics":[{"name":"x","value":1}]}`))
	f.Add([]byte(`{"name":"\ud83d\ude00","config":{"k":[1e400,"\u00e9"]}}`))
	f.Add([]byte("{\"name\":\"\xe6\x97\xa5\"} {}"))
	f.Add([]byte(`{"name":"\ud800\u0041"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, errWhole := decodeRun(bytes.NewReader(body))
		_, errBytes := decodeRun(iotest.OneByteReader(bytes.NewReader(body)))
		if (errWhole == nil) != (errBytes == nil) || (errWhole != nil && errWhole.Error() != errBytes.Error()) {
			t.Fatalf("whole body: %v; one byte per read: %v", errWhole, errBytes)
		}
		if errWhole == nil && (!utf8.Valid(body) || !json.Valid(body)) {
			t.Fatalf("accepted a body that is not one JSON value of valid UTF-8: %q", body)
		}
	})
}

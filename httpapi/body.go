package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/aah/evaldb/txn"
)

// bodyError is a request body that is not one valid JSON object of the
// expected shape. Offset is the byte where the problem was found, or -1.
type bodyError struct {
	Offset  int64
	Message string
}

func (e *bodyError) Error() string {
	if e.Offset < 0 {
		return e.Message
	}
	return fmt.Sprintf("at byte %d: %s", e.Offset, e.Message)
}

// checkReader passes a request body through while checking what
// encoding/json lets by silently: every byte sequence must be valid UTF-8,
// and every \u escape in a string must be a whole UTF-16 character, not a
// lone surrogate half. encoding/json turns both into U+FFFD, so a client's
// bytes would be stored as something else than what it sent. It tracks JSON
// string and escape state across reads, and holds back a UTF-8 sequence
// split between two reads until it is whole, so the decoder sees the same
// bytes, and the same first problem is reported, however the body is split.
type checkReader struct {
	r   io.Reader
	off int64 // offset of the next byte examined
	err error

	held  [utf8.UTFMax]byte // the start of a sequence the last read split
	nheld int

	inString bool
	esc      int  // 0: none; 1: after '\'; 2-5: reading the 4 hex digits of \u
	hex      rune // the \u digits read so far
	escOff   int64
	high     bool // the last escape was a high surrogate: a low one must follow
	highOff  int64
}

// fail records a problem found at the byte at c.off, reported at off
// (where the offending sequence or escape starts).
func (c *checkReader) fail(off int64, format string, args ...any) error {
	c.err = &bodyError{Offset: off, Message: fmt.Sprintf(format, args...)}
	return c.err
}

func (c *checkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) < utf8.UTFMax {
		return 0, errors.New("httpapi: checkReader needs reads of at least 4 bytes")
	}
	for {
		h := copy(p, c.held[:c.nheld])
		c.nheld = 0
		n, err := c.r.Read(p[h:])
		n += h
		whole, cerr := c.check(p[:n], err == io.EOF)
		if cerr != nil {
			// Pass on the bytes before the bad one (check stops at it): the
			// decoder reads them first, so the earliest problem is reported
			// however the body is split into reads.
			return whole, cerr
		}
		c.nheld = copy(c.held[:], p[whole:n])
		if err == io.EOF && c.high {
			return whole, c.fail(c.highOff, "the body ends after a lone UTF-16 high surrogate escape")
		}
		if whole > 0 || err != nil {
			return whole, err
		}
	}
}

// check examines b and returns how many of its bytes are whole characters:
// an incomplete sequence at its end is left for the next read, unless eof.
func (c *checkReader) check(b []byte, eof bool) (int, error) {
	i := 0
	for i < len(b) {
		if c.inString && c.esc == 0 && !c.high {
			// The plain run of a string, up to its next quote or backslash:
			// only UTF-8 validity matters there, checked a word at a time.
			end := len(b)
			if j := bytes.IndexAny(b[i:], "\"\\"); j >= 0 {
				end = i + j
			}
			if end > i && utf8.Valid(b[i:end]) {
				c.off += int64(end - i)
				i = end
				continue
			}
		}
		ch := b[i]
		if ch < utf8.RuneSelf {
			if err := c.ascii(c.off, ch); err != nil {
				return i, err
			}
			i++
			c.off++
			continue
		}
		if !utf8.FullRune(b[i:]) {
			if eof {
				return i, c.fail(c.off, "the body ends inside a UTF-8 sequence; send valid UTF-8")
			}
			return i, nil
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i, c.fail(c.off, "invalid UTF-8 (byte 0x%02x); the body must be UTF-8 (RFC 8259)", ch)
		}
		if err := c.char(); err != nil {
			return i, err
		}
		i += size
		c.off += int64(size)
	}
	return i, nil
}

// char handles a non-ASCII character: it can only continue a string.
func (c *checkReader) char() error {
	if c.high {
		return c.fail(c.highOff, "a UTF-16 high surrogate escape is not followed by its low half; escape the whole character (\\ud83d\\ude00) or send it as UTF-8")
	}
	if c.esc > 0 {
		c.esc = 0 // invalid escape: encoding/json reports it
	}
	return nil
}

func isHex(ch byte) (rune, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return rune(ch - '0'), true
	case ch >= 'a' && ch <= 'f':
		return rune(ch-'a') + 10, true
	case ch >= 'A' && ch <= 'F':
		return rune(ch-'A') + 10, true
	}
	return 0, false
}

func (c *checkReader) ascii(off int64, ch byte) error {
	if !c.inString {
		if ch == '"' {
			c.inString = true
		}
		return nil
	}
	switch c.esc {
	case 0:
		if c.high && ch != '\\' {
			return c.fail(c.highOff, "a UTF-16 high surrogate escape is not followed by its low half; escape the whole character (\\ud83d\\ude00) or send it as UTF-8")
		}
		switch ch {
		case '\\':
			c.esc, c.escOff = 1, off
		case '"':
			c.inString = false
		}
	case 1:
		if ch == 'u' {
			c.esc, c.hex = 2, 0
			return nil
		}
		if c.high {
			return c.fail(c.highOff, "a UTF-16 high surrogate escape is not followed by its low half; escape the whole character (\\ud83d\\ude00) or send it as UTF-8")
		}
		c.esc = 0
	default:
		d, ok := isHex(ch)
		if !ok {
			c.esc = 0 // invalid escape: encoding/json reports it
			return nil
		}
		c.hex = c.hex<<4 | d
		if c.esc++; c.esc < 6 {
			return nil
		}
		c.esc = 0
		switch {
		case c.high && c.hex >= 0xDC00 && c.hex <= 0xDFFF:
			c.high = false
		case c.high:
			return c.fail(c.highOff, "a UTF-16 high surrogate escape is not followed by its low half; escape the whole character (\\ud83d\\ude00) or send it as UTF-8")
		case c.hex >= 0xD800 && c.hex <= 0xDBFF:
			c.high, c.highOff = true, c.escOff
		case c.hex >= 0xDC00 && c.hex <= 0xDFFF:
			return c.fail(c.escOff, "a lone UTF-16 low surrogate escape (\\u%04x) is not a character; escape the whole character or send it as UTF-8", c.hex)
		}
	}
	return nil
}

// runBody is the JSON body of POST /runs, decoded field by field.
type runBody struct {
	ID         *uuid.UUID      `json:"id"`
	Name       string          `json:"name"`
	Model      string          `json:"model"`
	Dataset    string          `json:"dataset"`
	Status     string          `json:"status"`
	Config     json.RawMessage `json:"config"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
}

// runBodyFields maps runBody's JSON names to its fields' indexes.
var runBodyFields = func() map[string]int {
	m := map[string]int{}
	for i, f := range reflect.VisibleFields(reflect.TypeFor[runBody]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		m[name] = i
	}
	return m
}()

type resultBody struct {
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
}

type metricBody struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// decodeRun reads a POST /runs body: exactly one JSON object, valid UTF-8,
// with no unknown or repeated field and nothing after it. It streams: the
// results array is decoded one element at a time, so the decoder holds one
// result's bytes, never the whole body, and it stops at the first result
// past txn.MaxResults.
func decodeRun(r io.Reader) (txn.Run, error) {
	cr := &checkReader{r: r}
	dec := json.NewDecoder(cr)
	dec.DisallowUnknownFields()
	var run txn.Run
	if err := expectDelim(dec, '{', "the body must be a JSON object"); err != nil {
		return run, err
	}
	var body runBody
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return run, jsonError(err, "")
		}
		key, _ := tok.(string)
		if seen[key] {
			return run, &bodyError{Offset: dec.InputOffset(), Message: fmt.Sprintf("field %q appears twice; send it once", key)}
		}
		seen[key] = true
		switch key {
		case "results":
			if run.Results, err = decodeArray[resultBody, txn.Result](dec, "results", txn.MaxResults,
				func(b resultBody) txn.Result { return txn.Result(b) }); err != nil {
				return run, err
			}
			continue
		case "metrics":
			if run.Metrics, err = decodeArray[metricBody, txn.Metric](dec, "metrics", txn.MaxMetrics,
				func(b metricBody) txn.Metric { return txn.Metric(b) }); err != nil {
				return run, err
			}
			continue
		}
		i, ok := runBodyFields[key]
		if !ok {
			return run, &bodyError{Offset: dec.InputOffset(), Message: fmt.Sprintf("unknown field %q; the fields are listed at /openapi.json", truncate(key))}
		}
		target := reflect.ValueOf(&body).Elem().Field(i).Addr().Interface()
		if err := dec.Decode(target); err != nil {
			return run, jsonError(err, key)
		}
	}
	if err := expectDelim(dec, '}', "the body must be a JSON object"); err != nil {
		return run, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil || errors.As(err, new(*json.SyntaxError)) {
			return run, &bodyError{Offset: dec.InputOffset(), Message: "data after the JSON object; send exactly one JSON value"}
		}
		return run, jsonError(err, "")
	}
	run.Name, run.Model, run.Dataset, run.Status, run.Config = body.Name, body.Model, body.Dataset, body.Status, body.Config
	if body.ID != nil {
		run.ID = *body.ID
	}
	if body.StartedAt != nil {
		run.StartedAt = *body.StartedAt
	}
	run.FinishedAt = body.FinishedAt
	return run, nil
}

// decodeArray decodes a JSON array (or null) of B one element at a time,
// converting each to T, refusing more than limit elements.
func decodeArray[B, T any](dec *json.Decoder, field string, limit int, conv func(B) T) ([]T, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err, field)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &bodyError{Offset: dec.InputOffset(), Message: fmt.Sprintf("%s must be an array", field)}
	}
	var out []T
	for i := 0; dec.More(); i++ {
		if i == limit {
			return nil, &txn.ValidationError{Problems: []txn.Problem{{Field: field, Row: -1,
				Message: fmt.Sprintf("has more than %d elements, over the limit; split the run", limit)}}}
		}
		var b B
		if err := dec.Decode(&b); err != nil {
			return nil, jsonError(err, fmt.Sprintf("%s[%d]", field, i))
		}
		out = append(out, conv(b))
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err, field)
	}
	return out, nil
}

func expectDelim(dec *json.Decoder, want json.Delim, msg string) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err, "")
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return &bodyError{Offset: dec.InputOffset(), Message: msg}
	}
	return nil
}

// jsonError turns a decoding error into a bodyError that says where and
// what; field names the value being decoded, when known. Errors of the
// reader (checkReader's, the body limit's) come back unchanged.
func jsonError(err error, field string) error {
	var (
		be   *bodyError
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		tErr *time.ParseError
	)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return tooBig
	case errors.As(err, &be):
		return be
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &bodyError{Offset: -1, Message: "the body ends before the JSON object does; send one whole JSON object"}
	case errors.As(err, &syn):
		return &bodyError{Offset: syn.Offset, Message: "invalid JSON: " + syn.Error()}
	case errors.As(err, &typ):
		name := field
		if typ.Field != "" {
			name = joinField(field, typ.Field)
		}
		return &bodyError{Offset: typ.Offset, Message: fmt.Sprintf("%s: a JSON %s does not fit; want %s", name, typ.Value, goTypeName(typ.Type.String()))}
	case errors.As(err, &tErr):
		return &bodyError{Offset: -1, Message: fmt.Sprintf("%s: %q is not an RFC 3339 time such as 2026-11-01T10:00:00Z", field, truncate(tErr.Value))}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &bodyError{Offset: -1, Message: fmt.Sprintf("%s: %s; the fields are listed at /openapi.json", field, strings.TrimPrefix(err.Error(), "json: "))}
	case strings.HasPrefix(err.Error(), "invalid UUID"):
		return &bodyError{Offset: -1, Message: fmt.Sprintf("%s: not a UUID (%v)", field, err)}
	}
	if field != "" {
		return &bodyError{Offset: -1, Message: fmt.Sprintf("%s: %v", field, err)}
	}
	return err
}

func joinField(prefix, f string) string {
	if prefix == "" {
		return f
	}
	return prefix + "." + f
}

// goTypeName says in JSON terms what a Go type takes.
func goTypeName(t string) string {
	switch t {
	case "string":
		return "a string"
	case "float64":
		return "a finite number"
	case "int32":
		return "a whole number from -2147483648 to 2147483647"
	case "bool":
		return "true or false"
	case "uuid.UUID", "*uuid.UUID":
		return "a UUID string"
	case "time.Time", "*time.Time":
		return "an RFC 3339 time string"
	case "*string":
		return "a string or null"
	}
	return t
}

// truncate shortens a value quoted in a message, keeping it valid UTF-8.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:n], "\uFFFD") + "…"
}

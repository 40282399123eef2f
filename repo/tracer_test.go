package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/gen"
)

func TestFormatArgsJSONAsText(t *testing.T) {
	t.Parallel()
	got := formatArgs([]any{json.RawMessage(`{"a":1}`)})
	if want := `["{\"a\":1}"]`; got != want {
		t.Errorf("formatArgs(json.RawMessage) = %s, want %s", got, want)
	}
}

// A failure the API returns as a typed expected outcome is not logged as an
// error.
func TestFailureLevelByMeaning(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want slog.Level
	}{
		{fmt.Errorf("scan: %w", pgx.ErrNoRows), slog.LevelDebug},
		{&pgconn.PgError{Code: "23505"}, slog.LevelWarn},
		{&pgconn.PgError{Code: "42703"}, slog.LevelError},
		{errors.New("broken pipe"), slog.LevelError},
	} {
		if got, _ := failureLevel(tt.err); got != tt.want {
			t.Errorf("failureLevel(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestQueryName(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		gen.GetEvalRun:                       "GetEvalRun",
		gen.CountConnectionsByState:          "CountConnectionsByState",
		"SELECT 1":                           "other",
		"-- name: \nSELECT 1":                "other",
		"-- name: X :exec":                   "X",
		"-- name: Y\tSELECT":                 "Y",
		"-- name: Z\nSELECT":                 "Z",
		"-- name: W\r\nSELECT":               "W",
		"-- name: NoEnd":                     "other",
		"begin":                              "begin",
		"COMMIT":                             "commit",
		"rollback":                           "rollback",
		"begin isolation level serializable": "begin",
	}
	for sql, want := range tests {
		if got := QueryName(sql); got != want {
			t.Errorf("QueryName(%q) = %q, want %q", sql, got, want)
		}
	}
}

func TestFormatArgs(t *testing.T) {
	t.Parallel()
	long := make([]byte, 100)
	for i := range long {
		long[i] = 'a'
	}
	got := formatArgs([]any{1, "x", string(long), nil, 2, 3, 4, 5, 6, 7, 8, 9})
	want := `[1 "x" "` + string(long[:64]) + `…(100 bytes)" <nil> 2 3 4 5 6 7 …2 more]`
	if got != want {
		t.Errorf("formatArgs = %s\nwant %s", got, want)
	}
}

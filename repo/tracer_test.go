package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

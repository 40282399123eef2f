package txn

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Run statuses accepted by RecordEvalRun (the schema's CHECK constraint).
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Size limits of RecordEvalRun, checked before anything is written.
const (
	// MaxResults is the most results one run may have. A run is one
	// transaction; at ~100,000 rows/s this keeps it near a second.
	MaxResults = 100_000
	// MaxMetrics is the most metrics one run may have.
	MaxMetrics = 10_000
	// MaxKeyBytes bounds name, model, dataset, case_id and metric names (in
	// bytes of UTF-8). case_id and metric names are primary-key columns, and
	// a B-tree entry must fit in a third of a page (about 2,700 bytes).
	MaxKeyBytes = 1024
	// MaxTextBytes bounds each of a result's input, expected, output and
	// error.
	MaxTextBytes = 4 << 20
	// MaxConfigBytes bounds the run's JSON config.
	MaxConfigBytes = 1 << 20
	// MaxRunBytes bounds the total text of a run (all strings and the
	// config), to keep one transaction's memory and duration in check.
	MaxRunBytes = 256 << 20
)

// earliest and latest bound the accepted timestamps: PostgreSQL's
// timestamptz reaches further, but anything outside years 1-9999 is a bug.
var (
	earliest = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Problem is one thing wrong with a run given to RecordEvalRun.
type Problem struct {
	// Field names the field: a run field ("name", "status", "finished_at",
	// "results", "metrics") or a row field ("results.case_id",
	// "metrics.value").
	Field string
	// Row is the index in Run.Results or Run.Metrics, or -1 for run fields.
	Row int
	// Message says what is wrong and how to fix it.
	Message string
}

// String formats the problem as "results[3].score: …".
func (p Problem) String() string {
	if p.Row < 0 {
		return p.Field + ": " + p.Message
	}
	section, field, _ := strings.Cut(p.Field, ".")
	return section + "[" + strconv.Itoa(p.Row) + "]." + field + ": " + p.Message
}

// ValidationError reports everything wrong with a run, found before
// anything was written. Get at it with errors.As.
type ValidationError struct {
	// Problems lists every problem, run fields first, then results and
	// metrics in row order.
	Problems []Problem
}

// maxListed bounds how many problems Error spells out.
const maxListed = 10

// Error lists the first problems and counts the rest.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid eval run (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("): ")
	for i, p := range e.Problems {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// checker collects problems.
type checker struct {
	problems []Problem
	bytes    int
}

func (c *checker) add(field string, row int, format string, args ...any) {
	c.problems = append(c.problems, Problem{Field: field, Row: row, Message: fmt.Sprintf(format, args...)})
}

// text checks one string: presence, size, UTF-8, NUL bytes.
func (c *checker) text(field string, row int, s string, required bool, maxBytes int) {
	c.bytes += len(s)
	if required && s == "" {
		c.add(field, row, "is required; set it to a non-empty string")
		return
	}
	if len(s) > maxBytes {
		c.add(field, row, "is %d bytes, over the limit of %d; shorten it", len(s), maxBytes)
	}
	if !utf8.ValidString(s) {
		c.add(field, row, "is not valid UTF-8 (PostgreSQL rejects it); convert it to UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		c.add(field, row, `contains a NUL byte (PostgreSQL text cannot hold \x00); remove or escape it`)
	}
}

func (c *checker) finite(field string, row int, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.add(field, row, "is %v; it must be a finite number", v)
	}
}

func (c *checker) nonNegative(field string, row int, v int32) {
	if v < 0 {
		c.add(field, row, "is %d; it must be >= 0", v)
	}
}

func (c *checker) timestamp(field string, t time.Time) {
	if t.Before(earliest) || !t.Before(latest) {
		c.add(field, -1, "is %s; it must lie in years 1 to 9999", t.Format(time.RFC3339))
	}
}

// Validate checks a run as RecordEvalRun does, without touching the
// database, and returns a *ValidationError listing every problem, or nil.
// The rules: name, model, dataset and every case_id and metric name are
// required; all text is valid UTF-8 without NUL bytes and within the size
// limits (MaxKeyBytes, MaxTextBytes, MaxConfigBytes, MaxRunBytes, MaxResults,
// MaxMetrics); status is "", running, completed or failed; finished_at is
// unset while running and not before started_at; config, when given, is
// valid JSON that PostgreSQL's jsonb accepts (no \u0000, no lone UTF-16
// surrogate escape, numbers within numeric's range, nesting at most 10,000
// deep); scores and metric values are finite; latencies
// and token counts are not negative; case ids and metric names are unique.
// It never panics, whatever the input. Safe for concurrent use.
func Validate(run Run) error {
	var c checker
	c.text("name", -1, run.Name, true, MaxKeyBytes)
	c.text("model", -1, run.Model, true, MaxKeyBytes)
	c.text("dataset", -1, run.Dataset, true, MaxKeyBytes)
	switch run.Status {
	case "", StatusRunning, StatusCompleted, StatusFailed:
	default:
		c.add("status", -1, "is %q; use %q, %q or %q (empty means %q)",
			truncate(run.Status), StatusRunning, StatusCompleted, StatusFailed, StatusCompleted)
	}
	if !run.StartedAt.IsZero() {
		c.timestamp("started_at", run.StartedAt)
	}
	if run.FinishedAt != nil {
		c.timestamp("finished_at", *run.FinishedAt)
		if run.Status == StatusRunning {
			c.add("finished_at", -1, "is set but status is running; leave it nil until the run finishes")
		}
		if !run.StartedAt.IsZero() && run.FinishedAt.Before(run.StartedAt) {
			c.add("finished_at", -1, "is before started_at; it must not be")
		}
	}
	if len(run.Config) > 0 {
		c.bytes += len(run.Config)
		switch {
		case len(run.Config) > MaxConfigBytes:
			c.add("config", -1, "is %d bytes, over the limit of %d; shorten it", len(run.Config), MaxConfigBytes)
		case !utf8.Valid(run.Config):
			c.add("config", -1, "is not valid UTF-8; convert it to UTF-8")
		case !json.Valid(run.Config):
			if msg := jsonbProblem(run.Config); msg != "" { // too deep for encoding/json too
				c.add("config", -1, "%s", msg)
			} else {
				c.add("config", -1, "is not valid JSON; pass a JSON value such as {} or leave it nil")
			}
		default:
			if msg := jsonbProblem(run.Config); msg != "" {
				c.add("config", -1, "%s", msg)
			}
		}
	}

	if len(run.Results) > MaxResults {
		c.add("results", -1, "has %d results, over the limit of %d; split the run", len(run.Results), MaxResults)
	}
	seenCase := make(map[string]int, len(run.Results))
	for i, r := range run.Results {
		c.text("results.case_id", i, r.CaseID, true, MaxKeyBytes)
		if r.CaseID != "" {
			if first, dup := seenCase[r.CaseID]; dup {
				c.add("results.case_id", i, "duplicates results[%d].case_id %q; case ids must be unique within a run", first, truncate(r.CaseID))
			} else {
				seenCase[r.CaseID] = i
			}
		}
		c.text("results.input", i, r.Input, false, MaxTextBytes)
		c.text("results.expected", i, r.Expected, false, MaxTextBytes)
		c.text("results.output", i, r.Output, false, MaxTextBytes)
		if r.Error != nil {
			c.text("results.error", i, *r.Error, false, MaxTextBytes)
		}
		c.finite("results.score", i, r.Score)
		c.nonNegative("results.latency_ms", i, r.LatencyMs)
		c.nonNegative("results.prompt_tokens", i, r.PromptTokens)
		c.nonNegative("results.completion_tokens", i, r.CompletionTokens)
	}

	if len(run.Metrics) > MaxMetrics {
		c.add("metrics", -1, "has %d metrics, over the limit of %d", len(run.Metrics), MaxMetrics)
	}
	seenMetric := make(map[string]int, len(run.Metrics))
	for i, m := range run.Metrics {
		c.text("metrics.name", i, m.Name, true, MaxKeyBytes)
		if m.Name != "" {
			if first, dup := seenMetric[m.Name]; dup {
				c.add("metrics.name", i, "duplicates metrics[%d].name %q; metric names must be unique within a run", first, truncate(m.Name))
			} else {
				seenMetric[m.Name] = i
			}
		}
		c.finite("metrics.value", i, m.Value)
	}

	if c.bytes > MaxRunBytes {
		c.add("results", -1, "the run holds %d bytes of text, over the limit of %d; split the run", c.bytes, MaxRunBytes)
	}
	if len(c.problems) > 0 {
		return &ValidationError{Problems: c.problems}
	}
	return nil
}

// truncate shortens a value quoted in a message, keeping it valid UTF-8.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:n], "\uFFFD") + "…"
}

package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// tracer logs and times every statement the pool runs. It is installed as
// the pool's pgx tracer (queries, batches, COPY, connects), so no method of
// Repo does its own logging or timing. Safe for concurrent use.
type tracer struct {
	log     *slog.Logger
	level   slog.Leveler // least severe level logged (slow queries excepted)
	slow    time.Duration
	metrics *Metrics
}

var (
	_ pgx.QueryTracer    = (*tracer)(nil)
	_ pgx.BatchTracer    = (*tracer)(nil)
	_ pgx.CopyFromTracer = (*tracer)(nil)
	_ pgx.ConnectTracer  = (*tracer)(nil)
)

type traceKey struct{}

// traceCtx is the ctx the tracer returns at a statement's start and finds
// again at its end: the statement's trace is a value of its own ctx, so
// tracing a statement makes one allocation.
type traceCtx struct {
	context.Context
	start time.Time
	name  string
	args  []any
}

func (c *traceCtx) Value(key any) any {
	if _, ok := key.(traceKey); ok {
		return c
	}
	return c.Context.Value(key)
}

func (t *tracer) enabled(l slog.Level) bool { return l >= t.level.Level() }

func (t *tracer) start(ctx context.Context, name string, args []any) context.Context {
	return &traceCtx{Context: ctx, start: time.Now(), name: name, args: args}
}

// end records one statement's outcome: metrics, then the log line the
// environment asks for (every query at Info, failures at the level of what
// they mean (see failureLevel), slow ones at Warn whatever the level).
// rows is the rows affected, or -1 when the statement has no such count.
// The log line's attributes are built only when there is a line to log.
func (t *tracer) end(ctx context.Context, err error, rows int64) {
	tc, _ := ctx.Value(traceKey{}).(*traceCtx)
	if tc == nil {
		return
	}
	d := time.Since(tc.start)
	failed := err != nil
	t.metrics.observe(tc.name, d, failed)
	switch {
	case failed && !errors.Is(err, context.Canceled):
		level, msg := failureLevel(err)
		if t.enabled(level) {
			attrs := []any{"query", tc.name, "duration", d}
			if t.enabled(slog.LevelInfo) {
				attrs = append(attrs, "args", formatArgs(tc.args))
			}
			t.log.Log(ctx, level, msg, append(attrs, "error", err.Error())...)
		}
	case t.slow > 0 && d >= t.slow:
		t.log.WarnContext(ctx, "evaldb: slow query", "query", tc.name, "duration", d, "threshold", t.slow)
	case t.enabled(slog.LevelInfo):
		attrs := []any{"query", tc.name, "duration", d}
		if rows >= 0 {
			attrs = append(attrs, "rows", rows)
		}
		t.log.InfoContext(ctx, "evaldb: query", append(attrs, "args", formatArgs(tc.args))...)
	}
}

// failureLevel is the level and message of a failed statement's log line,
// by what the failure means to the caller. A unique violation, which the API
// returns as a *ConflictError (an expected outcome: the caller handles it),
// is a warning; no rows (ErrNotFound) is logged at Debug; anything else is
// an error.
func failureLevel(err error) (slog.Level, string) {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return slog.LevelDebug, "evaldb: query found no rows"
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return slog.LevelWarn, "evaldb: query conflicted with a unique constraint"
	}
	return slog.LevelError, "evaldb: query failed"
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, QueryName(data.SQL), data.Args)
}

func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(ctx, data.Err, data.CommandTag.RowsAffected())
}

func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	return t.start(ctx, "batch", []any{fmt.Sprintf("%d statements", data.Batch.Len())})
}

// TraceBatchQuery logs each statement of a batch by name in development;
// the batch as a whole is timed (statements of a pipeline have no
// individual duration).
func (t *tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	name := QueryName(data.SQL)
	if data.Err != nil {
		if level, _ := failureLevel(data.Err); t.enabled(level) {
			t.log.Log(ctx, level, "evaldb: batch statement failed", "query", name, "error", data.Err.Error())
		}
		return
	}
	if t.enabled(slog.LevelInfo) {
		t.log.InfoContext(ctx, "evaldb: batch statement", "query", name, "rows", data.CommandTag.RowsAffected(), "args", formatArgs(data.Args))
	}
}

func (t *tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(ctx, data.Err, -1)
}

func (t *tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "copy "+strings.Join(data.TableName, "."), nil)
}

func (t *tracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	t.end(ctx, data.Err, data.CommandTag.RowsAffected())
}

type connectKey struct{}

func (t *tracer) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	target := "?"
	if data.ConnConfig != nil {
		target = fmt.Sprintf("%s:%d", data.ConnConfig.Host, data.ConnConfig.Port)
	}
	return context.WithValue(ctx, connectKey{}, [2]any{time.Now(), target})
}

func (t *tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	v, _ := ctx.Value(connectKey{}).([2]any)
	start, _ := v[0].(time.Time)
	target, _ := v[1].(string)
	t.metrics.observeConnect(data.Err != nil)
	if data.Err != nil {
		if t.enabled(slog.LevelError) {
			t.log.ErrorContext(ctx, "evaldb: connect failed", "server", target, "duration", time.Since(start), "error", data.Err.Error())
		}
		return
	}
	if t.enabled(slog.LevelInfo) {
		t.log.InfoContext(ctx, "evaldb: connected", "server", target, "duration", time.Since(start))
	}
}

// Limits of formatArgs: arguments are for recognising a call in a log, not
// for reproducing it.
const (
	maxLoggedArgs   = 10
	maxLoggedArgLen = 64
)

// formatArgs renders query arguments for a log line, each truncated.
func formatArgs(args []any) string {
	if len(args) == 0 {
		return "[]"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, a := range args {
		if i == maxLoggedArgs {
			fmt.Fprintf(&b, " …%d more", len(args)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		var s string
		switch v := a.(type) {
		case string:
			s = fmt.Sprintf("%q", truncate(v, maxLoggedArgLen))
		case []byte:
			s = fmt.Sprintf("%q", truncate(string(v), maxLoggedArgLen))
		case json.RawMessage: // jsonb: text, not a list of byte values
			s = fmt.Sprintf("%q", truncate(string(v), maxLoggedArgLen))
		default:
			s = truncate(fmt.Sprintf("%v", v), maxLoggedArgLen)
		}
		b.WriteString(s)
	}
	b.WriteByte(']')
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}

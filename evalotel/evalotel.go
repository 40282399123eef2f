// Package evalotel reports what evaldb does to OpenTelemetry: a span per
// statement (cache hits included), per transaction and per eval-run
// recording, with the stable database semantic conventions, and, when a
// MeterProvider is given, the db.client.operation.duration and
// db.client.connection.wait_time histograms.
//
// It implements observe.Observer; set it as repo.Config.Observer (and
// txn.Options.Observer for transactions run outside a Repo):
//
//	obs, err := evalotel.New(&evalotel.Options{TracerProvider: tp, MeterProvider: mp})
//	cfg.Observer = obs
//
// A span is named by the statement's sqlc query name ("GetEvalRun"), which
// is low-cardinality, never by its SQL text. Its attributes are
// db.system.name=postgresql, db.namespace, db.operation.name,
// db.query.summary (the query name), db.query.text (the parametrised SQL;
// arguments never), server.address and server.port, and on failure
// db.response.status_code (the SQLSTATE) and error.type, plus evaldb's own:
// evaldb.cache (hit, miss or stale), evaldb.connection.wait (seconds),
// evaldb.replica and evaldb.retries.
//
// A service that does not import evalotel links nothing of OpenTelemetry:
// repo and txn know only the observe interface.
package evalotel

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/aah/evaldb/dberr"
	"github.com/aah/evaldb/observe"
)

// ScopeName is the instrumentation scope of evaldb's spans and metrics.
const ScopeName = "github.com/aah/evaldb/evalotel"

// Attribute keys of evaldb's own, beside the semantic conventions'.
const (
	// AttrCache is the read cache's outcome: "hit", "miss" or "stale".
	// Absent when the statement is not cached.
	AttrCache = attribute.Key("evaldb.cache")
	// AttrConnWait is the time spent waiting for a pooled connection, in
	// seconds. Absent when no connection was waited for (a cache hit, a
	// statement in a transaction, a load shared with another caller).
	AttrConnWait = attribute.Key("evaldb.connection.wait")
	// AttrReplica is true when a read replica served the statement.
	AttrReplica = attribute.Key("evaldb.replica")
	// AttrRetries is how many times the statement or transaction was run
	// again (only when more than zero).
	AttrRetries = attribute.Key("evaldb.retries")
	// AttrReadOnly is true for a statement the generator proved read-only,
	// and for a read-only transaction.
	AttrReadOnly = attribute.Key("evaldb.read_only")
	// AttrIsolation is a transaction's isolation level.
	AttrIsolation = attribute.Key("evaldb.tx.isolation")
	// AttrAttempt is the attempt number on a transaction's retry event.
	AttrAttempt = attribute.Key("evaldb.tx.attempt")
	// AttrResults and AttrMetrics are a recorded run's result and metric
	// counts.
	AttrResults = attribute.Key("evaldb.record.results")
	AttrMetrics = attribute.Key("evaldb.record.metrics")
	// AttrMethod is how a run's results were sent: "batch" or "copy".
	AttrMethod = attribute.Key("evaldb.record.method")
	// AttrAlreadyRecorded is true when identical content was already there.
	AttrAlreadyRecorded = attribute.Key("evaldb.record.already_recorded")
)

// Span names of transactions and recordings.
const (
	SpanTx     = "evaldb.transaction"
	SpanRecord = "RecordEvalRun"
	// EventRetry is the event added to a transaction's span before each
	// retry.
	EventRetry = "retry"
)

// Options configure an Observer. The zero value (or nil) traces through
// otel's global TracerProvider and records no metrics.
type Options struct {
	// TracerProvider makes the tracer; nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider, when set, receives db.client.operation.duration for
	// every statement and db.client.connection.wait_time for every
	// statement that took a pooled connection. Nil means no metrics.
	MeterProvider metric.MeterProvider
	// OmitQueryText leaves db.query.text out of spans (the text is
	// parametrised, never holds arguments, and is on by default).
	OmitQueryText bool
}

// Observer is an observe.Observer that reports to OpenTelemetry. It is
// safe for concurrent use.
type Observer struct {
	tracer   trace.Tracer
	metrics  bool
	duration dbconv.ClientOperationDuration
	wait     dbconv.ClientConnectionWaitTime
	noText   bool
	now      func() time.Time
}

var _ observe.Observer = (*Observer)(nil)

// New returns an Observer. It fails only when the MeterProvider refuses to
// create the instruments.
func New(opts *Options) (*Observer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	obs := &Observer{
		tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		noText: o.OmitQueryText,
		now:    time.Now,
	}
	if o.MeterProvider != nil {
		m := o.MeterProvider.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
		var err error
		if obs.duration, err = dbconv.NewClientOperationDuration(m); err != nil {
			return nil, err
		}
		if obs.wait, err = dbconv.NewClientConnectionWaitTime(m); err != nil {
			return nil, err
		}
		obs.metrics = true
	}
	return obs, nil
}

func serverAttrs(s observe.Server) []attribute.KeyValue {
	return appendServer(make([]attribute.KeyValue, 0, 8), s)
}

// appendServer appends the attributes that identify the server.
func appendServer(a []attribute.KeyValue, s observe.Server) []attribute.KeyValue {
	a = append(a, semconv.DBSystemNamePostgreSQL)
	if s.Database != "" {
		a = append(a, semconv.DBNamespace(s.Database))
	}
	if s.Address != "" {
		a = append(a, semconv.ServerAddress(s.Address))
	}
	if s.Port != 0 {
		a = append(a, semconv.ServerPort(s.Port))
	}
	return a
}

// StartStatement starts a client span named by the query's name.
func (o *Observer) StartStatement(ctx context.Context, s *observe.Statement) (context.Context, func(*observe.StatementEnd)) {
	start := o.now()
	name := s.Name
	if name == "" {
		name = "other"
	}
	attrs := appendServer(make([]attribute.KeyValue, 0, 9), s.Server)
	attrs = append(attrs, semconv.DBQuerySummary(name))
	if s.Operation != "" {
		attrs = append(attrs, semconv.DBOperationName(s.Operation))
	}
	if s.SQL != "" && !o.noText {
		attrs = append(attrs, semconv.DBQueryText(s.SQL))
	}
	if s.ReadOnly {
		attrs = append(attrs, AttrReadOnly.Bool(true))
	}
	ctx, span := o.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	server, op := s.Server, s.Operation
	return ctx, func(e *observe.StatementEnd) {
		if e == nil {
			e = &observe.StatementEnd{}
		}
		failure := failed(e.Err)
		if span.IsRecording() {
			end := make([]attribute.KeyValue, 0, 6)
			if e.Cache != observe.CacheNone {
				end = append(end, AttrCache.String(string(e.Cache)))
			}
			if e.ConnWait > 0 {
				end = append(end, AttrConnWait.Float64(e.ConnWait.Seconds()))
			}
			if e.Replica {
				end = append(end, AttrReplica.Bool(true))
			}
			if e.Retries > 0 {
				end = append(end, AttrRetries.Int(e.Retries))
			}
			if failure != nil {
				end = append(end, failure.attrs()...)
				span.SetStatus(codes.Error, failure.message)
			}
			span.SetAttributes(end...)
		}
		span.End()
		if o.metrics {
			m := appendServer(make([]attribute.KeyValue, 0, 10), server)
			m = append(m, semconv.DBQuerySummary(name))
			if op != "" {
				m = append(m, semconv.DBOperationName(op))
			}
			if e.Cache != observe.CacheNone {
				m = append(m, AttrCache.String(string(e.Cache)))
			}
			if failure != nil {
				m = append(m, failure.attrs()...)
			}
			o.duration.Float64Histogram.Record(ctx, o.now().Sub(start).Seconds(), metric.WithAttributes(m...))
			if e.Cache != observe.CacheHit && e.ConnWait > 0 {
				o.wait.Float64Histogram.Record(ctx, e.ConnWait.Seconds(), metric.WithAttributes(
					attribute.String("db.client.connection.pool.name", poolName(server))))
			}
		}
	}
}

// poolName is the pool's name for db.client.connection.wait_time: the
// server and database (no user or password).
func poolName(s observe.Server) string {
	return s.Address + ":" + strconv.Itoa(s.Port) + "/" + s.Database
}

// StartTx starts the span of one transaction. Each retry is an event on it;
// the statements inside are its children.
func (o *Observer) StartTx(ctx context.Context, t *observe.Tx) (context.Context, observe.TxSpan) {
	attrs := serverAttrs(t.Server)
	if t.Isolation != "" {
		attrs = append(attrs, AttrIsolation.String(t.Isolation))
	}
	if t.ReadOnly {
		attrs = append(attrs, AttrReadOnly.Bool(true))
	}
	ctx, span := o.tracer.Start(ctx, SpanTx, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, &txSpan{span: span}
}

type txSpan struct {
	span    trace.Span
	retries int
}

func (t *txSpan) Retry(attempt int, err error) {
	t.retries++
	attrs := []attribute.KeyValue{AttrAttempt.Int(attempt)}
	if f := failed(err); f != nil {
		attrs = append(attrs, f.attrs()...)
	}
	t.span.AddEvent(EventRetry, trace.WithAttributes(attrs...))
}

func (t *txSpan) End(err error) {
	if t.retries > 0 {
		t.span.SetAttributes(AttrRetries.Int(t.retries))
	}
	if f := failed(err); f != nil {
		t.span.SetAttributes(f.attrs()...)
		t.span.SetStatus(codes.Error, f.message)
	}
	t.span.End()
}

// StartRecord starts the span of one RecordEvalRun call.
func (o *Observer) StartRecord(ctx context.Context, r *observe.Record) (context.Context, func(*observe.RecordEnd)) {
	attrs := append(serverAttrs(r.Server), AttrResults.Int(r.Results), AttrMetrics.Int(r.Metrics))
	ctx, span := o.tracer.Start(ctx, SpanRecord, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, func(e *observe.RecordEnd) {
		if e == nil {
			e = &observe.RecordEnd{}
		}
		if e.Method != "" {
			span.SetAttributes(AttrMethod.String(string(e.Method)))
		}
		if e.AlreadyRecorded {
			span.SetAttributes(AttrAlreadyRecorded.Bool(true))
		}
		if f := failed(e.Err); f != nil {
			span.SetAttributes(f.attrs()...)
			span.SetStatus(codes.Error, f.message)
		}
		span.End()
	}
}

// failure is what a span says about an error.
type failure struct {
	errorType string // error.type
	sqlstate  string // db.response.status_code, "" when the server reported nothing
	message   string // the span status's description
}

func (f *failure) attrs() []attribute.KeyValue {
	a := []attribute.KeyValue{semconv.ErrorTypeKey.String(f.errorType)}
	if f.sqlstate != "" {
		a = append(a, semconv.DBResponseStatusCode(f.sqlstate))
	}
	return a
}

// failed describes err, or returns nil when err is not a failure of the
// operation: nil, or a query that found no row (an answer, not an error).
// error.type is the SQLSTATE when the server reported one (as the
// semantic conventions ask), else one of evaldb's low-cardinality kinds
// (pool_timeout, unreachable, connection_closed, canceled, timeout) or the
// error's Go type. The status message is the server's message without its
// detail (which may quote row values) or the error's text.
func failed(err error) *failure {
	if err == nil || errors.Is(err, dberr.ErrNotFound) || errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &failure{errorType: pgErr.Code, sqlstate: pgErr.Code, message: pgErr.Severity + ": " + pgErr.Message}
	}
	f := &failure{message: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			f.errorType = k.name
			return f
		}
	}
	f.errorType = semconv.ErrorType(err).Value.AsString()
	return f
}

// kinds name evaldb's errors that carry no SQLSTATE, in the order they are
// tested (a pool timeout may wrap a deadline).
var kinds = []struct {
	err  error
	name string
}{
	{dberr.ErrPoolTimeout, "pool_timeout"},
	{dberr.ErrUnreachable, "unreachable"},
	{dberr.ErrConnClosed, "connection_closed"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

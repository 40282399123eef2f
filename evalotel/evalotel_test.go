package evalotel

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/aah/evaldb/dberr"
	"github.com/aah/evaldb/observe"
)

// recorder returns an Observer whose spans land in the returned recorder
// and whose metrics in the returned reader.
func recorder(t *testing.T) (*Observer, *tracetest.SpanRecorder, *sdkmetric.ManualReader) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	mr := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(mr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	o, err := New(&Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	return o, sr, mr
}

// attrs returns a span's attributes as a map of their values as text.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

var server = observe.Server{Address: "db.example", Port: 6543, Database: "evals"}

func TestStatementSpan(t *testing.T) {
	t.Parallel()
	o, sr, _ := recorder(t)
	ctx, end := o.StartStatement(context.Background(), &observe.Statement{
		Name: "GetEvalRun", SQL: "SELECT id FROM eval_runs WHERE id = $1", Operation: "SELECT", ReadOnly: true, Server: server,
	})
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		t.Error("StartStatement's context carries no span")
	}
	end(&observe.StatementEnd{Cache: observe.CacheMiss, ConnWait: 1500 * time.Millisecond, Replica: true, Retries: 1})
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "GetEvalRun" || s.SpanKind() != trace.SpanKindClient {
		t.Errorf("span %q kind %v, want GetEvalRun, client", s.Name(), s.SpanKind())
	}
	want := map[string]string{
		"db.system.name":         "postgresql",
		"db.namespace":           "evals",
		"db.operation.name":      "SELECT",
		"db.query.summary":       "GetEvalRun",
		"db.query.text":          "SELECT id FROM eval_runs WHERE id = $1",
		"server.address":         "db.example",
		"server.port":            "6543",
		"evaldb.read_only":       "true",
		"evaldb.cache":           "miss",
		"evaldb.connection.wait": "1.5",
		"evaldb.replica":         "true",
		"evaldb.retries":         "1",
	}
	if diff := cmp.Diff(want, attrs(s.Attributes())); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if s.Status().Code != codes.Unset {
		t.Errorf("status %v, want unset", s.Status())
	}
}

func TestStatementCacheHit(t *testing.T) {
	t.Parallel()
	o, sr, _ := recorder(t)
	_, end := o.StartStatement(context.Background(), &observe.Statement{Name: "GetUser", SQL: "SELECT 1", Operation: "SELECT", Server: server})
	end(&observe.StatementEnd{Cache: observe.CacheHit})
	got := attrs(sr.Ended()[0].Attributes())
	if got["evaldb.cache"] != "hit" {
		t.Errorf("evaldb.cache = %q, want hit", got["evaldb.cache"])
	}
	if _, ok := got["evaldb.connection.wait"]; ok {
		t.Error("a cache hit reports a connection wait; it used no connection")
	}
}

func TestStatementErrors(t *testing.T) {
	t.Parallel()
	pgErr := &pgconn.PgError{Severity: "ERROR", Code: "23505", Message: `duplicate key value violates unique constraint "users_email_key"`,
		Detail: "Key (email)=(someone@example.com) already exists."}
	tests := []struct {
		name              string
		err               error
		errorType, status string // "" = not a failure
		message           string
	}{
		{"PgError", fmt.Errorf("insert: %w", pgErr), "23505", "23505", `ERROR: duplicate key value violates unique constraint "users_email_key"`},
		{"Conflict", &dberr.ConflictError{Constraint: "users_email_key", Err: pgErr}, "23505", "23505", `ERROR: duplicate key value violates unique constraint "users_email_key"`},
		{"PoolTimeout", fmt.Errorf("%w (limit 4)", dberr.ErrPoolTimeout), "pool_timeout", "", "evaldb: timed out waiting for a free connection from the pool (limit 4)"},
		{"Unreachable", fmt.Errorf("%w: dial", dberr.ErrUnreachable), "unreachable", "", "evaldb: database server unreachable: dial"},
		{"ConnClosed", fmt.Errorf("%w: EOF", dberr.ErrConnClosed), "connection_closed", "", "evaldb: connection closed: EOF"},
		{"Canceled", context.Canceled, "canceled", "", "context canceled"},
		{"Deadline", context.DeadlineExceeded, "timeout", "", "context deadline exceeded"},
		{"Other", errors.New("boom"), "*errors.errorString", "", "boom"},
		{"NotFoundIsAnAnswer", fmt.Errorf("%w (%w)", dberr.ErrNotFound, pgx.ErrNoRows), "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, sr, mr := recorder(t)
			_, end := o.StartStatement(context.Background(), &observe.Statement{Name: "CreateUser", SQL: "INSERT …", Operation: "INSERT", Server: server})
			end(&observe.StatementEnd{Err: tt.err})
			s := sr.Ended()[0]
			got := attrs(s.Attributes())
			if got["error.type"] != tt.errorType {
				t.Errorf("error.type = %q, want %q", got["error.type"], tt.errorType)
			}
			if got["db.response.status_code"] != tt.status {
				t.Errorf("db.response.status_code = %q, want %q", got["db.response.status_code"], tt.status)
			}
			wantCode := codes.Error
			if tt.errorType == "" {
				wantCode = codes.Unset
			}
			if s.Status().Code != wantCode || s.Status().Description != tt.message {
				t.Errorf("status = %v %q, want %v %q", s.Status().Code, s.Status().Description, wantCode, tt.message)
			}
			m := durationPoint(t, mr)
			if v, _ := m.Attributes.Value("error.type"); v.AsString() != tt.errorType {
				t.Errorf("metric error.type = %q, want %q", v.AsString(), tt.errorType)
			}
		})
	}
}

// durationPoint returns the one db.client.operation.duration data point.
func durationPoint(t *testing.T, mr *sdkmetric.ManualReader) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := mr.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "db.client.operation.duration" {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok || len(h.DataPoints) != 1 {
				t.Fatalf("db.client.operation.duration = %#v, want one histogram point", m.Data)
			}
			if m.Unit != "s" {
				t.Errorf("unit %q, want s", m.Unit)
			}
			return h.DataPoints[0]
		}
	}
	t.Fatal("no db.client.operation.duration metric")
	return metricdata.HistogramDataPoint[float64]{}
}

func TestStatementMetrics(t *testing.T) {
	t.Parallel()
	o, _, mr := recorder(t)
	now := time.Unix(1000, 0)
	o.now = func() time.Time { return now }
	_, end := o.StartStatement(context.Background(), &observe.Statement{Name: "GetEvalRun", SQL: "SELECT …", Operation: "SELECT", Server: server})
	now = now.Add(250 * time.Millisecond)
	end(&observe.StatementEnd{Cache: observe.CacheMiss, ConnWait: 20 * time.Millisecond})
	p := durationPoint(t, mr)
	if p.Count != 1 || p.Sum != 0.25 {
		t.Errorf("count %d sum %v, want 1 and 0.25", p.Count, p.Sum)
	}
	want := map[string]string{"db.system.name": "postgresql", "db.namespace": "evals", "db.operation.name": "SELECT",
		"db.query.summary": "GetEvalRun", "server.address": "db.example", "server.port": "6543", "evaldb.cache": "miss"}
	if diff := cmp.Diff(want, attrs(p.Attributes.ToSlice())); diff != "" {
		t.Errorf("metric attributes (-want +got):\n%s", diff)
	}
	var rm metricdata.ResourceMetrics
	_ = mr.Collect(context.Background(), &rm)
	found := false
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "db.client.connection.wait_time" {
			h := m.Data.(metricdata.Histogram[float64])
			found = len(h.DataPoints) == 1 && h.DataPoints[0].Sum == 0.02
		}
	}
	if !found {
		t.Error("no db.client.connection.wait_time point of 0.02 s")
	}
}

func TestNoMeterProviderNoMetrics(t *testing.T) {
	t.Parallel()
	sr := tracetest.NewSpanRecorder()
	o, err := New(&Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)), OmitQueryText: true})
	if err != nil {
		t.Fatal(err)
	}
	if o.metrics {
		t.Error("metrics on without a MeterProvider")
	}
	_, end := o.StartStatement(context.Background(), &observe.Statement{Name: "GetUser", SQL: "SELECT 1", Server: server})
	end(nil)
	if _, ok := attrs(sr.Ended()[0].Attributes())["db.query.text"]; ok {
		t.Error("db.query.text present with OmitQueryText")
	}
}

func TestTxSpan(t *testing.T) {
	t.Parallel()
	o, sr, _ := recorder(t)
	ctx, tx := o.StartTx(context.Background(), &observe.Tx{Isolation: "serializable", ReadOnly: true, Server: server})
	_, end := o.StartStatement(ctx, &observe.Statement{Name: "GetEvalRun", Server: server})
	end(nil)
	tx.Retry(2, &pgconn.PgError{Code: "40001", Message: "could not serialize access"})
	tx.Retry(3, fmt.Errorf("%w: EOF", dberr.ErrConnClosed))
	tx.End(nil)
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	stmt, txs := spans[0], spans[1]
	if stmt.Parent().SpanID() != txs.SpanContext().SpanID() {
		t.Error("the statement's span is not a child of the transaction's")
	}
	if txs.Name() != SpanTx {
		t.Errorf("name %q, want %q", txs.Name(), SpanTx)
	}
	want := map[string]string{"db.system.name": "postgresql", "db.namespace": "evals", "server.address": "db.example", "server.port": "6543",
		"evaldb.tx.isolation": "serializable", "evaldb.read_only": "true", "evaldb.retries": "2"}
	if diff := cmp.Diff(want, attrs(txs.Attributes())); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	var events []map[string]string
	for _, e := range txs.Events() {
		m := attrs(e.Attributes)
		m["name"] = e.Name
		events = append(events, m)
	}
	wantEvents := []map[string]string{
		{"name": "retry", "evaldb.tx.attempt": "2", "error.type": "40001", "db.response.status_code": "40001"},
		{"name": "retry", "evaldb.tx.attempt": "3", "error.type": "connection_closed"},
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if txs.Status().Code != codes.Unset {
		t.Errorf("status %v, want unset", txs.Status())
	}
}

func TestTxSpanFails(t *testing.T) {
	t.Parallel()
	o, sr, _ := recorder(t)
	_, tx := o.StartTx(context.Background(), &observe.Tx{Server: server})
	tx.End(&pgconn.PgError{Severity: "ERROR", Code: "40P01", Message: "deadlock detected"})
	s := sr.Ended()[0]
	got := attrs(s.Attributes())
	if got["error.type"] != "40P01" || got["db.response.status_code"] != "40P01" || s.Status().Code != codes.Error {
		t.Errorf("attributes %v status %v, want 40P01 and an error status", got, s.Status())
	}
	if _, ok := got["evaldb.retries"]; ok {
		t.Error("evaldb.retries present without retries")
	}
}

func TestRecordSpan(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		end  observe.RecordEnd
		want map[string]string
	}{
		{"Batch", observe.RecordEnd{Method: observe.MethodBatch}, map[string]string{"evaldb.record.method": "batch"}},
		{"Copy", observe.RecordEnd{Method: observe.MethodCopy}, map[string]string{"evaldb.record.method": "copy"}},
		{"AlreadyRecorded", observe.RecordEnd{AlreadyRecorded: true}, map[string]string{"evaldb.record.already_recorded": "true"}},
		{"Failed", observe.RecordEnd{Method: observe.MethodBatch, Err: &pgconn.PgError{Code: "23503"}},
			map[string]string{"evaldb.record.method": "batch", "error.type": "23503", "db.response.status_code": "23503"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, sr, _ := recorder(t)
			_, end := o.StartRecord(context.Background(), &observe.Record{Results: 1200, Metrics: 3, Server: server})
			end(&tt.end)
			s := sr.Ended()[0]
			want := map[string]string{"db.system.name": "postgresql", "db.namespace": "evals", "server.address": "db.example", "server.port": "6543",
				"evaldb.record.results": "1200", "evaldb.record.metrics": "3"}
			for k, v := range tt.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, attrs(s.Attributes())); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			if s.Name() != SpanRecord {
				t.Errorf("name %q, want %q", s.Name(), SpanRecord)
			}
		})
	}
}

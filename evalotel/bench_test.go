package evalotel

import (
	"context"
	"testing"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/observe"
	"github.com/aah/evaldb/repo"
)

// BenchmarkObserver is the cost of one statement's span (and metric
// points) with the OpenTelemetry SDK exporting nowhere, sampling nothing or
// everything: what evalotel adds to every statement.
func BenchmarkObserver(b *testing.B) {
	st := &observe.Statement{Name: "GetEvalRun", SQL: "SELECT … WHERE id = $1", Operation: "SELECT", ReadOnly: true, Server: server}
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler
		metrics bool
	}{
		{"Unsampled", sdktrace.NeverSample(), false},
		{"Span", sdktrace.AlwaysSample(), false},
		{"SpanAndMetrics", sdktrace.AlwaysSample(), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := &Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(bc.sampler))}
			if bc.metrics {
				opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			}
			o, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, end := o.StartStatement(ctx, st)
				end(&observe.StatementEnd{Cache: observe.CacheHit})
			}
		})
	}
	// The SDK alone: a span with the same attributes, started and ended
	// directly.
	b.Run("SDKOnly", func(b *testing.B) {
		tr := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())).Tracer(ScopeName)
		attrs := append(serverAttrs(server), semconv.DBQuerySummary(st.Name), semconv.DBOperationName(st.Operation),
			semconv.DBQueryText(st.SQL), AttrReadOnly.Bool(true))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.Start(ctx, st.Name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
			span.SetAttributes(AttrCache.String("hit"))
			span.End()
		}
	})
}

// BenchmarkCachedRead is a cache hit through a Repo, the cheapest statement
// evaldb has, without an Observer and with evalotel (span and metrics): the
// overhead in proportion.
func BenchmarkCachedRead(b *testing.B) {
	url := dbtest.URL(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		otel bool
	}{{"NoObserver", false}, {"Evalotel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := &repo.Config{URL: url, Env: repo.Test, DisableListen: true}
			if bc.otel {
				o, err := New(&Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())),
					MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))})
				if err != nil {
					b.Fatal(err)
				}
				cfg.Observer = o
			}
			r, err := repo.Open(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			u, err := r.Queries().CreateUser(ctx, gen.CreateUserParams{Email: bc.name + "-" + uuid.NewString() + "@bench.example", Name: "Bench"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Queries().GetUser(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
			r.Cache().Wait()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Queries().GetUser(ctx, u.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package evalotel_test

import (
	"context"
	"errors"
	"log"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aah/evaldb/evalotel"
	"github.com/aah/evaldb/repo"
)

// iamToken stands for your cloud's token call, for example on AWS
// auth.BuildAuthToken(ctx, host+":"+port, region, user, credentials) from
// github.com/aws/aws-sdk-go-v2/feature/rds/auth. Tokens expire (RDS: after
// 15 minutes), so each new connection asks for a fresh one.
func iamToken(ctx context.Context, host string, port uint16, user string) (string, error) {
	return "token-for-" + user, nil
}

// A service wires its tracer and meter providers (with the exporters it
// uses, here none) and authenticates every new connection with a fresh IAM
// token. DATABASE_URL then holds no password:
// postgres://app@db.example.eu-west-1.rds.amazonaws.com:5432/evals?sslmode=verify-full
func Example_service() {
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider( /* sdktrace.WithBatcher(your OTLP exporter) */ )
	defer tp.Shutdown(ctx)
	mp := sdkmetric.NewMeterProvider( /* sdkmetric.WithReader(your reader) */ )
	defer mp.Shutdown(ctx)

	obs, err := evalotel.New(&evalotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := repo.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	cfg.Observer = obs // spans and metrics for every statement, transaction and recording
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		token, err := iamToken(ctx, cc.Host, cc.Port, cc.User)
		if err != nil {
			return err // fails this connection attempt; the token never reaches a log
		}
		cc.Password = token
		return nil
	}
	r, err := repo.Open(ctx, cfg) // once per process
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	// A span named GetEvalRun, with its attributes, and a duration point:
	if _, err := r.Queries().GetEvalRun(ctx, uuid.Nil); err != nil && !errors.Is(err, repo.ErrNotFound) {
		log.Print(err)
	}
}

// Package queries_test holds the integration tests of every generated query
// in gen/ (written in queries/*.sql), run against a real PostgreSQL through
// internal/dbtest: each test gets a fresh, fully migrated database.
package queries_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// setup returns a pool on a fresh migrated database and queries over it.
func setup(t *testing.T) (*pgxpool.Pool, *gen.Queries) {
	t.Helper()
	pool := dbtest.Pool(t)
	return pool, gen.New(pool)
}

// jsonEqual compares json.RawMessage values by meaning, not by bytes: jsonb
// normalises whitespace and key order.
var jsonEqual = cmp.Transformer("ParseJSON", func(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(m, &v); err != nil {
		return "invalid JSON: " + string(m)
	}
	return v
})

func ptr[T any](v T) *T { return &v }

// usec returns t rounded down to PostgreSQL's microsecond precision, without
// its monotonic reading, so that it survives a round trip unchanged.
func usec(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// serverNow returns the server's clock (now() of a fresh transaction).
func serverNow(t *testing.T, db gen.DBTX) time.Time {
	t.Helper()
	var now time.Time
	if err := db.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		t.Fatalf("SELECT now(): %v", err)
	}
	return now
}

// wantPgError fails the test unless err is a *pgconn.PgError with this
// SQLSTATE and constraint name.
func wantPgError(t *testing.T, what string, err error, code, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("%s: got error %v, want a PostgreSQL error %s on %s", what, err, code, constraint)
	}
	got := [2]string{pgErr.Code, pgErr.ConstraintName}
	want := [2]string{code, constraint}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: (code, constraint) mismatch (-want +got):\n%s\nerror: %v", what, diff, err)
	}
}

// wantNoRows fails the test unless err is pgx.ErrNoRows.
func wantNoRows(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("%s: got error %v, want pgx.ErrNoRows", what, err)
	}
}

// runParams returns the parameters of a valid running eval run.
func runParams(name string) gen.InsertEvalRunParams {
	return gen.InsertEvalRunParams{
		ID:        uuid.Must(uuid.NewV7()),
		Name:      name,
		Model:     "gpt-test",
		Dataset:   "gsm8k",
		Status:    "running",
		Config:    json.RawMessage(`{"temperature": 0.2, "shots": 5}`),
		StartedAt: usec(time.Now().Add(-time.Minute)),
	}
}

// mustInsertRun inserts a running eval run and returns it.
func mustInsertRun(t *testing.T, q *gen.Queries, name string) gen.EvalRun {
	t.Helper()
	run, err := q.InsertEvalRun(context.Background(), runParams(name))
	if err != nil {
		t.Fatalf("InsertEvalRun(%q): %v", name, err)
	}
	return run
}

// uuidLess orders UUIDs as PostgreSQL does (bytewise).
func uuidLess(a, b uuid.UUID) bool { return bytes.Compare(a[:], b[:]) < 0 }

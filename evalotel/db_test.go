package evalotel

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// spanNamed returns the ended spans named name, oldest first.
func spansNamed(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// TestOnRealDatabase runs statements, a retried transaction and recordings
// through a Repo on a real PostgreSQL with an evalotel Observer, and checks
// every attribute of the spans and the duration metric.
func TestOnRealDatabase(t *testing.T) {
	o, sr, mr := recorder(t)
	url := dbtest.URL(t)
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := repo.Open(ctx, &repo.Config{URL: url, Env: repo.Test, Observer: o, DisableListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	q := r.Queries()
	server := map[string]string{
		"db.system.name": "postgresql",
		"db.namespace":   cc.Database,
		"server.address": cc.Host,
		"server.port":    strconv.Itoa(int(cc.Port)),
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range server {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	const arg = "evalotel-argument-never-in-a-span@example.com"

	u, err := q.CreateUser(ctx, gen.CreateUserParams{Email: arg, Name: "Span"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.GetUser(ctx, u.ID); err != nil { // miss
		t.Fatal(err)
	}
	r.Cache().Wait()                                // ristretto admits asynchronously
	if _, err := q.GetUser(ctx, u.ID); err != nil { // hit
		t.Fatal(err)
	}
	_, dupErr := q.CreateUser(ctx, gen.CreateUserParams{Email: arg, Name: "Again"})
	if dupErr == nil {
		t.Fatal("a second user with the same email was created")
	}
	if _, err := q.GetUser(ctx, -1); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("GetUser(-1) = %v, want ErrNotFound", err)
	}

	t.Run("Statement", func(t *testing.T) {
		create := spansNamed(sr.Ended(), "CreateUser")
		if len(create) != 2 {
			t.Fatalf("%d CreateUser spans, want 2", len(create))
		}
		got := attrs(create[0].Attributes())
		if _, ok := got["evaldb.connection.wait"]; !ok {
			t.Error("no evaldb.connection.wait on a statement that took a connection")
		}
		delete(got, "evaldb.connection.wait")
		want := with(map[string]string{"db.operation.name": "INSERT", "db.query.summary": "CreateUser", "db.query.text": gen.CreateUser})
		if d := diffMaps(want, got); d != "" {
			t.Errorf("CreateUser span attributes:\n%s", d)
		}
		if create[0].SpanKind() != trace.SpanKindClient || create[0].Status().Code != codes.Unset {
			t.Errorf("CreateUser span kind %v status %v, want client, unset", create[0].SpanKind(), create[0].Status())
		}
	})
	t.Run("Failure", func(t *testing.T) {
		dup := spansNamed(sr.Ended(), "CreateUser")[1]
		got := attrs(dup.Attributes())
		if got["db.response.status_code"] != "23505" || got["error.type"] != "23505" {
			t.Errorf("failed CreateUser: db.response.status_code %q error.type %q, want 23505 (%v)", got["db.response.status_code"], got["error.type"], dupErr)
		}
		if dup.Status().Code != codes.Error || !strings.Contains(dup.Status().Description, "users_email_key") {
			t.Errorf("failed CreateUser status %v, want an error naming the constraint", dup.Status())
		}
	})
	t.Run("Cache", func(t *testing.T) {
		get := spansNamed(sr.Ended(), "GetUser")
		if len(get) != 3 {
			t.Fatalf("%d GetUser spans, want 3", len(get))
		}
		var outcomes []string
		for _, s := range get {
			outcomes = append(outcomes, attrs(s.Attributes())["evaldb.cache"])
		}
		if strings.Join(outcomes, ",") != "miss,hit,miss" {
			t.Errorf("cache outcomes %v, want miss, hit, miss", outcomes)
		}
		if _, ok := attrs(get[1].Attributes())["evaldb.connection.wait"]; ok {
			t.Error("a cache hit reports a connection wait")
		}
		if a := attrs(get[2].Attributes()); a["error.type"] != "" || get[2].Status().Code != codes.Unset {
			t.Errorf("a query that found no row is marked failed: %v %v", a, get[2].Status())
		}
		if a := attrs(get[0].Attributes()); a["db.operation.name"] != "SELECT" || a["evaldb.read_only"] != "true" || a["db.query.text"] != gen.GetUser {
			t.Errorf("GetUser attributes %v", a)
		}
	})

	t.Run("Transaction", func(t *testing.T) {
		sr.Reset()
		attempt := 0
		err := r.Tx(ctx, &txn.Options{Isolation: pgx.Serializable}, func(ctx context.Context, tx *txn.Tx) error {
			attempt++
			if _, err := tx.GetUser(ctx, u.ID); err != nil {
				return err
			}
			if attempt == 1 {
				return &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "could not serialize access"}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		txs := spansNamed(sr.Ended(), SpanTx)
		if len(txs) != 1 {
			t.Fatalf("%d transaction spans, want 1", len(txs))
		}
		want := with(map[string]string{"evaldb.tx.isolation": string(pgx.Serializable), "evaldb.retries": "1"})
		if d := diffMaps(want, attrs(txs[0].Attributes())); d != "" {
			t.Errorf("transaction span attributes:\n%s", d)
		}
		ev := txs[0].Events()
		if len(ev) != 1 || ev[0].Name != EventRetry {
			t.Fatalf("events %v, want one retry", ev)
		}
		if d := diffMaps(map[string]string{"evaldb.tx.attempt": "2", "error.type": "40001", "db.response.status_code": "40001"}, attrs(ev[0].Attributes)); d != "" {
			t.Errorf("retry event attributes:\n%s", d)
		}
		// The statements run through the transaction's typed queries are
		// its children, one per attempt, with the server's attributes.
		// (Those sent through tx.Raw() are not reported.)
		var inTx int
		for _, s := range spansNamed(sr.Ended(), "GetUser") {
			if s.Parent().SpanID() != txs[0].SpanContext().SpanID() {
				continue
			}
			inTx++
			if a := attrs(s.Attributes()); a["db.namespace"] == "" || a["server.port"] == "" || a["db.query.text"] != gen.GetUser {
				t.Errorf("GetUser inside the transaction: attributes %v, want the server's and the query text", a)
			}
		}
		if inTx != 2 {
			t.Errorf("%d GetUser spans are children of the transaction span, want 2 (one per attempt)", inTx)
		}
	})

	t.Run("RecordEvalRun", func(t *testing.T) {
		for _, tt := range []struct {
			name, method string
			threshold    int
		}{{"Batch", "batch", 0}, {"Copy", "copy", 2}} {
			sr.Reset()
			run := txn.Run{ID: uuid.Must(uuid.NewV7()), Name: "otel", Model: "m", Dataset: "d",
				Results: []txn.Result{{CaseID: "a", Score: 1, Passed: true}, {CaseID: "b"}, {CaseID: "c"}},
				Metrics: []txn.Metric{{Name: "accuracy", Value: 0.33}}}
			if _, err := r.RecordEvalRun(ctx, run, &txn.Options{CopyThreshold: tt.threshold}); err != nil {
				t.Fatal(err)
			}
			recs := spansNamed(sr.Ended(), SpanRecord)
			if len(recs) != 1 {
				t.Fatalf("%s: %d RecordEvalRun spans, want 1", tt.name, len(recs))
			}
			want := with(map[string]string{"evaldb.record.results": "3", "evaldb.record.metrics": "1", "evaldb.record.method": tt.method})
			if d := diffMaps(want, attrs(recs[0].Attributes())); d != "" {
				t.Errorf("%s: RecordEvalRun span attributes:\n%s", tt.name, d)
			}
			if _, err := r.RecordEvalRun(ctx, run, &txn.Options{CopyThreshold: tt.threshold}); err != nil {
				t.Fatal(err)
			}
			recs = spansNamed(sr.Ended(), SpanRecord)
			if len(recs) != 2 || attrs(recs[1].Attributes())["evaldb.record.already_recorded"] != "true" {
				t.Errorf("%s: the second recording's span does not say already_recorded", tt.name)
			}
		}
	})

	t.Run("RecordEvalRunInvalid", func(t *testing.T) {
		sr.Reset()
		if _, err := r.RecordEvalRun(ctx, txn.Run{Name: "no model or dataset"}, nil); err == nil {
			t.Fatal("an invalid run was recorded")
		}
		recs := spansNamed(sr.Ended(), SpanRecord)
		if len(recs) != 1 {
			t.Fatalf("%d RecordEvalRun spans, want 1", len(recs))
		}
		if got := attrs(recs[0].Attributes())["error.type"]; got != "*txn.ValidationError" || recs[0].Status().Code != codes.Error {
			t.Errorf("invalid run's span: error.type %q status %v, want *txn.ValidationError and an error", got, recs[0].Status())
		}
	})

	t.Run("NoArgumentsOrSecrets", func(t *testing.T) {
		for _, s := range sr.Ended() {
			for _, kv := range s.Attributes() {
				if v := kv.Value.String(); strings.Contains(v, arg) || strings.Contains(v, dbtest.Password) {
					t.Errorf("span %s attribute %s holds an argument or the password: %q", s.Name(), kv.Key, v)
				}
			}
			if strings.Contains(s.Status().Description, arg) || strings.Contains(s.Status().Description, dbtest.Password) {
				t.Errorf("span %s status holds an argument or the password", s.Name())
			}
		}
	})

	t.Run("Metric", func(t *testing.T) {
		var rm metricdata.ResourceMetrics
		if err := mr.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		byCache := map[string]uint64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "db.client.operation.duration" {
					continue
				}
				for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					if v, _ := p.Attributes.Value("db.query.summary"); v.AsString() == "GetUser" {
						c, _ := p.Attributes.Value("evaldb.cache")
						byCache[c.AsString()] += p.Count
					}
				}
			}
		}
		if byCache["hit"] < 1 || byCache["miss"] < 2 {
			t.Errorf("GetUser durations by cache outcome %v, want ≥1 hit and ≥2 misses", byCache)
		}
	})
}

// diffMaps describes how got differs from want.
func diffMaps(want, got map[string]string) string {
	var b strings.Builder
	for k, v := range want {
		if got[k] != v {
			b.WriteString("  " + k + ": got " + strconv.Quote(got[k]) + ", want " + strconv.Quote(v) + "\n")
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			b.WriteString("  " + k + ": unexpected " + strconv.Quote(v) + "\n")
		}
	}
	return b.String()
}

package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/schema"
)

func execAll(t *testing.T, dbURL string, sql ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// openDB opens dbURL through schema.Open, closed when the test ends.
func openDB(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := schema.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// migrationsByHand returns the Up sections of the embedded migrations: what
// a database created outside goose (Prisma with @@map, or by hand) holds.
func migrationsByHand(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(schema.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var ups []string
	for _, f := range files {
		b, err := fs.ReadFile(schema.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		ups = append(ups, up)
	}
	return ups
}

func TestMigrateRefusesPrismaDatabase(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL,
		`CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, migration_name varchar(255) NOT NULL)`,
		`CREATE TABLE "EvalRun" (id uuid PRIMARY KEY, name text NOT NULL)`,
		`CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL)`)

	_, err := schema.Migrate(context.Background(), dbURL)
	var ee *schema.ExistingSchemaError
	if !errors.As(err, &ee) {
		t.Fatalf("Migrate() = %v, want an *ExistingSchemaError", err)
	}
	if diff := cmp.Diff(&schema.ExistingSchemaError{Prisma: true, Lookalikes: []string{"EvalRun", "User"}}, ee,
		cmp.AllowUnexported(schema.ExistingSchemaError{})); diff != "" {
		t.Errorf("ExistingSchemaError (-want +got):\n%s", diff)
	}
	for _, want := range []string{"_prisma_migrations", "@@map", "evaldb migrate baseline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if diff := cmp.Diff([]string{"EvalRun", "User", "_prisma_migrations"}, tables(t, dbURL)); diff != "" {
		t.Errorf("Migrate() changed the tables (-want +got):\n%s", diff)
	}
}

func TestMigrateRefusesExistingTables(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)[0])

	_, err := schema.Migrate(context.Background(), dbURL)
	var ee *schema.ExistingSchemaError
	if !errors.As(err, &ee) {
		t.Fatalf("Migrate() = %v, want an *ExistingSchemaError (never a raw 42P07)", err)
	}
	if diff := cmp.Diff([]string{"performance_metrics", "student_profiles", "users"}, ee.Tables); diff != "" {
		t.Errorf("Tables (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "evaldb migrate baseline") {
		t.Errorf("error %q does not say to run baseline", err)
	}
}

func TestBaselineAdoptsMatchingDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)...)
	// The hand-made database lacks the generated triggers of later tables;
	// drop one of 00003's too, as a database Prisma made would have none.
	execAll(t, dbURL, `DROP TRIGGER users_notify_invalidate ON users`)

	db := openDB(t, dbURL)
	got, err := schema.Baseline(ctx, db)
	if err != nil {
		t.Fatalf("Baseline() = %v", err)
	}
	if diff := cmp.Diff(allVersions(t), got); diff != "" {
		t.Errorf("Baseline() versions (-want +got):\n%s", diff)
	}
	if applied, err := schema.Migrate(ctx, dbURL); err != nil || len(applied) != 0 {
		t.Errorf("Migrate() after Baseline = %v, %v; want nothing to apply", applied, err)
	}
	if diff := cmp.Diff(allTables, triggeredTables(t, dbURL)); diff != "" {
		t.Errorf("tables with a notification trigger after Baseline (-want +got):\n%s", diff)
	}
	if _, err := schema.Baseline(ctx, db); err == nil || !strings.Contains(err.Error(), "evaldb migrate") {
		t.Errorf("second Baseline() = %v, want a refusal saying to run migrate", err)
	}
}

func TestBaselineNamesEachDifference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)...)
	execAll(t, dbURL,
		// What Prisma's DateTime and a forgotten relation action look like.
		`ALTER TABLE eval_runs ALTER COLUMN started_at TYPE timestamp(3)`,
		`ALTER TABLE eval_metrics DROP CONSTRAINT eval_metrics_run_id_fkey`,
		`ALTER TABLE eval_metrics ADD FOREIGN KEY (run_id) REFERENCES eval_runs (id)`,
		`ALTER TABLE users ALTER COLUMN name DROP NOT NULL`,
		`ALTER TABLE users ADD COLUMN tenant text NOT NULL DEFAULT 'a'`, // fine: has a default
		`ALTER TABLE users ADD COLUMN org text NOT NULL`,
		`ALTER TABLE student_profiles DROP COLUMN cohort`,
		`DROP TABLE performance_metrics`)

	db := openDB(t, dbURL)
	_, err := schema.Baseline(ctx, db)
	if !errors.Is(err, schema.ErrSchemaMismatch) {
		t.Fatalf("Baseline() = %v, want ErrSchemaMismatch", err)
	}
	for _, want := range []string{
		"table eval_runs: column started_at is timestamp(3) without time zone, the migrations make it timestamp with time zone",
		"table eval_metrics: FOREIGN KEY (run_id) REFERENCES eval_runs (id) ON DELETE CASCADE is missing",
		"table eval_metrics: has FOREIGN KEY (run_id) REFERENCES eval_runs (id), which the migrations do not create",
		"table users: column name is nullable, the migrations make it NOT NULL",
		"table users: column org (text NOT NULL, no default) is not in the migrations",
		"table student_profiles: column cohort (text) is missing",
		"table performance_metrics is missing",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Baseline() error does not name %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "tenant") {
		t.Errorf("Baseline() error names the defaulted extra column tenant:\n%v", err)
	}
	if slices.Contains(tables(t, dbURL), "goose_db_version") || strings.Contains(strings.Join(tables(t, dbURL), ","), "evaldb_baseline") {
		t.Errorf("a failed Baseline() left tables behind: %v", tables(t, dbURL))
	}
}

// triggeredTables lists the tables that have a statement-level trigger
// running evaldb_notify_invalidate on INSERT, UPDATE, DELETE and TRUNCATE.
func triggeredTables(t *testing.T, dbURL string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT DISTINCT c.relname::text FROM pg_trigger tg
		JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_proc p ON p.oid = tg.tgfoid
		WHERE p.proname = 'evaldb_notify_invalidate' AND tg.tgenabled <> 'D'
		  AND tg.tgtype & 1 = 0 AND tg.tgtype & 60 = 60 ORDER BY 1`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestEveryTableHasANotificationTrigger checks the generated triggers: after
// Migrate, every table of the database has one, and cachegen's table list
// is exactly the database's.
func TestEveryTableHasANotificationTrigger(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	if diff := cmp.Diff(tables(t, dbURL), triggeredTables(t, dbURL)); diff != "" {
		t.Errorf("tables with a notification trigger (-all tables +triggered):\n%s", diff)
	}
	if diff := cmp.Diff(tables(t, dbURL), schema.Tables); diff != "" {
		t.Errorf("schema.Tables (-database +generated):\n%s", diff)
	}
}

// TestAdoptionSurvivesAnEmptyVersionTable: goose creates its version table
// on any first contact (migrate status), and a failed first migration can
// leave one: without an applied migration it is no history, so Migrate
// still refuses and Baseline still adopts.
func TestAdoptionSurvivesAnEmptyVersionTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)...)
	db := openDB(t, dbURL)
	p, err := schema.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Status(ctx); err != nil { // creates goose_db_version
		t.Fatal(err)
	}
	var ee *schema.ExistingSchemaError
	if _, err := schema.Migrate(ctx, dbURL); !errors.As(err, &ee) {
		t.Fatalf("Migrate() after goose made its version table = %v, want an *ExistingSchemaError", err)
	}
	got, err := schema.Baseline(ctx, db)
	if err != nil {
		t.Fatalf("Baseline() = %v", err)
	}
	if diff := cmp.Diff(allVersions(t), got); diff != "" {
		t.Errorf("Baseline() versions (-want +got):\n%s", diff)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != "applied" {
			t.Errorf("migration %d is %s after Baseline, want applied", s.Source.Version, s.State)
		}
	}
}

// TestBaselineAppliesNewerMigrations adopts a database made from the
// migrations of an earlier evaldb (the first four, before the stored run
// summaries): Baseline records those and applies the later ones, whose
// triggers a database made by hand or by Prisma would otherwise lack.
func TestBaselineAppliesNewerMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)[:4]...)
	execAll(t, dbURL, `DROP TRIGGER users_notify_invalidate ON users`)
	db := openDB(t, dbURL)
	got, err := schema.Baseline(ctx, db)
	if err != nil {
		t.Fatalf("Baseline() = %v", err)
	}
	if diff := cmp.Diff(allVersions(t)[:4], got); diff != "" {
		t.Errorf("Baseline() recorded versions (-want +got):\n%s", diff)
	}
	p, err := schema.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != "applied" {
			t.Errorf("migration %d is %s after Baseline, want applied", s.Source.Version, s.State)
		}
	}
	var triggers int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_trigger
		WHERE tgrelid = 'eval_results'::regclass AND tgname LIKE 'eval_results_forget_summaries_%'`).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if triggers != 4 {
		t.Errorf("eval_results has %d of the summary triggers after Baseline, want 4", triggers)
	}
	if diff := cmp.Diff(allTables, triggeredTables(t, dbURL)); diff != "" {
		t.Errorf("tables with a notification trigger after Baseline (-want +got):\n%s", diff)
	}
}

// TestBaselineNamesAMissingTrigger: a database with every table but
// without one of the summary triggers (a table made by hand from a
// migration, its triggers forgotten) is refused, naming the trigger, since
// its stored summaries would go stale.
func TestBaselineNamesAMissingTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)...)
	execAll(t, dbURL, `DROP TRIGGER eval_results_forget_summaries_update ON eval_results`)
	db := openDB(t, dbURL)
	_, err := schema.Baseline(ctx, db)
	if !errors.Is(err, schema.ErrSchemaMismatch) {
		t.Fatalf("Baseline() = %v, want ErrSchemaMismatch", err)
	}
	want := "table eval_results: TRIGGER eval_results_forget_summaries_update AFTER UPDATE ON eval_results REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION eval_results_forget_summaries() is missing"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Baseline() error does not name the trigger %q:\n%v", want, err)
	}
	if slices.Contains(tables(t, dbURL), "goose_db_version") {
		t.Errorf("a failed Baseline() recorded migrations")
	}
}

// indexExists reports whether the database has an index of that name.
func indexExists(t *testing.T, dbURL, name string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestBaselineAppliesAMissingIndex: a database made from the first three
// migrations (v0.1's, by Prisma or by hand) lacks migration 00004's index.
// Baseline records only what the database matches, so 00004 runs and the
// index exists afterwards; it used to record 00004 too and leave the
// filtered listing scanning the table.
func TestBaselineAppliesAMissingIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)[:3]...)
	db := openDB(t, dbURL)
	got, err := schema.Baseline(ctx, db)
	if err != nil {
		t.Fatalf("Baseline() = %v", err)
	}
	if diff := cmp.Diff(allVersions(t)[:3], got); diff != "" {
		t.Errorf("Baseline() recorded versions (-want +got):\n%s", diff)
	}
	if !indexExists(t, dbURL, "eval_runs_model_created_at_id_idx") {
		t.Error("after Baseline the database lacks migration 00004's index")
	}
}

// TestBaselineNamesAMissingIndex: with every table present (so no later
// migration can be applied instead), a missing index is a difference, named
// with the statement that makes it.
func TestBaselineNamesAMissingIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.GetServer(t).CreateDatabase(t)
	execAll(t, dbURL, migrationsByHand(t)...)
	execAll(t, dbURL, `DROP INDEX eval_runs_model_created_at_id_idx`,
		`CREATE INDEX my_own_idx ON eval_runs (name)`) // an extra index is the database's own
	db := openDB(t, dbURL)
	_, err := schema.Baseline(ctx, db)
	if !errors.Is(err, schema.ErrSchemaMismatch) {
		t.Fatalf("Baseline() = %v, want ErrSchemaMismatch", err)
	}
	want := "table eval_runs: INDEX USING btree (model, created_at, id) is missing; create it (CREATE INDEX eval_runs_model_created_at_id_idx ON eval_runs USING btree (model, created_at, id)) and run baseline again"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Baseline() error does not name the index %q:\n%v", want, err)
	}
	if strings.Contains(err.Error(), "my_own_idx") || strings.Contains(err.Error(), "(name)") {
		t.Errorf("Baseline() error names the database's own extra index:\n%v", err)
	}
}

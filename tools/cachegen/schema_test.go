package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// evolvedSchema is schema/ plus a later migration with what the generator
// must see through: a view, a materialized view, SQL and plpgsql functions,
// triggers that write other tables, a partitioned table, and an FK with ON
// UPDATE CASCADE.
const evolvedSchema = `
CREATE TABLE datasets (id bigint PRIMARY KEY, name text NOT NULL);
ALTER TABLE eval_runs ADD COLUMN dataset_id bigint REFERENCES datasets (id) ON DELETE SET NULL ON UPDATE CASCADE;
CREATE TABLE audit_log (id bigserial PRIMARY KEY, what text);
CREATE TABLE counters (name text PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
CREATE VIEW run_pass_rates AS
    SELECT r.id, avg(CASE WHEN res.passed THEN 1.0 ELSE 0.0 END) AS pass_rate
    FROM eval_runs r JOIN eval_results res ON res.run_id = r.id GROUP BY r.id;
CREATE VIEW dataset_runs AS SELECT d.name, p.pass_rate FROM datasets d JOIN eval_runs r ON r.dataset_id = d.id JOIN run_pass_rates p ON p.id = r.id;
CREATE MATERIALIZED VIEW dataset_stats AS SELECT dataset_id, count(*) AS runs FROM eval_runs GROUP BY dataset_id;
CREATE FUNCTION run_pass_rate(run uuid) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END)::float8 FROM eval_results WHERE run_id = run
$$;
CREATE FUNCTION stamped() RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() $$;
CREATE FUNCTION count_datasets() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    n := (SELECT count(*) FROM datasets);
    RETURN n;
END $$;
CREATE FUNCTION dynamic_count(t text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM ' || quote_ident(t) INTO n;
    RETURN n;
END $$;
-- cache: reads=datasets
CREATE FUNCTION declared_count(t text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN dynamic_count(t);
END $$;
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (what) VALUES (TG_TABLE_NAME || ' ' || TG_OP);
    RETURN NULL;
END $$;
CREATE TRIGGER datasets_audit AFTER INSERT OR DELETE ON datasets FOR EACH ROW EXECUTE FUNCTION audit();
CREATE FUNCTION dyn_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'INSERT INTO ' || TG_ARGV[0] || ' (what) VALUES ($1)' USING TG_OP;
    RETURN NULL;
END $$;
CREATE TRIGGER counters_audit AFTER UPDATE ON counters FOR EACH ROW EXECUTE FUNCTION dyn_audit('audit_log');
CREATE TABLE tallies (name text PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
-- The trigger's function runs dynamic SQL; this line says what it writes.
-- cache: writes=audit_log
CREATE TRIGGER tallies_audit AFTER UPDATE ON tallies FOR EACH ROW EXECUTE FUNCTION dyn_audit('audit_log');
CREATE FUNCTION bump(counter text) RETURNS bigint LANGUAGE sql BEGIN ATOMIC
    UPDATE tallies SET n = n + 1 WHERE name = counter RETURNING n;
END;
CREATE TABLE grades (name text);
CREATE TABLE grade_log (name text);
-- One function for two triggers with transition tables, one per event, each
-- branch reading its own trigger's.
CREATE FUNCTION log_grades() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO grade_log SELECT name FROM added;
    ELSE
        INSERT INTO grade_log SELECT name FROM removed;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER grades_log_insert AFTER INSERT ON grades REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION log_grades();
CREATE TRIGGER grades_log_delete AFTER DELETE ON grades REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION log_grades();
CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE archived_runs (id uuid PRIMARY KEY, model text);
CREATE RULE archive_on_delete AS ON DELETE TO datasets DO ALSO INSERT INTO archived_runs (id, model) SELECT id, model FROM eval_runs WHERE dataset_id = OLD.id;
CREATE RULE dropped AS ON UPDATE TO audit_log DO INSTEAD NOTHING;
CREATE RULE gone AS ON INSERT TO tallies DO ALSO DELETE FROM counters WHERE name = NEW.name;
DROP RULE gone ON tallies;
CREATE VIEW writable_archive AS SELECT id, model, 1 AS one FROM archived_runs;
CREATE RULE archive_insert AS ON INSERT TO writable_archive DO INSTEAD INSERT INTO archived_runs VALUES (NEW.id, NEW.model);
CREATE TABLE tenant_notes (id bigint PRIMARY KEY, tenant text, body text);
ALTER TABLE tenant_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_notes USING (tenant = current_setting('app.tenant'));
CREATE FOREIGN TABLE remote_scores (run_id uuid, score float8) SERVER warehouse;
`

func evolved(t *testing.T) *schemaInfo {
	t.Helper()
	si := testSchema(t)
	if err := si.load("00004_evolve.sql", evolvedSchema); err != nil {
		t.Fatal(err)
	}
	return si
}

func TestAnalyzeEvolvedSchema(t *testing.T) {
	t.Parallel()
	si := evolved(t)
	runs := []string{"eval_metrics", "eval_results", "eval_runs"}
	for _, tc := range []struct {
		name, sql string
		want      access
	}{
		{"ViewReadsBaseTables", "SELECT * FROM run_pass_rates",
			access{reads: []string{"eval_results", "eval_runs"}}},
		{"NestedView", "SELECT * FROM dataset_runs",
			access{reads: []string{"datasets", "eval_results", "eval_runs"}}},
		{"MatviewIsARelation", "SELECT * FROM dataset_stats",
			access{reads: []string{"dataset_stats"}}},
		{"RefreshIsAWrite", "REFRESH MATERIALIZED VIEW dataset_stats",
			access{writes: []string{"dataset_stats"}}},
		{"SQLFunctionReads", "SELECT id, run_pass_rate(id) FROM eval_runs",
			access{reads: []string{"eval_results", "eval_runs"}}},
		{"SQLFunctionWrites", "SELECT bump($1)",
			access{writes: []string{"audit_log", "tallies"}}},
		{"SQLFunctionCallsNow", "SELECT stamped()",
			access{uncacheable: "calls now(), whose result changes between calls"}},
		{"PlpgsqlFunctionStaticSQL", "SELECT count_datasets()",
			access{reads: []string{"datasets"}}},
		{"DeclaredFunction", "SELECT declared_count('x')",
			access{reads: []string{"datasets"}}},
		{"Nextval", "SELECT nextval('audit_log_id_seq')",
			access{uncacheable: "calls nextval(), which changes database state", primaryOnly: "calls nextval(), which changes database state"}},
		{"Now", "SELECT * FROM eval_runs WHERE started_at > now() - interval '1 day'",
			access{reads: []string{"eval_runs"}, uncacheable: "calls now(), whose result changes between calls"}},
		{"CurrentTimestamp", "SELECT * FROM eval_runs WHERE started_at > CURRENT_TIMESTAMP",
			access{reads: []string{"eval_runs"}, uncacheable: "uses CURRENT_TIMESTAMP, which changes between calls"}},
		{"Random", "SELECT * FROM eval_runs ORDER BY random() LIMIT 1",
			access{reads: []string{"eval_runs"}, uncacheable: "calls random(), whose result changes between calls"}},
		{"TriggerFollowed", "INSERT INTO datasets (id, name) VALUES (1, 'd')",
			access{writes: []string{"audit_log", "datasets"}}},
		{"TriggerAndFKFollowed", "DELETE FROM datasets",
			access{writes: []string{"archived_runs", "audit_log", "datasets", "eval_metrics", "eval_results", "eval_runs"}}},
		{"UpdateCascade", "UPDATE datasets SET id = id + 1",
			access{writes: []string{"datasets", "eval_metrics", "eval_results", "eval_runs"}}},
		{"TruncateCascade", "TRUNCATE datasets CASCADE",
			access{reads: []string{"datasets"}, writes: []string{"datasets", "eval_metrics", "eval_results", "eval_runs"}}},
		{"TransitionTablesAreNotTables", "INSERT INTO grades (name) VALUES ('t')",
			access{writes: []string{"grade_log", "grades"}}},
		{"TransitionTablesOfEachEvent", "DELETE FROM grades",
			access{writes: []string{"grade_log", "grades"}}},
		{"PartitionWriteReachesParent", "INSERT INTO events_2026 VALUES (1, '2026-02-02')",
			access{writes: []string{"events", "events_2026"}}},
		{"ParentWriteReachesPartitions", "DELETE FROM events",
			access{writes: []string{"events", "events_2026"}}},
		{"WriteThroughView", "DELETE FROM run_pass_rates",
			access{writes: append(runs[:0:0], runs...)}},
		{"RuleFollowed", "DELETE FROM datasets WHERE id = $1",
			access{writes: []string{"archived_runs", "audit_log", "datasets", "eval_metrics", "eval_results", "eval_runs"}}},
		{"InsteadRuleOnView", "INSERT INTO writable_archive (id, model) VALUES ($1, $2)",
			access{writes: []string{"archived_runs"}}},
		{"DroppedRuleNotFollowed", "INSERT INTO tallies (name) VALUES ('x')",
			access{writes: []string{"tallies"}}},
		{"RowLevelSecurity", "SELECT body FROM tenant_notes WHERE id = $1",
			access{reads: []string{"tenant_notes"}, uncacheable: "reads tenant_notes, which has row-level security: its rows depend on the session's role and settings, which a cache key does not hold"}},
		{"ForeignTable", "SELECT score FROM remote_scores WHERE run_id = $1",
			access{reads: []string{"remote_scores"}, uncacheable: "reads foreign table remote_scores (server warehouse), whose writes happen where no trigger of this database sees them"}},
		{"WriteForeignTable", "INSERT INTO remote_scores VALUES ($1, $2)",
			access{writes: []string{"remote_scores"}}},
		{"NowLiteral", "SELECT * FROM eval_runs WHERE started_at > 'now'::timestamptz - interval '1 day'",
			access{reads: []string{"eval_runs"}, uncacheable: "casts 'now' to timestamptz, which changes between calls"}},
		{"TodayLiteral", "SELECT count(*) FROM eval_runs WHERE started_at >= date 'Today'",
			access{reads: []string{"eval_runs"}, uncacheable: "casts 'today' to date, which changes between calls"}},
		{"OtherLiteralIsPure", "SELECT * FROM eval_runs WHERE started_at > '2026-01-01'::timestamptz",
			access{reads: []string{"eval_runs"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := si.analyze(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(access{})); diff != "" {
				t.Errorf("analyze() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnalyzeRefusals(t *testing.T) {
	t.Parallel()
	si := evolved(t)
	for _, tc := range []struct{ name, sql, want string }{
		{"UnknownTable", "SELECT * FROM no_such_table", "unknown table(s) no_such_table"},
		{"UnanalysableTrigger", "UPDATE counters SET n = 0", "writes counters, whose trigger counters_audit (schema/00004_evolve.sql) runs dyn_audit: dyn_audit() runs dynamic SQL (EXECUTE)"},
		{"OtherStatement", "LOCK TABLE users", "cannot analyse a LockStmt statement"},
		{"OtherSchemaRead", "SELECT * FROM analytics.events", "analytics.events is in schema analytics"},
		{"OtherSchemaWrite", "INSERT INTO analytics.users (id) VALUES (1)", "analytics.users is in schema analytics"},
		{"PublicIsTheMigratedSchema", "SELECT * FROM public.no_such_table", "unknown table(s) no_such_table"},
	} {
		_, err := si.analyze(tc.sql)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: analyze(%q) = %v, want an error containing %q", tc.name, tc.sql, err, tc.want)
		}
	}
}

func TestLoadRefusesOtherSchemas(t *testing.T) {
	t.Parallel()
	for _, ddl := range []string{
		"CREATE TABLE analytics.events (id bigint)",
		"CREATE VIEW analytics.v AS SELECT 1",
		"CREATE MATERIALIZED VIEW analytics.mv AS SELECT 1",
		"CREATE FOREIGN TABLE analytics.f (id int) SERVER s",
	} {
		si := testSchema(t)
		err := si.load("00100_other.sql", ddl)
		if err == nil || !strings.Contains(err.Error(), "00100_other.sql") || !strings.Contains(err.Error(), "in schema analytics") || !strings.Contains(err.Error(), "unqualified") {
			t.Errorf("load(%q) = %v, want an error naming the file and the schema, saying what to do", ddl, err)
		}
	}
	si := testSchema(t)
	if err := si.load("00100_public.sql", "CREATE TABLE public.events (id bigint)"); err != nil || !si.tables["events"] {
		t.Errorf("load(public.events) = %v, tables[events] = %v; want it loaded", err, si.tables["events"])
	}
}

func TestLoadFollowsFunctionRenames(t *testing.T) {
	t.Parallel()
	si := evolved(t)
	if err := si.load("00101_rename.sql", `
ALTER FUNCTION run_pass_rate(uuid) RENAME TO pass_rate_of;
ALTER FUNCTION audit RENAME TO audit_row;
ALTER FUNCTION count_datasets() RENAME TO dataset_count;`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sql string
		want      access
	}{
		{"RenamedSQLFunction", "SELECT pass_rate_of($1)", access{reads: []string{"eval_results"}}},
		{"RenamedPlpgsqlFunction", "SELECT dataset_count()", access{reads: []string{"datasets"}}},
		{"OldNameIsGone", "SELECT run_pass_rate($1)", access{opaque: []string{"run_pass_rate() is neither a built-in cachegen knows nor a function of schema/"}}},
		// The trigger runs the renamed function: still followed.
		{"TriggerOfRenamedFunction", "INSERT INTO datasets (id, name) VALUES (1, 'd')", access{writes: []string{"audit_log", "datasets"}}},
	} {
		got, err := si.analyze(tc.sql)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(access{})); diff != "" {
			t.Errorf("%s: analyze() mismatch (-want +got):\n%s", tc.name, diff)
		}
	}
	if err := si.load("00102_move.sql", "ALTER TABLE datasets SET SCHEMA archive"); err == nil || !strings.Contains(err.Error(), "datasets is in schema archive") {
		t.Errorf("SET SCHEMA archive: %v, want an error saying the table left the migrated schema", err)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	si := evolved(t)
	analyse := func(sql string, doc ...string) (access, error) {
		a, err := si.analyze(sql)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parsePolicy(doc)
		if err != nil {
			t.Fatal(err)
		}
		return si.resolve(a, p)
	}
	// An opaque call without a declaration: uncacheable, primary-only, and
	// it may write anything.
	a, err := analyse("SELECT dynamic_count('datasets')")
	if err != nil {
		t.Fatal(err)
	}
	if a.uncacheable == "" || a.primaryOnly == "" || !strings.Contains(a.uncacheable, "-- cache: reads=") {
		t.Errorf("opaque call: uncacheable %q, primaryOnly %q; want both, saying what to declare", a.uncacheable, a.primaryOnly)
	}
	if diff := cmp.Diff(si.relations(), a.writes); diff != "" {
		t.Errorf("opaque call writes (-every relation +got):\n%s", diff)
	}
	// Declared: cacheable, reading what it says (a view reads its tables).
	a, err = analyse("SELECT dynamic_count('datasets')", "cache: reads=datasets,run_pass_rates ttl=5s")
	if err != nil {
		t.Fatal(err)
	}
	want := access{reads: []string{"datasets", "eval_results", "eval_runs"}}
	if diff := cmp.Diff(want, a, cmp.AllowUnexported(access{})); diff != "" {
		t.Errorf("declared reads (-want +got):\n%s", diff)
	}
	// A cached read of a materialized view: no trigger can tell other
	// instances of a REFRESH.
	if _, err := analyse("SELECT * FROM dataset_stats"); err == nil || !strings.Contains(err.Error(), "cache: off") {
		t.Errorf("cached matview read: %v, want an error saying to mark it cache: off", err)
	}
	if _, err := analyse("SELECT * FROM dataset_stats", "cache: off"); err != nil {
		t.Errorf("uncached matview read: %v", err)
	}
	if _, err := analyse("SELECT 1", "cache: reads=nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("declared unknown table: %v, want an error naming it", err)
	}
}

func TestEmitTriggersCoversEveryTable(t *testing.T) {
	t.Parallel()
	si := evolved(t)
	sql := string(emitTriggers(si))
	for _, tb := range []string{"audit_log", "counters", "datasets", "eval_runs", "events", "users"} {
		if !strings.Contains(sql, "ON "+tb+"\n") {
			t.Errorf("no trigger on %s in:\n%s", tb, sql)
		}
	}
	if !strings.Contains(sql, "ON events_2026\n    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate('events');") {
		t.Errorf("the partition's trigger does not name its parent:\n%s", sql)
	}
	for _, v := range []string{"ON run_pass_rates", "ON dataset_stats", "ON remote_scores"} {
		if strings.Contains(sql, v) {
			t.Errorf("trigger %q on a view", v)
		}
	}
}

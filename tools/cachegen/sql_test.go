package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testSchema loads evaldb's first four migrations, v0.1's and 00004 (the
// schema these tests describe), from schema/: later migrations, evaldb's or
// a user's, may add to it, but an applied migration is never edited, so the
// analyser's expectations below do not change with schema/.
func testSchema(t *testing.T) *schemaInfo {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob("../../schema/0000[1-4]_*.sql")
	if err != nil || len(files) != 4 {
		t.Fatalf("the first four migrations of schema/: %v, %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	si, err := loadSchema(dir)
	if err != nil {
		t.Fatal(err)
	}
	return si
}

func TestLoadSchemaCascades(t *testing.T) {
	t.Parallel()
	si := testSchema(t)
	want := map[string][]string{
		"users":            {"student_profiles"},
		"student_profiles": {"performance_metrics"},
		"eval_runs":        {"eval_results", "eval_metrics"},
	}
	if diff := cmp.Diff(want, si.onDelete); diff != "" {
		t.Errorf("onDelete mismatch (-want +got):\n%s", diff)
	}
	if len(si.onUpdate) != 0 {
		t.Errorf("onUpdate = %v, want none", si.onUpdate)
	}
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	si := testSchema(t)
	for _, tc := range []struct {
		name, sql string
		want      access
	}{
		{"Join", "SELECT * FROM performance_metrics pm JOIN student_profiles sp ON sp.id = pm.student_profile_id",
			access{reads: []string{"performance_metrics", "student_profiles"}}},
		{"SubqueryInWhere", "SELECT * FROM users WHERE id IN (SELECT user_id FROM student_profiles)",
			access{reads: []string{"student_profiles", "users"}}},
		{"LateralSubquery", "SELECT * FROM student_profiles sp CROSS JOIN LATERAL (SELECT count(*) FROM performance_metrics pm WHERE pm.student_profile_id = sp.id) m",
			access{reads: []string{"performance_metrics", "student_profiles"}}},
		{"CTENameExcluded", "WITH recent AS (SELECT * FROM eval_runs) SELECT * FROM recent JOIN eval_metrics ON true",
			access{reads: []string{"eval_metrics", "eval_runs"}}},
		{"DeleteCascadesTransitively", "DELETE FROM users WHERE id = $1",
			access{writes: []string{"performance_metrics", "student_profiles", "users"}}},
		{"DataModifyingCTE", "WITH d AS (DELETE FROM eval_runs RETURNING id) SELECT * FROM d",
			access{writes: []string{"eval_metrics", "eval_results", "eval_runs"}}},
		{"UpdateFromReads", "UPDATE eval_runs SET status = 'failed' FROM eval_results r WHERE r.run_id = eval_runs.id",
			access{reads: []string{"eval_results"}, writes: []string{"eval_runs"}}},
		{"InsertSelect", "INSERT INTO eval_metrics (run_id, name, value) SELECT run_id, 'n', 1 FROM eval_results",
			access{reads: []string{"eval_results"}, writes: []string{"eval_metrics"}}},
		{"SystemCatalog", "SELECT count(*) FROM pg_catalog.pg_stat_activity",
			access{uncacheable: "reads system catalog pg_stat_activity"}},
		{"LockingRead", "SELECT * FROM users FOR UPDATE",
			access{reads: []string{"users"}, uncacheable: "locking read (FOR UPDATE/SHARE)"}},
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
	if _, err := si.analyze("SELECT * FROM no_such_table"); err == nil {
		t.Error("analyze() of an unknown table: want an error")
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line    string
		want    policy
		wantErr bool
	}{
		{"cache: ttl=30s swr=10s", policy{set: true, ttl: 30e9, swr: 10e9}, false},
		{"cache: off", policy{set: true, off: true}, false},
		{"no policy here", policy{}, false},
		{"cache: ttl=0s", policy{}, true},
		{"cache: ttl=abc", policy{}, true},
		{"cache: forever", policy{}, true},
		{"cache: off ttl=1s", policy{}, true},
		{"cache: reads=a,b writes=", policy{set: true, reads: []string{"a", "b"}, readsSet: true, writesSet: true}, false},
		{"cache: reads=none ttl=5s", policy{set: true, ttl: 5e9, readsSet: true}, false},
		{"cache: reads", policy{}, true},
		{"cache: reads=a reads=b", policy{}, true},
	} {
		got, err := parsePolicy([]string{"Doc line.", tc.line})
		if (err != nil) != tc.wantErr {
			t.Errorf("parsePolicy(%q) error = %v, wantErr %v", tc.line, err, tc.wantErr)
			continue
		}
		if err == nil {
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(policy{})); diff != "" {
				t.Errorf("parsePolicy(%q) mismatch (-want +got):\n%s", tc.line, diff)
			}
		}
	}
}

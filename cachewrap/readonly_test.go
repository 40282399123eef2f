package cachewrap

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"GetUser", true},
		{"GetStudentWithMetrics", true},
		{"ListEvalResults", true},
		{"CreateUser", false},
		{"DeleteEvalRun", false},
		{"InsertEvalResults", false},       // :copyfrom
		{"CountConnectionsByState", false}, // pg_stat_activity differs per server
		{"other", false},
		{"", false},
		{"getuser", false},
	} {
		if got := ReadOnly(tc.name); got != tc.want {
			t.Errorf("ReadOnly(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReadOnlyMatchesAnalysis checks the generated list against the
// generated per-query analysis: a query is read-only exactly when it writes
// no table and is not marked uncacheable for a reason other than a policy.
func TestReadOnlyMatchesAnalysis(t *testing.T) {
	t.Parallel()
	want, got := map[string]bool{}, map[string]bool{}
	for _, q := range queries {
		want[q.name] = len(q.writes) == 0 && (q.uncacheable == "" || q.uncacheable == "cache: off")
		got[q.name] = ReadOnly(q.name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadOnly() mismatch (-want +got):\n%s", diff)
	}
}

package cachewrap

import (
	"strings"
	"testing"

	"github.com/aah/evaldb/querymeta"
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

// TestReadOnlyMatchesAnalysis checks ReadOnly against the generated
// metadata: a query is read-only exactly when querymeta says so, and no
// read-only query writes a table or reads a system catalog.
func TestReadOnlyMatchesAnalysis(t *testing.T) {
	t.Parallel()
	for i := range querymeta.Queries {
		q := &querymeta.Queries[i]
		if got := ReadOnly(q.Name); got != q.ReadOnly {
			t.Errorf("ReadOnly(%q) = %v, querymeta says %v", q.Name, got, q.ReadOnly)
		}
		if q.ReadOnly && (len(q.Writes) > 0 || strings.HasPrefix(q.Cache.Uncacheable, "reads system catalog")) {
			t.Errorf("%s is read-only but writes %v or is uncacheable (%s)", q.Name, q.Writes, q.Cache.Uncacheable)
		}
	}
}

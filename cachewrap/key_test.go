package cachewrap

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

func fuzzZone(z uint8) *time.Location {
	// Few names and offsets, so that fuzzing hits same-name/different-offset
	// and same-offset/different-name pairs.
	return time.FixedZone(fmt.Sprint("Z", z%3), int(z%5)*1800)
}

type keyArgs struct {
	id, name string
	hasName  bool
	sec      int64
	nsec     int32
	zone     uint8
	limit    int32
}

func (a keyArgs) window() gen.ListStudentMetricsInWindowParams {
	p := gen.ListStudentMetricsInWindowParams{
		StudentID:     a.id,
		RecordedFrom:  time.Unix(a.sec, int64(a.nsec)).In(fuzzZone(a.zone)),
		RecordedUntil: time.Unix(a.sec+60, 0).UTC(),
	}
	if a.hasName {
		p.MetricName = &a.name
	}
	return p
}

func (a keyArgs) runs() gen.ListEvalRunsParams {
	p := gen.ListEvalRunsParams{RowLimit: a.limit}
	if a.hasName {
		t := time.Unix(a.sec, int64(a.nsec)).In(fuzzZone(a.zone))
		p.BeforeCreatedAt = &t
		u := uuid.NewSHA1(uuid.NameSpaceOID, []byte(a.id))
		p.BeforeID = &u
	}
	return p
}

func sameTime(a, b time.Time) bool {
	an, ao := a.Zone()
	bn, bo := b.Zone()
	return a.Equal(b) && an == bn && ao == bo
}

func sameWindow(a, b gen.ListStudentMetricsInWindowParams) bool {
	if (a.MetricName == nil) != (b.MetricName == nil) || (a.MetricName != nil && *a.MetricName != *b.MetricName) {
		return false
	}
	return a.StudentID == b.StudentID && sameTime(a.RecordedFrom, b.RecordedFrom) && sameTime(a.RecordedUntil, b.RecordedUntil)
}

func sameRuns(a, b gen.ListEvalRunsParams) bool {
	if (a.BeforeCreatedAt == nil) != (b.BeforeCreatedAt == nil) || (a.BeforeID == nil) != (b.BeforeID == nil) {
		return false
	}
	if a.BeforeCreatedAt != nil && (!sameTime(*a.BeforeCreatedAt, *b.BeforeCreatedAt) || *a.BeforeID != *b.BeforeID) {
		return false
	}
	return a.RowLimit == b.RowLimit
}

// FuzzKeyInjective checks that two argument lists share a key exactly when
// they are equal (same strings, same NULLs, same instants in the same zone).
func FuzzKeyInjective(f *testing.F) {
	f.Add("ab", "c", true, int64(0), int32(0), uint8(0), int32(1), "a", "bc", true, int64(0), int32(0), uint8(0), int32(1))
	f.Add("a", "", true, int64(1), int32(0), uint8(1), int32(0), "a", "", false, int64(1), int32(0), uint8(1), int32(0))
	f.Add("s", "n", true, int64(3600), int32(5), uint8(0), int32(2), "s", "n", true, int64(3600), int32(5), uint8(3), int32(2))
	f.Fuzz(func(t *testing.T, id1, name1 string, has1 bool, sec1 int64, nsec1 int32, zone1 uint8, lim1 int32,
		id2, name2 string, has2 bool, sec2 int64, nsec2 int32, zone2 uint8, lim2 int32) {
		if nsec1 < 0 || nsec2 < 0 || nsec1 >= 1e9 || nsec2 >= 1e9 {
			return
		}
		a := keyArgs{id1, name1, has1, sec1, nsec1, zone1, lim1}
		b := keyArgs{id2, name2, has2, sec2, nsec2, zone2, lim2}

		w1, w2 := a.window(), b.window()
		c := &Cache{}
		_, k1 := keyListStudentMetricsInWindow(c, w1, false)
		_, k2 := keyListStudentMetricsInWindow(c, w2, false)
		if got, want := k1 == k2, sameWindow(w1, w2); got != want {
			t.Errorf("window keys equal = %v, args equal = %v\n%+v\n%+v", got, want, w1, w2)
		}

		r1, r2 := a.runs(), b.runs()
		_, k1 = keyListEvalRuns(c, r1, false)
		_, k2 = keyListEvalRuns(c, r2, false)
		if got, want := k1 == k2, sameRuns(r1, r2); got != want {
			t.Errorf("runs keys equal = %v, args equal = %v\n%+v\n%+v", got, want, r1, r2)
		}
	})
}

func TestKeyEncodings(t *testing.T) {
	t.Parallel()
	utc := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		a, b []byte
	}{
		{"NULLvsEmptyBytes", appendBytes(nil, nil), appendBytes(nil, []byte{})},
		{"StringBoundary", appendString(appendString(nil, "ab"), "c"), appendString(appendString(nil, "a"), "bc")},
		{"SameInstantOtherZone", appendTime(nil, utc), appendTime(nil, utc.In(time.FixedZone("X", 3600)))},
		{"OtherQuery", otherQuery(keyGetEvalRun), otherQuery(keyGetEvalRunSummary)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if bytes.Equal(tc.a, tc.b) {
				t.Errorf("encodings are equal: %x", tc.a)
			}
		})
	}
}

// otherQuery is the key of a read of key's query with a zero argument, so
// that two queries of one argument type can be told apart by their keys.
func otherQuery(key func(*Cache, uuid.UUID, bool) (*entry, string)) []byte {
	_, k := key(&Cache{}, uuid.UUID{}, false)
	return []byte(k)
}

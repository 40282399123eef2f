package repo

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// countingCodec counts the plans asked of a codec.
type countingCodec struct {
	pgtype.Codec
	n *int
}

func (c countingCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	*c.n++
	return c.Codec.PlanScan(m, oid, format, target)
}

// A remembered plan is planned once per connection, then looked up.
func TestScanPlansArePlannedOnce(t *testing.T) {
	for _, tc := range []struct {
		oid    uint32
		target func() any
	}{
		{pgtype.TextArrayOID, func() any { return new([]string) }},
		{pgtype.TimestamptzOID, func() any { return new(time.Time) }},
		{pgtype.TimestamptzArrayOID, func() any { return new([]time.Time) }},
		{pgtype.UUIDOID, func() any { return new(uuid.UUID) }},
		{pgtype.JSONBOID, func() any { return new(json.RawMessage) }},
	} {
		m := pgtype.NewMap()
		registerUUID(m)
		typ, _ := m.TypeForOID(tc.oid)
		var n int
		m.RegisterType(&pgtype.Type{Name: typ.Name, OID: typ.OID, Codec: countingCodec{Codec: typ.Codec, n: &n}})
		memoizeScanPlans(m)
		m.PlanScan(tc.oid, pgtype.BinaryFormatCode, tc.target())
		if n == 0 {
			t.Fatalf("type %d: pgx's planner never asked the codec", tc.oid)
		}
		first := n
		for range 3 {
			m.PlanScan(tc.oid, pgtype.BinaryFormatCode, tc.target())
		}
		if n != first {
			t.Errorf("type %d, %T: the codec was asked %d more times after the first plan, want 0", tc.oid, tc.target(), n-first)
		}
		// Another format or target type is another plan.
		m.PlanScan(tc.oid, pgtype.TextFormatCode, tc.target())
		if n == first {
			t.Errorf("type %d: the text format reused the binary format's plan", tc.oid)
		}
	}
}

// cmpScanned compares scanned values: times by instant, big integers (in
// pgtype.Numeric) by value, NaN equal to NaN.
var cmpScanned = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b *big.Int) bool { return a == b || a != nil && b != nil && a.Cmp(b) == 0 }),
	cmpopts.EquateNaNs(),
}

// Scanning through remembered plans gives what pgx's own plans give, value
// and error alike, for every remembered type and the Go types gen and
// hand-written code scan them into, in both formats, NULL and edge values
// included, on first use and when the plan is reused.
func TestScanPlansScanAsPgxDoes(t *testing.T) {
	when := time.Date(2026, 12, 2, 1, 2, 3, 456789000, time.UTC)
	id := uuid.MustParse("0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6071")
	type column struct {
		oid     uint32
		values  []any // encoded with pgx's plain map; nil is NULL
		targets []func() any
	}
	cols := []column{
		{pgtype.BoolOID, []any{true, false, nil}, []func() any{func() any { return new(bool) }, func() any { return new(*bool) }, func() any { return new(pgtype.Bool) }}},
		{pgtype.Int2OID, []any{int16(-7), nil}, []func() any{func() any { return new(int16) }, func() any { return new(int32) }, func() any { return new(*int16) }}},
		{pgtype.Int4OID, []any{int32(math.MaxInt32), nil}, []func() any{func() any { return new(int32) }, func() any { return new(int64) }, func() any { return new(*int32) }, func() any { return new(pgtype.Int4) }, func() any { return new(int8) }}},
		{pgtype.Int8OID, []any{int64(math.MinInt64), nil}, []func() any{func() any { return new(int64) }, func() any { return new(*int64) }, func() any { return new(string) }}},
		{pgtype.Float8OID, []any{3.25, math.Inf(-1), nil}, []func() any{func() any { return new(float64) }, func() any { return new(*float64) }, func() any { return new(float32) }}},
		{pgtype.NumericOID, []any{12345.5, pgtype.Numeric{NaN: true, Valid: true}, nil}, []func() any{func() any { return new(pgtype.Numeric) }, func() any { return new(float64) }, func() any { return new(string) }}},
		{pgtype.TextOID, []any{"héllo", "", nil}, []func() any{func() any { return new(string) }, func() any { return new(*string) }, func() any { return new([]byte) }, func() any { return new(pgtype.Text) }}},
		{pgtype.ByteaOID, []any{[]byte{0, 1, 255}, nil}, []func() any{func() any { return new([]byte) }}},
		{pgtype.DateOID, []any{when, pgtype.Date{InfinityModifier: pgtype.Infinity, Valid: true}, nil}, []func() any{func() any { return new(time.Time) }, func() any { return new(pgtype.Date) }}},
		{pgtype.TimestamptzOID, []any{when, pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil}, []func() any{func() any { return new(time.Time) }, func() any { return new(*time.Time) }, func() any { return new(pgtype.Timestamptz) }}},
		{pgtype.IntervalOID, []any{90 * time.Minute, nil}, []func() any{func() any { return new(time.Duration) }, func() any { return new(pgtype.Interval) }}},
		{pgtype.JSONBOID, []any{json.RawMessage(`{"a": [1, 2]}`), nil}, []func() any{func() any { return new(json.RawMessage) }, func() any { return new([]byte) }, func() any { return new(map[string]any) }, func() any { return new(any) }}},
		{pgtype.UUIDOID, []any{id, nil}, []func() any{func() any { return new(uuid.UUID) }, func() any { return new(*uuid.UUID) }, func() any { return new(pgtype.UUID) }, func() any { return new(string) }}},
		{pgtype.TextArrayOID, []any{[]string{"a", "", "c"}, []string{}, nil}, []func() any{func() any { return new([]string) }, func() any { return new([]*string) }, func() any { return new(pgtype.FlatArray[string]) }}},
		{pgtype.Float8ArrayOID, []any{[]float64{1, 2.5}, nil}, []func() any{func() any { return new([]float64) }}},
		{pgtype.Int4ArrayOID, []any{[]int32{1, 2}, nil}, []func() any{func() any { return new([]int32) }, func() any { return new([]int64) }}},
		{pgtype.TimestamptzArrayOID, []any{[]time.Time{when, when.Add(time.Hour)}, nil}, []func() any{func() any { return new([]time.Time) }}},
		{pgtype.UUIDArrayOID, []any{[]uuid.UUID{id}, nil}, []func() any{func() any { return new([]uuid.UUID) }}},
	}
	plain := pgtype.NewMap()
	registerUUID(plain)
	memo := pgtype.NewMap()
	registerUUID(memo)
	memoizeScanPlans(memo)
	for _, c := range cols {
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			for _, v := range c.values {
				var src []byte
				if v != nil {
					var err error
					if src, err = plain.Encode(c.oid, format, v, nil); err != nil {
						t.Fatalf("encode %v as %d, format %d: %v", v, c.oid, format, err)
					}
				}
				for _, target := range c.targets {
					name := fmt.Sprintf("type %d, format %d, %v into %T", c.oid, format, v, target())
					want, wantErr := target(), ""
					if err := plain.PlanScan(c.oid, format, want).Scan(src, want); err != nil {
						wantErr = err.Error()
					}
					for use := range 2 {
						got, gotErr := target(), ""
						if err := memo.PlanScan(c.oid, format, got).Scan(src, got); err != nil {
							gotErr = err.Error()
						}
						if gotErr != wantErr {
							t.Errorf("%s, use %d: error %q, want pgx's %q", name, use, gotErr, wantErr)
						}
						if diff := cmp.Diff(want, got, cmpScanned); diff != "" {
							t.Errorf("%s, use %d: scanned value differs from pgx's (-pgx +memo):\n%s", name, use, diff)
						}
					}
				}
			}
		}
	}
}

package repo

import (
	"reflect"

	"github.com/jackc/pgx/v5/pgtype"
)

// Scan plans, remembered per connection.
//
// pgx plans how to scan each result column into its target for every
// query it runs: for each column, its type's codec, then pgx's chain of
// wrappers (sql.Scanner, the registered TryWrap functions, pointer-to-slice
// and builtin-type wrappers, reflection for the underlying type), with
// allocations at several steps. pgx reuses a plan for the rows of one
// result, because a plan depends only on the column's type, its format and
// the target's Go type, but it plans again for the next query. For a
// student read (8 columns, three of them arrays) planning was about 13,000
// instructions, a quarter of the read's client work; for a PK read (9
// columns), about 5,000.
//
// memoizeScanPlans wraps the codec of each common builtin type on one
// connection's type map so that the plan pgx's own planner makes for a
// (type, format, Go type) is made once per connection and then looked up.
// The plan is pgx's, unchanged: the wrapper runs pgx's planner itself the
// first time (with the wrapper stepping aside), so a remembered plan is
// what pgx would plan. A type map belongs to one connection, which runs
// one statement at a time, so the memo needs no lock. Types registered on
// the connection after its first query do not change the plans already
// remembered for these types.
//
// pgx itself memoized scan plans in pgtype.Map until v5.7.5, whose
// CHANGELOG removed it: "a rare issue where scanning could be broken for
// one type by first scanning another", the memo bringing "no meaningful
// benefit" in pgx's benchmarks (which plan few columns per query). This
// memo is narrower: only the builtin types of memoOIDs, whose codecs and
// plans evaldb's tests cover (TestScanPlansScanAsPgxDoes scans each into
// every Go target it supports, in both formats, in orders that would show
// one plan leaking into another, against pgx's own planner); each entry
// is keyed by its column's OID, format and exact Go type, under that
// type's own codec; and what is remembered is the whole plan pgx makes for
// that key at the top level. Enums, composites, domains and every type a
// user registers are planned per query, as pgx does.

// memoOIDs are the types whose scan plans are remembered: PostgreSQL's
// common builtin types and their arrays. Other types are planned per
// query, as pgx does.
var memoOIDs = []uint32{
	pgtype.BoolOID, pgtype.ByteaOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID,
	pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID,
	pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID,
	pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.IntervalOID,
	pgtype.JSONOID, pgtype.JSONBOID, pgtype.UUIDOID,
	pgtype.BoolArrayOID, pgtype.ByteaArrayOID, pgtype.Int2ArrayOID, pgtype.Int4ArrayOID, pgtype.Int8ArrayOID,
	pgtype.Float4ArrayOID, pgtype.Float8ArrayOID, pgtype.NumericArrayOID,
	pgtype.TextArrayOID, pgtype.VarcharArrayOID, pgtype.BPCharArrayOID,
	pgtype.DateArrayOID, pgtype.TimestampArrayOID, pgtype.TimestamptzArrayOID, pgtype.IntervalArrayOID,
	pgtype.JSONArrayOID, pgtype.JSONBArrayOID, pgtype.UUIDArrayOID,
}

// memoizeScanPlans makes m remember the scan plans of memoOIDs (see above).
// It must run before m plans anything, and after the codecs of those types
// are registered.
func memoizeScanPlans(m *pgtype.Map) {
	for _, oid := range memoOIDs {
		t, ok := m.TypeForOID(oid)
		if !ok {
			continue
		}
		if _, done := t.Codec.(*scanMemo); done {
			continue
		}
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: &scanMemo{Codec: t.Codec, m: m}})
	}
}

// maxMemoPlans bounds the plans one type remembers (one per Go target type
// and format; a program scans one type into a handful of Go types).
const maxMemoPlans = 16

// scanMemo is one type's codec on one connection's type map, remembering
// the plans pgx's planner makes for it.
type scanMemo struct {
	pgtype.Codec
	m        *pgtype.Map
	planning bool // pgx's planner is running for this type: step aside
	plans    []memoPlan
}

type memoPlan struct {
	oid    uint32
	format int16
	target reflect.Type
	plan   pgtype.ScanPlan
}

func (c *scanMemo) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if c.planning || m != c.m {
		return c.Codec.PlanScan(m, oid, format, target)
	}
	t := reflect.TypeOf(target)
	for i := range c.plans {
		if p := &c.plans[i]; p.target == t && p.format == format && p.oid == oid {
			return p.plan
		}
	}
	plan := c.plan(m, oid, format, target)
	if len(c.plans) < maxMemoPlans {
		c.plans = append(c.plans, memoPlan{oid: oid, format: format, target: t, plan: plan})
	}
	return plan
}

// plan is pgx's whole plan for target (its planner, with c stepping aside
// for this type), which pgx would otherwise make on every query.
func (c *scanMemo) plan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	c.planning = true
	defer func() { c.planning = false }()
	return m.PlanScan(oid, format, target)
}

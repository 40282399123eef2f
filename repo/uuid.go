package repo

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
)

// uuidCodec is pgx-google-uuid's codec for the uuid type, with one
// shortcut: a *uuid.UUID target (gen's uuid columns) is scanned from the
// wire value directly.
//
// pgx plans a target that is a sql.Scanner, as *uuid.UUID is, through that
// interface before it tries the scan wrappers a package registers
// (pgtype's planScan, "This needs to happen before trying
// m.TryWrapScanPlanFuncs"), so pgx-google-uuid's wrapper never ran for it:
// pgx formatted each value as text and uuid.UUID's Scan parsed it back,
// three allocations and about 1,700 instructions per value, a quarter of
// a page of 100 results.
type uuidCodec struct{ pgxuuid.UUIDCodec }

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok {
		if next := c.UUIDCodec.PlanScan(m, oid, format, (*pgxuuid.UUID)(nil)); next != nil {
			return uuidScanPlan{next: next}
		}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

// uuidScanPlan scans into a *uuid.UUID through pgx-google-uuid's
// pgtype.UUIDScanner.
type uuidScanPlan struct{ next pgtype.ScanPlan }

func (p uuidScanPlan) Scan(src []byte, dst any) error {
	if src == nil {
		// NULL leaves the destination as it was, as uuid.UUID's Scan does
		// (the sql.Scanner path this replaces).
		return nil
	}
	return p.next.Scan(src, (*pgxuuid.UUID)(dst.(*uuid.UUID)))
}

// registerUUID teaches m to encode and decode github.com/google/uuid.UUID
// directly (see uuidCodec).
func registerUUID(m *pgtype.Map) {
	pgxuuid.Register(m)
	m.RegisterType(&pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}})
}

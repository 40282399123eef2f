package repo

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A *uuid.UUID is scanned from the wire value directly, not through
// uuid.UUID's sql.Scanner (pgx formatting it as text, uuid parsing it back),
// and the values are the same in binary and text format; NULL leaves the
// destination as it was, as the sql.Scanner path did.
func TestUUIDScansDirectly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := open(t, &Config{URL: testURL(t, ""), Env: Test})
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
		plan := c.Conn().TypeMap().PlanScan(pgtype.UUIDOID, format, new(uuid.UUID))
		if _, ok := plan.(uuidScanPlan); !ok {
			t.Errorf("format %d: the scan plan of a *uuid.UUID is %T, want uuidScanPlan", format, plan)
		}
	}
	want := uuid.MustParse("0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6071")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		var got uuid.UUID
		if err := c.QueryRow(ctx, "SELECT $1::uuid", mode, want).Scan(&got); err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if got != want {
			t.Errorf("mode %v: scanned %v, want %v", mode, got, want)
		}
		kept := want
		if err := c.QueryRow(ctx, "SELECT NULL::uuid", mode).Scan(&kept); err != nil {
			t.Fatalf("mode %v: NULL: %v", mode, err)
		}
		if kept != want {
			t.Errorf("mode %v: NULL changed the destination to %v, want it left as it was", mode, kept)
		}
	}
}

// A Repo's connections remember their scan plans (memoizeScanPlans), after
// Config.AfterConnect ran.
func TestConnectionsRememberScanPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var hookRan bool
	r := open(t, &Config{URL: testURL(t, "connection_limit=1"), Env: Test,
		AfterConnect: func(context.Context, *pgx.Conn) error { hookRan = true; return nil }})
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if !hookRan {
		t.Error("Config.AfterConnect did not run")
	}
	for _, oid := range []uint32{pgtype.TextArrayOID, pgtype.TimestamptzOID, pgtype.UUIDOID} {
		typ, ok := c.Conn().TypeMap().TypeForOID(oid)
		if _, memo := typ.Codec.(*scanMemo); !ok || !memo {
			t.Errorf("type %d: codec %T, want its scan plans remembered (*scanMemo)", oid, typ.Codec)
		}
	}
}

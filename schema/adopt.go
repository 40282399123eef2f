package schema

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// ExistingSchemaError is returned by Up (and so Migrate and "evaldb migrate")
// for a database that goose has never migrated but that already holds
// tables: evaldb's own (a database created by Prisma Migrate with @@map to
// the same names, or by hand) or Prisma Migrate's history. Migrating it would
// fail with "relation already exists" (42P07), or create a second set of
// tables beside Prisma's PascalCase ones.
type ExistingSchemaError struct {
	// Prisma is set when the database has a _prisma_migrations table.
	Prisma bool
	// Tables are the tables of evaldb's schema that already exist.
	Tables []string
	// Lookalikes are existing tables whose names differ from one of
	// evaldb's only in case, underscores or a plural s ("EvalRun" for
	// eval_runs): likely the same data under Prisma's default names.
	Lookalikes []string
}

func (e *ExistingSchemaError) Error() string {
	var found []string
	if e.Prisma {
		found = append(found, "Prisma Migrate's history table _prisma_migrations")
	}
	if len(e.Tables) > 0 {
		found = append(found, "evaldb's tables "+strings.Join(e.Tables, ", "))
	}
	if len(e.Lookalikes) > 0 {
		found = append(found, "tables named like evaldb's ("+strings.Join(e.Lookalikes, ", ")+")")
	}
	msg := "migrate: the database already has " + strings.Join(found, " and ") +
		", but no goose_db_version table: it was not created by evaldb's migrations, and migrating it would fail or make a second set of tables. "
	if len(e.Tables) > 0 {
		msg += "Adopt it with `evaldb migrate baseline` (schema.Baseline), which checks that the tables match what the migrations create and then records the migrations as applied."
	} else {
		msg += "Rename the tables to evaldb's names first (Prisma: @@map(\"eval_runs\") and @map(\"snake_case\") on each model and field, then prisma migrate), then run `evaldb migrate baseline`; see the README section \"Moving a Prisma-managed database to evaldb\"."
	}
	return msg
}

// inspect returns the names of the tables (plain, partitioned, views and
// materialized views) visible in the current schema, and whether goose's
// version table is among them with at least one applied migration.
func inspect(ctx context.Context, db *sql.DB) (names []string, hasGoose bool, err error) {
	rows, err := db.QueryContext(ctx, `SELECT c.relname::text FROM pg_catalog.pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		ORDER BY 1`)
	if err != nil {
		return nil, false, fmt.Errorf("migrate: list existing tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, false, err
		}
		if n == goose.DefaultTablename {
			hasGoose = true
			continue
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil || !hasGoose {
		return names, hasGoose, err
	}
	// A version table without an applied migration is no history: goose
	// makes one on any first contact (migrate status, say), and a failed
	// first migration can leave one behind.
	var applied int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+goose.DefaultTablename+" WHERE version_id > 0 AND is_applied").Scan(&applied); err != nil {
		return nil, false, fmt.Errorf("migrate: read %s: %w", goose.DefaultTablename, err)
	}
	return names, applied > 0, nil
}

// CheckAdoptable returns an *ExistingSchemaError when the database has no
// goose version table but holds evaldb's tables, lookalikes of them, or
// Prisma's migration history; nil otherwise (an empty database, one goose
// manages, or one with unrelated tables only).
func CheckAdoptable(ctx context.Context, db *sql.DB) error {
	existing, hasGoose, err := inspect(ctx, db)
	if err != nil || hasGoose {
		return err
	}
	e := &ExistingSchemaError{}
	norm := func(s string) string { return strings.TrimSuffix(strings.ReplaceAll(strings.ToLower(s), "_", ""), "s") }
	ours := map[string]bool{}
	for _, t := range Tables {
		ours[norm(t)] = true
	}
	for _, n := range existing {
		switch {
		case n == "_prisma_migrations":
			e.Prisma = true
		case slices.Contains(Tables, n):
			e.Tables = append(e.Tables, n)
		case ours[norm(n)]:
			e.Lookalikes = append(e.Lookalikes, n)
		}
	}
	if e.Prisma || len(e.Tables) > 0 || len(e.Lookalikes) > 0 {
		return e
	}
	return nil
}

// ErrSchemaMismatch is wrapped by Baseline's error when the existing tables
// differ from what the migrations create.
var ErrSchemaMismatch = errors.New("the existing tables differ from what evaldb's migrations create")

// Baseline adopts a database whose tables exist but were not created by
// goose (by Prisma Migrate with @@map, or by hand). It applies the embedded
// migrations to a scratch schema in a transaction that it rolls back,
// compares the result with the database's current schema (each table's
// columns with their types and nullability, its primary key, unique keys
// and indexes, its other indexes, foreign keys with their actions, and the
// triggers of the migrations other than the notification triggers), and returns an error
// wrapping ErrSchemaMismatch that names each difference when they differ.
//
// A database made from the migrations of an earlier evaldb (or by Prisma
// from them) matches only their first ones: Baseline then takes the longest
// run of first migrations the database matches, as long as it holds none of
// the tables the later ones create, records those as applied, and applies
// the later ones as Up does. (Recording them all would leave their triggers
// out; migration 00005's keep the stored run summaries true.) When every
// migration matches it records them all. Either way it applies the
// notification triggers and returns the versions it recorded. It refuses a
// database goose already manages. Tables of the database that evaldb does
// not create (_prisma_migrations, say) are left alone, and so are extra
// columns that are nullable or have a default, and extra triggers.
func Baseline(ctx context.Context, db *sql.DB) ([]int64, error) {
	_, hasGoose, err := inspect(ctx, db)
	if err != nil {
		return nil, err
	}
	if hasGoose {
		return nil, fmt.Errorf("baseline: the database already has goose's version table %s: it is managed by evaldb's migrations; run `evaldb migrate` (up) instead", goose.DefaultTablename)
	}
	p, err := NewProvider(db)
	if err != nil {
		return nil, err
	}
	all := p.ListSources()
	sources, err := matchingPrefix(ctx, db, all)
	if err != nil {
		return nil, err
	}
	store, err := database.NewStore(database.DialectPostgres, goose.DefaultTablename)
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	var exists bool
	if err := tx.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", goose.DefaultTablename).Scan(&exists); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	versions := []int64{0} // goose's own marker row, as Provider.Up writes it
	if exists {
		versions = nil // left by goose without an applied migration (inspect checked)
	} else if err := store.CreateVersionTable(ctx, tx); err != nil {
		return nil, fmt.Errorf("baseline: create %s: %w", goose.DefaultTablename, err)
	}
	for _, s := range sources {
		versions = append(versions, s.Version)
	}
	for _, v := range versions {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return nil, fmt.Errorf("baseline: record version %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	recorded := versions[len(versions)-len(sources):] // without goose's marker
	if len(sources) < len(all) {
		if _, err := Up(ctx, db); err != nil {
			return recorded, fmt.Errorf("baseline: recorded versions %v as applied, then: %w", recorded, err)
		}
		return recorded, nil
	}
	if err := ApplyTriggers(ctx, db); err != nil {
		return recorded, err
	}
	return recorded, nil
}

// matchingPrefix returns the longest run of first migrations the database
// matches and none of whose later migrations' tables it holds, or an error
// wrapping ErrSchemaMismatch naming how it differs from all of them.
func matchingPrefix(ctx context.Context, db *sql.DB, all []*goose.Source) ([]*goose.Source, error) {
	var full []string
	var later map[string]*relation // the tables all the migrations create
	for k := len(all); k > 0; k-- {
		want, got, err := compareWithMigrations(ctx, db, all[:k])
		if err != nil {
			return nil, err
		}
		diffs := diffSchemas(want, got)
		if k == len(all) {
			full, later = diffs, want
		}
		if len(diffs) > 0 {
			continue
		}
		held := false
		for t := range later {
			if want[t] == nil && got[t] != nil {
				held = true // a later migration's table exists: not an earlier schema
			}
		}
		if held {
			break
		}
		return all[:k], nil
	}
	return nil, fmt.Errorf("baseline: %w; change the database (or the migrations) until they agree, then run baseline again:\n  %s",
		ErrSchemaMismatch, strings.Join(full, "\n  "))
}

// compareWithMigrations applies the migrations' Up sections to a scratch
// schema inside a transaction it rolls back, and describes the scratch
// schema's tables (want) and the current schema's (got).
func compareWithMigrations(ctx context.Context, db *sql.DB, sources []*goose.Source) (want, got map[string]*relation, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("baseline: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("baseline: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // always rolled back: the scratch schema must not stay
	var current string
	if err := tx.QueryRowContext(ctx, "SELECT current_schema()").Scan(&current); err != nil {
		return nil, nil, fmt.Errorf("baseline: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	scratch := "evaldb_baseline_" + hex.EncodeToString(rnd[:])
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+scratch); err != nil {
		return nil, nil, fmt.Errorf("baseline: create scratch schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+scratch+", pg_catalog"); err != nil {
		return nil, nil, fmt.Errorf("baseline: %w", err)
	}
	for _, s := range sources {
		b, err := fs.ReadFile(FS, s.Path)
		if err != nil {
			return nil, nil, err
		}
		up := string(b)
		if i := strings.Index(up, "-- +goose Down"); i >= 0 {
			up = up[:i]
		}
		if _, err := tx.ExecContext(ctx, up); err != nil {
			return nil, nil, fmt.Errorf("baseline: apply %s to a scratch schema: %w", s.Path, err)
		}
	}
	if want, err = describe(ctx, tx, scratch); err != nil {
		return nil, nil, err
	}
	if got, err = describe(ctx, tx, current); err != nil {
		return nil, nil, err
	}
	return want, got, nil
}

// relation is what Baseline compares of one table.
type relation struct {
	columns map[string]column
	order   []string
	keys    []string // "PRIMARY KEY (id)", "UNIQUE (lower(email))", "FOREIGN KEY (…) REFERENCES …"
	// triggers are its triggers but the notification triggers (which
	// ApplyTriggers makes), as "TRIGGER name AFTER INSERT … EXECUTE FUNCTION f()".
	triggers []string
	// indexes are its indexes that are neither unique nor a key, as
	// "INDEX USING btree (model, created_at DESC, id)", each with the
	// statement that makes it (named as the migrations name it).
	indexes map[string]string
}

type column struct {
	typ        string
	notNull    bool
	hasDefault bool
}

func describe(ctx context.Context, tx *sql.Tx, schema string) (map[string]*relation, error) {
	rels := map[string]*relation{}
	rows, err := tx.QueryContext(ctx, `SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
			a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
		WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY c.relname, a.attnum`, schema)
	if err != nil {
		return nil, fmt.Errorf("baseline: describe columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t, name string
		var c column
		if err := rows.Scan(&t, &name, &c.typ, &c.notNull, &c.hasDefault); err != nil {
			return nil, err
		}
		r := rels[t]
		if r == nil {
			r = &relation{columns: map[string]column{}}
			rels[t] = r
		}
		r.columns[name] = c
		r.order = append(r.order, name)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Indexes: keys by their columns, the others by what they cover (with
	// the statement that makes them), whatever their names.
	err = scanRelations(ctx, tx, rels, "indexes", `
		SELECT c.relname::text,
		       CASE WHEN i.indisprimary THEN 'PRIMARY KEY' WHEN i.indisunique THEN 'UNIQUE'
		            ELSE 'INDEX USING ' || am.amname END || ' (' ||
		       (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)
		          FROM generate_series(1, i.indnkeyatts) k) || ')' ||
		       coalesce(' WHERE ' || pg_get_expr(i.indpred, i.indrelid, true), ''),
		       CASE WHEN i.indisunique THEN '' ELSE replace(pg_get_indexdef(i.indexrelid), quote_ident($1) || '.', '') END
		FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE c.relnamespace = $1::regnamespace`, schema, func(r *relation, v []string) {
		spec, def := v[0], v[1]
		if def == "" { // a primary or unique key
			r.keys = append(r.keys, spec)
			return
		}
		if r.indexes == nil {
			r.indexes = map[string]string{}
		}
		r.indexes[spec] = def
	})
	if err != nil {
		return nil, err
	}
	// Foreign keys, with the names of referenced tables unqualified so that
	// the scratch schema's compare equal to the current one's.
	err = scanRelations(ctx, tx, rels, "foreign keys", `
		SELECT c.relname::text,
		       'FOREIGN KEY (' ||
		       (SELECT string_agg(a.attname, ', ' ORDER BY u.ord) FROM unnest(con.conkey) WITH ORDINALITY u(att, ord)
		          JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = u.att) ||
		       ') REFERENCES ' || rc.relname || ' (' ||
		       (SELECT string_agg(a.attname, ', ' ORDER BY u.ord) FROM unnest(con.confkey) WITH ORDINALITY u(att, ord)
		          JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = u.att) || ')' ||
		       CASE con.confdeltype WHEN 'c' THEN ' ON DELETE CASCADE' WHEN 'n' THEN ' ON DELETE SET NULL'
		            WHEN 'd' THEN ' ON DELETE SET DEFAULT' WHEN 'r' THEN ' ON DELETE RESTRICT' ELSE '' END ||
		       CASE con.confupdtype WHEN 'c' THEN ' ON UPDATE CASCADE' WHEN 'n' THEN ' ON UPDATE SET NULL'
		            WHEN 'd' THEN ' ON UPDATE SET DEFAULT' WHEN 'r' THEN ' ON UPDATE RESTRICT' ELSE '' END
		FROM pg_catalog.pg_constraint con
		JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
		JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
		WHERE c.relnamespace = $1::regnamespace AND con.contype = 'f'`, schema, func(r *relation, v []string) {
		r.keys = append(r.keys, v[0])
	})
	if err != nil {
		return nil, err
	}
	// Triggers, with the schema's name taken out of their definitions so
	// that the scratch schema's compare equal to the current one's.
	err = scanRelations(ctx, tx, rels, "triggers", `
		SELECT c.relname::text, replace(pg_get_triggerdef(tg.oid), quote_ident($1) || '.', '')
		FROM pg_catalog.pg_trigger tg
		JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
		JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
		WHERE c.relnamespace = $1::regnamespace AND NOT tg.tgisinternal AND p.proname <> 'evaldb_notify_invalidate'`, schema, func(r *relation, v []string) {
		r.triggers = append(r.triggers, strings.TrimPrefix(v[0], "CREATE "))
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		sort.Strings(r.keys)
		sort.Strings(r.triggers)
	}
	return rels, nil
}

// scanRelations runs query, whose $1 is schema and whose rows are a
// relation's name and text columns, and calls add with each row's relation
// (when it is one of rels) and the rest of the row. what names the query
// in its error.
func scanRelations(ctx context.Context, tx *sql.Tx, rels map[string]*relation, what, query, schema string, add func(r *relation, v []string)) error {
	rows, err := tx.QueryContext(ctx, query, schema)
	if err != nil {
		return fmt.Errorf("baseline: describe %s: %w", what, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	v := make([]string, len(cols))
	dest := make([]any, len(cols))
	for i := range v {
		dest[i] = &v[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if r := rels[v[0]]; r != nil {
			add(r, v[1:])
		}
	}
	return rows.Err()
}

// diffSchemas names every way got (the database) differs from want (what
// the migrations create), table by table.
func diffSchemas(want, got map[string]*relation) []string {
	var diffs []string
	var tables []string
	for t := range want {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		w, g := want[t], got[t]
		if g == nil {
			diffs = append(diffs, fmt.Sprintf("table %s is missing", t))
			continue
		}
		for _, name := range w.order {
			wc := w.columns[name]
			gc, ok := g.columns[name]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("table %s: column %s (%s) is missing", t, name, wc.typ))
			case gc.typ != wc.typ:
				diffs = append(diffs, fmt.Sprintf("table %s: column %s is %s, the migrations make it %s", t, name, gc.typ, wc.typ))
			case gc.notNull != wc.notNull:
				diffs = append(diffs, fmt.Sprintf("table %s: column %s is %s, the migrations make it %s", t, name, nullness(gc.notNull), nullness(wc.notNull)))
			case wc.hasDefault && !gc.hasDefault:
				diffs = append(diffs, fmt.Sprintf("table %s: column %s has no default, the migrations give it one", t, name))
			}
		}
		for _, name := range g.order {
			gc := g.columns[name]
			if _, ok := w.columns[name]; !ok && gc.notNull && !gc.hasDefault {
				diffs = append(diffs, fmt.Sprintf("table %s: column %s (%s NOT NULL, no default) is not in the migrations: evaldb's inserts would fail; make it nullable or give it a default", t, name, gc.typ))
			}
		}
		for _, k := range w.keys {
			if !slices.Contains(g.keys, k) {
				diffs = append(diffs, fmt.Sprintf("table %s: %s is missing", t, k))
			}
		}
		for _, k := range g.keys {
			if !slices.Contains(w.keys, k) {
				diffs = append(diffs, fmt.Sprintf("table %s: has %s, which the migrations do not create", t, k))
			}
		}
		for _, tr := range w.triggers {
			if !slices.Contains(g.triggers, tr) {
				diffs = append(diffs, fmt.Sprintf("table %s: %s is missing", t, tr))
			}
		}
		// A missing index changes no result, but the reads the migrations
		// index would scan the table; an extra one is the database's own.
		for _, spec := range slices.Sorted(maps.Keys(w.indexes)) {
			if _, ok := g.indexes[spec]; !ok {
				diffs = append(diffs, fmt.Sprintf("table %s: %s is missing; create it (%s) and run baseline again", t, spec, w.indexes[spec]))
			}
		}
	}
	return diffs
}

func nullness(notNull bool) string {
	if notNull {
		return "NOT NULL"
	}
	return "nullable"
}

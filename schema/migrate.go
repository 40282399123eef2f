// Package schema holds evaldb's database schema as goose migrations, embedded
// in the binary, and applies them.
//
// Migrations need a session (goose takes a PostgreSQL advisory lock so that
// two processes migrating at once apply each migration once), so run them
// through the non-pooling URL (POSTGRES_URL_NON_POOLING), never through
// PgBouncer's transaction pooling.
package schema

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/aah/evaldb/internal/dsn"
)

// NewProvider returns a goose provider for the embedded migrations on db,
// guarded by a PostgreSQL advisory-lock session locker. The caller closes db.
func NewProvider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("create migration locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// Open opens a database/sql handle on cfg for goose. It is a separate,
// short-lived connection: migrations never borrow the application's pool.
func Open(cfg *pgx.ConnConfig) *sql.DB {
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	return db
}

// Migrate applies every pending migration to the database at databaseURL and
// returns the versions it applied. It is safe to call from several processes
// at once: the others wait for the advisory lock and then find nothing to do.
// databaseURL is a postgres:// URL (Prisma's parameters are removed); it
// should be the non-pooling one. No error holds its password.
func Migrate(ctx context.Context, databaseURL string) ([]int64, error) {
	u, err := dsn.Parse(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// pgx parses the masked URL; the password is set afterwards.
	cfg, err := pgx.ParseConfig(u.Redacted)
	if err != nil {
		return nil, fmt.Errorf("migrate: parse database URL: %w", err)
	}
	if pw, ok := u.Password(); ok {
		cfg.Password = pw
	}
	return MigrateConfig(ctx, cfg)
}

// MigrateConfig is Migrate for an already parsed connection configuration.
func MigrateConfig(ctx context.Context, cfg *pgx.ConnConfig) ([]int64, error) {
	db := Open(cfg)
	defer db.Close()
	results, err := Up(ctx, db)
	if err != nil {
		return nil, err
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Up applies every pending migration on db, then the generated notification
// triggers (NotifySQL). Before a database's first migration it checks that
// the database holds none of evaldb's tables and no Prisma Migrate history:
// such a database is adopted with Baseline, and Up returns an
// *ExistingSchemaError saying so instead of failing half-way with
// "relation already exists" or creating a second set of tables.
func Up(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	if err := CheckAdoptable(ctx, db); err != nil {
		return nil, err
	}
	p, err := NewProvider(db)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return results, fmt.Errorf("migrate up: %w", err)
	}
	if err := ApplyTriggers(ctx, db); err != nil {
		return results, err
	}
	return results, nil
}

// triggersLock is the advisory lock key ApplyTriggers holds, so that
// concurrent migrators replace the triggers one at a time.
const triggersLock = 0x65766c6462_01 // "evldb" 1

// ApplyTriggers creates or replaces the notification trigger of every table
// of schema/ (NotifySQL) in one transaction. It is idempotent.
func ApplyTriggers(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply notification triggers: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(triggersLock)); err != nil {
		return fmt.Errorf("apply notification triggers: lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, NotifySQL); err != nil {
		return fmt.Errorf("apply notification triggers (schema/generated/notify_gen.sql): %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply notification triggers: %w", err)
	}
	return nil
}

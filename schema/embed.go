package schema

import "embed"

// FS holds the goose migrations, in version order by file name, and the
// generated notification triggers (generated/notify_gen.sql, which goose
// ignores: it has no version number). It is what Migrate applies and what
// the test harness hashes to key its template database.
//
//go:embed *.sql generated/*.sql
var FS embed.FS

// NotifySQL is generated/notify_gen.sql: the idempotent notification
// triggers of every table of schema/, which Migrate runs after the
// migrations. cachegen generates it ("make generate").
//
//go:embed generated/notify_gen.sql
var NotifySQL string

// ChangesTable is the bookkeeping table that NotifySQL creates (and that
// migrating down leaves): the change counters of the session-free cache
// coherence mode, which every notification trigger increments. It is not
// one of Tables and has no trigger of its own.
const ChangesTable = "evaldb_changes"

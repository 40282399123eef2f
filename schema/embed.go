package schema

import "embed"

// FS holds the goose migrations, in version order by file name. It is what
// Migrate applies and what the test harness hashes to key its template
// database.
//
//go:embed *.sql
var FS embed.FS

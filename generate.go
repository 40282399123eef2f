// Package evaldb is the root of the evaldb module. It holds no code; import
// github.com/aah/evaldb/repo. The go:generate line below regenerates gen/
// from schema/ and queries/ with the sqlc pinned in tools/go.mod.
package evaldb

//go:generate go tool -modfile=tools/go.mod sqlc generate

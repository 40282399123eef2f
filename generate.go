// Package evaldb is the root of the evaldb module. It holds no code; import
// github.com/aah/evaldb/repo. The go:generate line below is `make
// generate`: tools/cachegen runs sqlc (pinned in tools/go.mod) and then
// derives the cache layer, the statement helpers and the notification
// triggers, all into a scratch directory, and changes the generated files
// only when every step succeeded.
package evaldb

//go:generate go run -C tools ./cachegen -root ..

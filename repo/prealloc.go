package repo

// maxPrealloc caps the capacity a page's slice starts with, so that a
// request for a huge LIMIT that returns few rows allocates no more than
// this many rows' worth up front; beyond it the slice grows by append.
const maxPrealloc = 256

// rowCap is the capacity the generated facade gives the slice of a :many
// query whose LIMIT is n (see tools/cachegen/prealloc.go): n, within
// [0, maxPrealloc].
func rowCap[N ~int | ~int16 | ~int32 | ~int64](n N) int {
	if n <= 0 {
		return 0
	}
	return int(min(int64(n), maxPrealloc))
}

package repo

// Views returns the read-only face of Queries' cached reads: the same
// statements, through the same path (cache, routing, pool timeout,
// translation, retry), but a hit hands out the cached value itself wrapped
// in a view (cachewrap.Slice, Ptr, List, RawJSON and the generated
// <Type>View structs) instead of a private copy. A view cannot change what
// the next reader gets, costs no allocation and no copy on a hit, and
// encodes to the same JSON as the gen row; its Row, Clone and AppendTo
// methods copy when a caller needs a mutable value. Use it where cached
// reads are hot (an HTTP handler encoding the row, say); Queries stays the
// gen.Querier for everything else. Safe for concurrent use; it allocates
// nothing.
func (r *Repo) Views() Views { return Views{r} }

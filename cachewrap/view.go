package cachewrap

import (
	"encoding/json"
	"iter"
	"slices"
)

// Views are read-only faces of cached values: a hit hands out the cached
// value itself, wrapped so that nothing reachable through it can be changed,
// instead of a private copy. A view costs no allocation and no copy; its
// Row, Clone and AppendTo methods make a private, mutable copy when the
// caller needs one. Package repo's Views serves every cached read this way.
//
// A view's plain fields (numbers, strings, times, UUIDs) are values the
// caller owns. Its slices and pointers are wrapped in Slice, Ptr, List and
// RawJSON, whose methods only read. A view encodes to exactly the JSON of the
// gen row it shows.
//
// cachegen generates a view struct <Type>View, and New<Type>View, for every
// gen type a cached read returns that holds slices or pointers; a type
// without them is its own view.

// Slice is a read-only view of a []T whose elements have no mutable parts.
type Slice[T any] struct{ s []T }

// SliceOf returns a read-only view of s. The caller must not change s
// afterwards.
func SliceOf[T any](s []T) Slice[T] { return Slice[T]{s} }

// Len returns the number of elements.
func (s Slice[T]) Len() int { return len(s.s) }

// At returns the i-th element. It panics if i is out of range.
func (s Slice[T]) At(i int) T { return s.s[i] }

// All yields the elements with their indexes.
func (s Slice[T]) All() iter.Seq2[int, T] { return slices.All(s.s) }

// IsNil reports whether the slice is nil: an SQL NULL array, where an
// empty one is not.
func (s Slice[T]) IsNil() bool { return s.s == nil }

// Clone returns a private copy (nil for nil).
func (s Slice[T]) Clone() []T { return slices.Clone(s.s) }

// AppendTo appends the elements to dst, so that a caller can reuse its
// own buffer.
func (s Slice[T]) AppendTo(dst []T) []T { return append(dst, s.s...) }

// MarshalJSON encodes the slice as encoding/json encodes a []T.
func (s Slice[T]) MarshalJSON() ([]byte, error) { return json.Marshal(s.s) }

// Ptr is a read-only view of a *T whose T has no mutable parts: a
// nullable column.
type Ptr[T any] struct{ p *T }

// PtrOf returns a read-only view of p. The caller must not change *p
// afterwards.
func PtrOf[T any](p *T) Ptr[T] { return Ptr[T]{p} }

// Get returns the value and true, or the zero value and false for nil
// (SQL NULL).
func (p Ptr[T]) Get() (T, bool) {
	if p.p == nil {
		var zero T
		return zero, false
	}
	return *p.p, true
}

// IsNil reports whether the pointer is nil (SQL NULL).
func (p Ptr[T]) IsNil() bool { return p.p == nil }

// Clone returns a pointer to a private copy of the value, or nil.
func (p Ptr[T]) Clone() *T {
	if p.p == nil {
		return nil
	}
	v := *p.p
	return &v
}

// MarshalJSON encodes the value as encoding/json encodes a *T.
func (p Ptr[T]) MarshalJSON() ([]byte, error) { return json.Marshal(p.p) }

// RawJSON is a read-only view of a json.RawMessage (a jsonb column).
type RawJSON struct{ b json.RawMessage }

// RawJSONOf returns a read-only view of b. The caller must not change b
// afterwards.
func RawJSONOf(b json.RawMessage) RawJSON { return RawJSON{b} }

// Len returns the document's length in bytes.
func (r RawJSON) Len() int { return len(r.b) }

// IsNil reports whether the message is nil (SQL NULL).
func (r RawJSON) IsNil() bool { return r.b == nil }

// String returns the document as a string (a copy).
func (r RawJSON) String() string { return string(r.b) }

// Clone returns a private copy (nil for nil).
func (r RawJSON) Clone() json.RawMessage { return slices.Clone(r.b) }

// AppendTo appends the document to dst.
func (r RawJSON) AppendTo(dst []byte) []byte { return append(dst, r.b...) }

// MarshalJSON returns the document, as json.RawMessage does ("null" for
// nil).
func (r RawJSON) MarshalJSON() ([]byte, error) { return r.b.MarshalJSON() }

// rowView is what the generated view V of a gen struct T implements.
type rowView[T, V any] interface {
	view(*T) V  // the view of *T (called on V's zero value)
	clone(*T) T // a private deep copy of *T
}

// List is a read-only view of a []T whose elements have mutable parts:
// each element is seen through its view V.
type List[T any, V rowView[T, V]] struct{ s []T }

// ListOf returns a read-only view of s, e.g.
// ListOf[EvalResultView](results). The caller must not change s afterwards.
func ListOf[V rowView[T, V], T any](s []T) List[T, V] { return List[T, V]{s} }

// Len returns the number of elements.
func (l List[T, V]) Len() int { return len(l.s) }

// At returns the view of the i-th element. It panics if i is out of range.
func (l List[T, V]) At(i int) V {
	var v V
	return v.view(&l.s[i])
}

// All yields the elements' views with their indexes.
func (l List[T, V]) All() iter.Seq2[int, V] {
	return func(yield func(int, V) bool) {
		var v V
		for i := range l.s {
			if !yield(i, v.view(&l.s[i])) {
				return
			}
		}
	}
}

// IsNil reports whether the slice is nil.
func (l List[T, V]) IsNil() bool { return l.s == nil }

// Clone returns a private deep copy (nil for nil).
func (l List[T, V]) Clone() []T {
	if l.s == nil {
		return nil
	}
	var v V
	c := make([]T, len(l.s))
	for i := range l.s {
		c[i] = v.clone(&l.s[i])
	}
	return c
}

// MarshalJSON encodes the slice as encoding/json encodes a []T.
func (l List[T, V]) MarshalJSON() ([]byte, error) { return json.Marshal(l.s) }

// Shared returns q's twin for package repo's Views: its Lookup and Load hand
// out the cached value itself, not a private copy. Whoever uses it must wrap
// what it returns in a view at once (ViewOf, ListOf, SliceOf, PtrOf,
// RawJSONOf) and hand nothing else on: a change to it would change what
// every later reader gets. The twin shares q's entries.
func (q *Query[A, R]) Shared() *Query[A, R] {
	s := *q
	s.copy = nil
	return &s
}

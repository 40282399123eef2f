package cachewrap

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/google/uuid"
)

// keyBufSize is the stack buffer a read builds its key in; longer keys spill
// to the heap.
const keyBufSize = 192

// The key of a cached read is
//
//	query id (2 bytes) | generation of each table it reads (8 bytes each) | arguments
//
// The query id fixes how many generations follow and the types of the
// arguments, so each argument only has to be encoded injectively given its
// type: fixed-width integers, length-prefixed strings and byte slices, a
// presence byte before pointers and slices (NULL differs from zero and from
// empty), and times as instant plus zone name and offset.

func appendLen(b []byte, n int) []byte { return binary.AppendUvarint(b, uint64(n)) }

func appendString(b []byte, s string) []byte {
	if len(s) < 0x80 { // the uvarint of a short string's length is one byte
		b = append(b, byte(len(s)))
	} else {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	return append(b, s...)
}

// appendBytes encodes nil and empty differently: a nil json.RawMessage is
// SQL NULL, an empty one is not.
func appendBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// putUint64 writes a table's generation into a key's prefix, which the
// generated key functions lay out at fixed offsets.
func putUint64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

// appendFloat64 encodes the bits, so 0 and -0 (and NaN payloads) get
// different keys: harmless, they only miss.
func appendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

func appendUUID(b []byte, u uuid.UUID) []byte { return append(b, u[:]...) }

// appendTime encodes the instant (seconds and nanoseconds), the zone offset
// and the location's name. The monotonic reading is left out: PostgreSQL
// never sees it.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	_, off := t.Zone()
	b = binary.BigEndian.AppendUint32(b, uint32(int32(off)))
	return appendString(b, t.Location().String())
}

// The generator emits these for parameter types today's queries may lack;
// keep them compiled and checked.
var _ = []any{appendLen, appendBool, appendFloat64, appendUint64}

package cachewrap

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/querymeta"
)

// TestEveryCachedReadIsAPrivateCopy checks, for every cached query, that a
// caller who changes everything mutable in what it got (every slice element,
// every pointee, at every depth) changes nothing the next caller reads. The
// values are built from the result types by reflection, with every pointer
// set and every slice non-empty, so a copy function that misses a field (or a
// new field sqlc adds) fails here.
func TestEveryCachedReadIsAPrivateCopy(t *testing.T) {
	t.Parallel()
	querier := reflect.TypeFor[gen.Querier]()
	cached := 0
	for i := range querymeta.Queries {
		qi := &querymeta.Queries[i]
		if !qi.Cached() {
			continue
		}
		cached++
		t.Run(qi.Name, func(t *testing.T) {
			t.Parallel()
			m, _ := querier.MethodByName(qi.Name)
			res := m.Type.Out(0)
			var calls atomic.Int64
			f := &fakeGen{answer: func(context.Context, string, []any) (any, error) {
				calls.Add(1)
				return fill(res, 1).Interface(), nil
			}}
			c, err := New(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			want := fill(res, 1).Interface()
			read := func() any {
				t.Helper()
				got, err := callZero(c, qi.Name)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("%s() mismatch (-want +got):\n%s", qi.Name, diff)
				}
				return got
			}
			miss := read()
			mutate(reflect.ValueOf(&miss).Elem())
			c.Wait()
			hit := read()
			mutate(reflect.ValueOf(&hit).Elem())
			read()
			if n := calls.Load(); n != 1 {
				t.Errorf("the query ran %d times, want 1: the reads after the first were not hits", n)
			}
		})
	}
	if cached == 0 {
		t.Fatal("no cached query")
	}
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// fill returns a value of type t with every field set from seed: non-zero
// numbers, non-empty strings and slices (two elements), set pointers.
func fill(t reflect.Type, seed int) reflect.Value {
	v := reflect.New(t).Elem()
	switch t {
	case timeType:
		v.Set(reflect.ValueOf(time.Unix(int64(seed)*3600, 0).UTC()))
		return v
	case rawType: // a jsonb document must stay one
		v.SetBytes([]byte(fmt.Sprintf(`{"k":%d}`, seed)))
		return v
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	case reflect.String:
		v.SetString(fmt.Sprint("s", seed))
	case reflect.Pointer:
		v.Set(fill(t.Elem(), seed+1).Addr())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(t, 2, 2))
		for i := range 2 {
			v.Index(i).Set(fill(t.Elem(), seed+1+i))
		}
	case reflect.Array:
		for i := range v.Len() {
			v.Index(i).Set(fill(t.Elem(), seed+i))
		}
	case reflect.Struct:
		for i := range t.NumField() {
			v.Field(i).Set(fill(t.Field(i).Type, seed+i))
		}
	default:
		panic(fmt.Sprintf("fill: unsupported kind %s of %s: extend the test", t.Kind(), t))
	}
	return v
}

// mutate changes every value reachable from v through pointers and slices.
func mutate(v reflect.Value) {
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		x := reflect.New(v.Elem().Type()).Elem()
		x.Set(v.Elem())
		mutate(x)
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Time{}))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 100)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 100)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 100)
	case reflect.String:
		v.SetString("mutated")
	case reflect.Pointer:
		if !v.IsNil() {
			mutate(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			mutate(v.Index(i))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			mutate(v.Field(i))
		}
	}
}

// TestSlabFitsTheRow checks that a row's copy takes the smallest slab class
// that holds it, classes growing by about √2: 20 metrics take a slab of 24
// (with powers of two they took 32: 1,792 bytes instead of 1,280). The
// class shows in the slab's layout: the values' array starts class names
// after the names' array.
func TestSlabFitsTheRow(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{1: 1, 3: 3, 5: 6, 20: 24, 33: 48, 64: 64} {
		row := studentRow("s", 1, n)
		c := copyGetStudentWithMetricsRow(&row)
		names := uintptr(unsafe.Pointer(unsafe.SliceData(c.MetricNames)))
		values := uintptr(unsafe.Pointer(unsafe.SliceData(c.MetricValues)))
		if got := int(values-names) / int(unsafe.Sizeof("")); got != want {
			t.Errorf("%d metrics: copied into a slab of %d, want %d", n, got, want)
		}
	}
}

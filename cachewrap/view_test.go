package cachewrap

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/querymeta"
)

// TestViewsShowTheRow checks, for every cached query, the view repo's Views
// makes of a result built from the result's type (every pointer set, every
// slice non-empty): it encodes to the row's JSON, its Row or Clone gives the
// row back as a private copy, and it exposes nothing a caller could change
// (no exported field reaches a pointer, slice or map).
func TestViewsShowTheRow(t *testing.T) {
	t.Parallel()
	if p := mutablePath(reflect.TypeFor[struct {
		N int
		X struct{ Y []int }
	}](), "v"); p != "v.X.Y ([]int)" {
		t.Fatalf("mutablePath found %q in a struct exposing a slice, want v.X.Y ([]int)", p)
	}
	querier := reflect.TypeFor[gen.Querier]()
	for i := range querymeta.Queries {
		qi := &querymeta.Queries[i]
		if !qi.Cached() {
			continue
		}
		t.Run(qi.Name, func(t *testing.T) {
			t.Parallel()
			m, _ := querier.MethodByName(qi.Name)
			res := m.Type.Out(0)
			row := fill(res, 1).Interface()
			view := viewOfResult(qi.Name, row)
			if view == nil {
				t.Fatalf("%s has no view (repo.Views lacks it)", qi.Name)
			}
			if path := mutablePath(reflect.TypeOf(view), "view"); path != "" {
				t.Errorf("a caller can change %s through the view", path)
			}
			wantJSON, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, err := json.Marshal(view)
			if err != nil {
				t.Fatal(err)
			}
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("view JSON\n%s\nwant the row's\n%s", gotJSON, wantJSON)
			}
			back := rowOf(view)
			if diff := cmp.Diff(row, back); diff != "" {
				t.Fatalf("row of the view mismatch (-want +got):\n%s", diff)
			}
			mutate(reflect.ValueOf(&back).Elem())
			if diff := cmp.Diff(fill(res, 1).Interface(), rowOf(view)); diff != "" {
				t.Errorf("changing the copy changed the view (-want +got):\n%s", diff)
			}
		})
	}
}

// rowOf returns a view's private copy of its row: Row for a view struct,
// Clone for a Slice, List, Ptr or RawJSON, the value itself for a plain
// type.
func rowOf(view any) any {
	v := reflect.ValueOf(view)
	for _, name := range []string{"Row", "Clone"} {
		if m := v.MethodByName(name); m.IsValid() {
			return m.Call(nil)[0].Interface()
		}
	}
	return view
}

// mutablePath returns the first exported field path of t that a caller
// could change shared memory through, or "".
func mutablePath(t reflect.Type, path string) string {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return path + " (" + t.String() + ")"
	case reflect.Array:
		return mutablePath(t.Elem(), path+"[i]")
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if p := mutablePath(f.Type, path+"."+f.Name); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

// TestSharedHitIsNotCopied checks that a hit through a query's Shared twin
// hands out the cached value itself, while a hit through the query copies,
// and that both read one entry.
func TestSharedHitIsNotCopied(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	ctx := context.Background()
	shared := GetStudentWithMetrics.Shared()
	read := func(q *Query[string, gen.GetStudentWithMetricsRow]) gen.GetStudentWithMetricsRow {
		t.Helper()
		v, err := serve(ctx, c, q, "s1", gen.Querier.GetStudentWithMetrics)
		if err != nil {
			t.Fatal(err)
		}
		c.Wait()
		return v
	}
	first := read(shared) // a miss: the value just stored
	a, b := read(shared), read(shared)
	copied := read(GetStudentWithMetrics)
	same := func(x, y gen.GetStudentWithMetricsRow) bool {
		return &x.MetricNames[0] == &y.MetricNames[0] && x.Cohort == y.Cohort
	}
	if !same(first, a) || !same(a, b) {
		t.Error("hits through Shared() were copied, want the cached value itself")
	}
	if same(a, copied) || &a.MetricValues[0] == &copied.MetricValues[0] {
		t.Error("a hit through the query shares the cached value, want a private copy")
	}
	if diff := cmp.Diff(a, copied); diff != "" {
		t.Errorf("shared and copied hits differ (-shared +copied):\n%s", diff)
	}
	if n := f.count("GetStudentWithMetrics"); n != 1 {
		t.Errorf("query ran %d times, want 1: the twin shares the query's entries", n)
	}
}

func TestViewWrappers(t *testing.T) {
	t.Parallel()
	s := SliceOf([]string{"a", "b"})
	if s.Len() != 2 || s.At(1) != "b" || s.IsNil() || !slices.Equal(s.AppendTo([]string{"x"}), []string{"x", "a", "b"}) {
		t.Errorf("Slice: Len %d, At(1) %q, IsNil %v", s.Len(), s.At(1), s.IsNil())
	}
	for i, v := range s.All() {
		if v != s.At(i) {
			t.Errorf("All yields %d, %q; At(%d) = %q", i, v, i, s.At(i))
		}
	}
	c := s.Clone()
	c[0] = "changed"
	if s.At(0) != "a" {
		t.Error("changing Clone's result changed the view")
	}
	if n := SliceOf[int](nil); !n.IsNil() || n.Clone() != nil {
		t.Error("a nil slice's view is not nil (SQL NULL became empty)")
	}
	if e := SliceOf([]int{}); e.IsNil() || e.Clone() == nil {
		t.Error("an empty slice's view is nil (an empty array became NULL)")
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := PtrOf(&at)
	if got, ok := p.Get(); !ok || !got.Equal(at) || p.IsNil() {
		t.Errorf("Ptr.Get() = %v, %v", got, ok)
	}
	*p.Clone() = time.Time{}
	if got, _ := p.Get(); !got.Equal(at) {
		t.Error("changing Clone's result changed the view")
	}
	if got, ok := PtrOf[int](nil).Get(); ok || got != 0 || PtrOf[int](nil).Clone() != nil {
		t.Errorf("Ptr(nil).Get() = %v, %v", got, ok)
	}

	r := RawJSONOf(json.RawMessage(`{"a": 1}`))
	if r.String() != `{"a": 1}` || r.Len() != 8 || r.IsNil() || string(r.AppendTo(nil)) != `{"a": 1}` {
		t.Errorf("RawJSON: %q, Len %d", r.String(), r.Len())
	}
	if b, err := json.Marshal(RawJSONOf(nil)); err != nil || string(b) != "null" {
		t.Errorf("RawJSON(nil) encodes as %s, %v; want null", b, err)
	}

	e := "boom"
	l := ListOf[EvalResultView]([]gen.EvalResult{{CaseID: "c1", Error: &e}, {CaseID: "c2"}})
	if l.Len() != 2 || l.At(0).CaseID != "c1" || l.At(1).Error.IsNil() != true {
		t.Errorf("List: Len %d, At(0).CaseID %q", l.Len(), l.At(0).CaseID)
	}
	for i, v := range l.All() {
		if v.CaseID != l.At(i).CaseID {
			t.Errorf("All yields %d, %q", i, v.CaseID)
		}
	}
	cl := l.Clone()
	*cl[0].Error = "changed"
	if got, _ := l.At(0).Error.Get(); got != "boom" {
		t.Errorf("changing Clone's result changed the view: %q", got)
	}
}

package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

// TestOpenAPISchemasMatchTheGoTypes checks openapi.json's object schemas
// against the Go types the service encodes and decodes, most of them
// generated from schema/ and queries/ by sqlc: the same properties, each
// of the JSON type its Go field has (a pointer is nullable), every
// response property required. A column added, dropped or retyped fails
// here, saying which schema of openapi.json to change, before any answer
// drifts from the document.
func TestOpenAPISchemasMatchTheGoTypes(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	runRequest := reflect.StructOf([]reflect.StructField{
		{Name: "RunBody", Type: reflect.TypeFor[runBody](), Anonymous: true},
		{Name: "Results", Type: reflect.TypeFor[[]resultBody](), Tag: `json:"results"`},
		{Name: "Metrics", Type: reflect.TypeFor[[]metricBody](), Tag: `json:"metrics"`},
	})
	for _, tc := range []struct {
		schema   string
		typ      reflect.Type
		response bool // every property is always present
		request  bool // decoded from a request, not encoded into an answer
	}{
		{"EvalRun", reflect.TypeFor[gen.EvalRun](), true, false},
		{"EvalResult", reflect.TypeFor[gen.EvalResult](), true, false},
		{"EvalMetric", reflect.TypeFor[gen.EvalMetric](), true, false},
		{"Summary", reflect.TypeFor[gen.GetEvalRunSummaryRow](), true, false},
		{"Run", reflect.TypeFor[runJSON](), true, false},
		{"Student", reflect.TypeFor[studentJSON](), true, false},
		{"RunsPage", reflect.TypeFor[runsPage](), false, false},
		{"ResultsPage", reflect.TypeFor[resultsPage](), false, false},
		{"Error", reflect.TypeFor[Error](), false, false},
		{"Problem", reflect.TypeFor[Problem](), false, false},
		{"RunRequest", runRequest, false, true},
		{"ResultRequest", reflect.TypeFor[resultBody](), false, true},
		{"MetricRequest", reflect.TypeFor[metricBody](), false, true},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			ref := doc.Components.Schemas[tc.schema]
			if ref == nil || ref.Value == nil {
				t.Fatalf("openapi.json has no components.schemas.%s (for %s)", tc.schema, tc.typ)
			}
			s := ref.Value
			fields := jsonFields(tc.typ)
			var names, props []string
			for name := range fields {
				names = append(names, name)
			}
			for name := range s.Properties {
				props = append(props, name)
			}
			sort.Strings(names)
			sort.Strings(props)
			if !slices.Equal(names, props) {
				t.Fatalf("components.schemas.%s in httpapi/openapi.json has properties %v, but %s has %v: describe the change there",
					tc.schema, props, tc.typ, names)
			}
			if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
				t.Errorf("components.schemas.%s allows undocumented properties; set additionalProperties to false", tc.schema)
			}
			for name, f := range fields {
				if want, got := jsonTypes(f, tc.request), s.Properties[name].Value.Type.Slice(); want != nil && !slices.Equal(want, sortedCopy(got)) {
					t.Errorf("components.schemas.%s.%s has type %v, but the Go field (%s) takes %v", tc.schema, name, got, f.typ, want)
				}
				if tc.response && !slices.Contains(s.Required, name) {
					t.Errorf("components.schemas.%s.%s is always in the answer: list it in required", tc.schema, name)
				}
			}
		})
	}
}

type jsonField struct {
	typ       reflect.Type
	omitempty bool
}

// jsonFields maps the JSON names of a struct's fields (embedded structs
// flattened, as encoding/json does) to their types.
func jsonFields(t reflect.Type) map[string]jsonField {
	out := map[string]jsonField{}
	for f := range t.Fields() {
		if f.Anonymous {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = jsonField{f.Type, strings.Contains(opts, "omitempty")}
	}
	return out
}

// jsonTypes is the sorted JSON Schema type list of a field, or nil for any
// JSON value (json.RawMessage): a pointer is null when nil (unless
// omitempty leaves it out), and a request may send null for a slice.
func jsonTypes(f jsonField, request bool) []string {
	var types []string
	t := f.typ
	if t.Kind() == reflect.Pointer {
		if !f.omitempty {
			types = append(types, "null")
		}
		t = t.Elem()
	}
	if request && t.Kind() == reflect.Slice {
		types = append(types, "null")
	}
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		return nil
	case t == reflect.TypeFor[uuid.UUID](), t == reflect.TypeFor[time.Time](), t.Kind() == reflect.String:
		types = append(types, openapi3.TypeString)
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		types = append(types, openapi3.TypeNumber)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		types = append(types, openapi3.TypeInteger)
	case t.Kind() == reflect.Bool:
		types = append(types, openapi3.TypeBoolean)
	case t.Kind() == reflect.Slice:
		types = append(types, openapi3.TypeArray)
	case t.Kind() == reflect.Struct:
		if types == nil {
			return nil // a $ref to another schema, checked on its own
		}
		types = append(types, openapi3.TypeObject)
	}
	sort.Strings(types)
	return types
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

package txn

import (
	"testing"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

func benchResults(n int) []Result {
	rs := make([]Result, n)
	e := "err"
	for i := range rs {
		rs[i] = Result{CaseID: "c", Input: "i", Expected: "e", Output: "o", Score: 1, LatencyMs: 3}
		if i%2 == 0 {
			rs[i].Error = &e
		}
	}
	return rs
}

// BenchmarkRecordCopySource is the client side of RecordEvalRun's COPY
// path: building 10,000 rows' values through gen.InsertEvalResultsCopyValues.
// go test -run '^$' -bench 'RecordCopySource|RecordBatchArgs' -benchmem ./txn/
func BenchmarkRecordCopySource(b *testing.B) {
	rs := benchResults(10000)
	id := uuid.New()
	b.ReportAllocs()
	for b.Loop() {
		s := benchSource(id, rs)
		for s.Next() {
			if _, err := s.Values(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchSource(id uuid.UUID, rs []Result) *resultSource {
	return &resultSource{row: gen.InsertEvalResultsParams{RunID: id}, rows: rs}
}

// BenchmarkRecordBatchArgs is the client side of the batch path: 1,000
// results' arrays through gen.InsertEvalResultsUnnestArgs.
func BenchmarkRecordBatchArgs(b *testing.B) {
	rs := benchResults(1000)
	id := uuid.New()
	b.ReportAllocs()
	for b.Loop() {
		_ = gen.InsertEvalResultsUnnestArgs(resultParams(id, rs))
	}
}

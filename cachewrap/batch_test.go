package cachewrap

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/aah/evaldb/gen"
)

// TestBatchWriteInvalidatesAtClose checks that a batch write through the
// Cache's gen.Querier invalidates the reads of the tables it writes when
// the batch is closed, not when it is sent: a read made while the batch is
// in flight may cache what the batch is changing, and must not outlive it.
func TestBatchWriteInvalidatesAtClose(t *testing.T) {
	t.Parallel()
	c, f, _ := setup(t, nil)
	ctx := context.Background()
	id := uuid.New()
	read := func() int {
		t.Helper()
		before := f.count("GetEvalRun")
		if _, err := c.GetEvalRun(ctx, id); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		return f.count("GetEvalRun") - before
	}
	read()
	if n := read(); n != 0 {
		t.Fatalf("second read ran the query %d times, want a hit", n)
	}
	res := c.SetEvalRunStatuses(ctx, []gen.SetEvalRunStatusesParams{{ID: id, Status: "failed"}, {ID: id, Status: "completed"}})
	read() // in flight: cached under the generation the batch will bump
	n := 0
	res.Exec(func(int, error) { n++ })
	if n != 2 {
		t.Errorf("Exec ran %d callbacks, want 2", n)
	}
	if got := read(); got != 1 {
		t.Errorf("read after the batch was closed ran the query %d times, want 1 (a miss)", got)
	}
	if err := res.Close(); err != nil {
		t.Errorf("Close again = %v, want nil", err)
	}
	if got := read(); got != 0 {
		t.Errorf("a second Close invalidated again (%d runs), want a hit", got)
	}
}

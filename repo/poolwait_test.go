package repo

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitEnds fails the test unless w's Done closes within a generous bound
// (a hang guard, not a timing assertion: the waits here end within 3 s).
func waitEnds(t *testing.T, w *poolWait) {
	t.Helper()
	select {
	case <-w.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the wait never ended")
	}
}

func TestPoolWaitTimesOutAtItsDeadline(t *testing.T) {
	ws := &poolWaits{timeout: 20 * time.Millisecond}
	before := time.Now()
	w := ws.start(context.Background())
	if d, ok := w.Deadline(); !ok || d.Before(before.Add(ws.timeout)) {
		t.Errorf("Deadline() = %v, %v; want at least start + the pool timeout", d, ok)
	}
	if err := w.Err(); err != nil && time.Since(before) < ws.timeout {
		t.Fatalf("Err() before the timeout = %v, want nil", err)
	}
	waitEnds(t, w)
	if time.Now().Before(before.Add(ws.timeout)) {
		t.Error("the wait ended before its pool timeout")
	}
	if err := w.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want context.DeadlineExceeded", err)
	}
	if !ws.end(w) {
		t.Error("end() = false, want true: the pool timeout ended the wait")
	}
}

// The one timer, armed for a wait that ended quickly, must still end a
// later wait at that wait's own deadline (it re-arms when it finds nothing
// due), and stay off once no wait is left.
func TestPoolWaitTimerServesLaterWaits(t *testing.T) {
	ws := &poolWaits{timeout: 20 * time.Millisecond}
	for i := range 3 {
		quick := ws.start(context.Background())
		ws.end(quick)                    // a stalled machine may time it out too: no matter
		time.Sleep(5 * time.Millisecond) // the timer is still armed for quick's deadline
		start := time.Now()
		w := ws.start(context.Background())
		waitEnds(t, w)
		if time.Now().Before(start.Add(ws.timeout)) {
			t.Fatalf("round %d: the later wait ended before its own deadline (at the earlier wait's)", i)
		}
		if !ws.end(w) || !errors.Is(w.Err(), context.DeadlineExceeded) {
			t.Fatalf("round %d: end() = false or Err() = %v, want a pool timeout", i, w.Err())
		}
	}
	// With no wait left the timer turns itself off.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws.mu.Lock()
		armed, head := ws.armed, ws.head
		ws.mu.Unlock()
		if head != nil {
			t.Fatal("a wait is still listed after every wait ended")
		}
		if !armed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timer stays armed with no wait left")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolWaitManyWaitsAllTimeOut(t *testing.T) {
	ws := &poolWaits{timeout: 3 * time.Second} // long enough that no stall of the machine times out waits[25] or [49]
	var waits []*poolWait
	for range 50 {
		waits = append(waits, ws.start(context.Background()))
	}
	// One in the middle and the last get their connection first.
	for _, w := range []*poolWait{waits[25], waits[49]} {
		if ws.end(w) {
			t.Fatal("a wait ended before its deadline reports a pool timeout")
		}
	}
	for i, w := range waits {
		if i == 25 || i == 49 {
			continue
		}
		waitEnds(t, w)
		if !ws.end(w) {
			t.Errorf("wait %d: end() = false, want a pool timeout", i)
		}
	}
	if d := waits[25].Err(); d != nil {
		t.Errorf("a wait that got its connection has Err() = %v, want nil", d)
	}
}

type waitKey struct{}

func TestPoolWaitCallersContextEndsItFirst(t *testing.T) {
	ws := &poolWaits{timeout: time.Hour}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), waitKey{}, "v"))
	w := ws.start(ctx)
	if v := w.Value(waitKey{}); v != "v" {
		t.Errorf("Value() = %v, want the caller's value", v)
	}
	cancel()
	waitEnds(t, w)
	if err := w.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
	if ws.end(w) {
		t.Error("end() = true, want false: the caller's ctx ended the wait, not the pool timeout")
	}

	// A ctx that has already ended ends the wait before Acquire looks at it.
	w = ws.start(ctx)
	select {
	case <-w.Done():
	default:
		t.Fatal("a wait under an ended ctx is not done at once")
	}
	if ws.end(w) || !errors.Is(w.Err(), context.Canceled) {
		t.Errorf("a wait under an ended ctx: Err() = %v, want context.Canceled and no pool timeout", w.Err())
	}

	// The caller's earlier deadline is the wait's deadline.
	dl := time.Now().Add(time.Minute)
	dctx, dcancel := context.WithDeadline(context.Background(), dl)
	defer dcancel()
	w = ws.start(dctx)
	defer ws.end(w)
	if d, ok := w.Deadline(); !ok || !d.Equal(dl) {
		t.Errorf("Deadline() = %v, %v; want the caller's %v", d, ok, dl)
	}
}

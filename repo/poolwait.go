package repo

import (
	"context"
	"sync"
	"time"
)

// poolWaits bounds the wait for a connection by a target's pool timeout
// without arming a timer for every acquire.
//
// pgxpool's Acquire waits as long as its ctx allows, so the pool timeout
// has to be a ctx that ends when the timeout runs out. context.WithTimeout
// arms a runtime timer per acquire (with its allocations, its cancel and
// its Done channel: about a tenth of a PK read's client instructions), yet
// an acquire that finds an idle connection never waits on it. Every wait of
// one target has the same timeout, so the waits, kept in the order they
// began, are also in the order of their deadlines: one timer per target,
// armed at or before the oldest wait's deadline, serves them all. It fires
// at the oldest deadline, ends the waits whose deadline has passed and
// moves on to the next oldest; a wait that got its connection leaves the
// list, and the timer, finding nothing due when it fires, arms itself for
// the new oldest wait or, with none, stays off until the next acquire.
// While statements come and go faster than the pool timeout, the timer
// fires about once per pool timeout instead of being armed and stopped per
// statement, and each acquire costs two short critical sections.
//
// The semantics are those of context.WithTimeout's: a wait ends exactly at
// its own deadline with context.DeadlineExceeded, or with the caller's
// error when the caller's ctx ends first.
type poolWaits struct {
	timeout time.Duration

	mu         sync.Mutex
	head, tail *poolWait   // the waits in progress, oldest first
	timer      *time.Timer // armed (at or before head's deadline) while armed is set
	armed      bool
}

// poolWait is the ctx one acquire passes to pgxpool: the caller's ctx (its
// values, its cancellation), ended early at the pool timeout. It must not
// be used after end.
type poolWait struct {
	context.Context // the caller's

	deadline time.Time
	done     chan struct{}
	err      error // set before done is closed
	timedOut bool  // ended by the pool timeout (under ws.mu)
	linked   bool  // in ws's list (under ws.mu)
	prev     *poolWait
	next     *poolWait
	stop     func() bool // stops the AfterFunc on the caller's ctx
}

// start begins a wait under ctx; end must follow once the acquire returns.
func (ws *poolWaits) start(ctx context.Context) *poolWait {
	w := &poolWait{Context: ctx, done: make(chan struct{})}
	ws.mu.Lock()
	w.deadline = time.Now().Add(ws.timeout)
	w.linked = true
	if w.prev = ws.tail; w.prev != nil {
		w.prev.next = w
	} else {
		ws.head = w
	}
	ws.tail = w
	if !ws.armed {
		ws.armed = true
		if ws.timer == nil {
			ws.timer = time.AfterFunc(ws.timeout, ws.expire)
		} else {
			ws.timer.Reset(ws.timeout)
		}
	}
	ws.mu.Unlock()
	if ctx.Done() != nil {
		w.stop = context.AfterFunc(ctx, func() { ws.finish(w, ctx.Err()) })
		if err := ctx.Err(); err != nil { // AfterFunc's f runs in a goroutine of its own
			ws.finish(w, err)
		}
	}
	return w
}

// end takes w out of the list and reports whether the pool timeout ended
// it.
func (ws *poolWaits) end(w *poolWait) bool {
	if w.stop != nil {
		w.stop()
	}
	ws.mu.Lock()
	if w.linked {
		ws.unlinkLocked(w)
	}
	timedOut := w.timedOut
	ws.mu.Unlock()
	return timedOut
}

// expire is the timer's function: it ends every wait whose deadline has
// passed and arms the timer for the oldest one left.
func (ws *poolWaits) expire() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	now := time.Now()
	for ws.head != nil && !ws.head.deadline.After(now) {
		ws.endLocked(ws.head, context.DeadlineExceeded, true)
	}
	if ws.head == nil {
		ws.armed = false
		return
	}
	ws.timer.Reset(ws.head.deadline.Sub(now))
}

func (ws *poolWaits) finish(w *poolWait, err error) {
	ws.mu.Lock()
	if w.linked {
		ws.endLocked(w, err, false) // the caller's ctx ended it
	}
	ws.mu.Unlock()
}

// endLocked ends the wait w, which is in the list, with err.
func (ws *poolWaits) endLocked(w *poolWait, err error, timedOut bool) {
	ws.unlinkLocked(w)
	w.err, w.timedOut = err, timedOut
	close(w.done)
}

func (ws *poolWaits) unlinkLocked(w *poolWait) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		ws.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		ws.tail = w.prev
	}
	w.prev, w.next, w.linked = nil, nil, false
}

// Deadline is the earlier of the pool timeout's and the caller's.
func (w *poolWait) Deadline() (time.Time, bool) {
	if d, ok := w.Context.Deadline(); ok && d.Before(w.deadline) {
		return d, true
	}
	return w.deadline, true
}

func (w *poolWait) Done() <-chan struct{} { return w.done }

func (w *poolWait) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

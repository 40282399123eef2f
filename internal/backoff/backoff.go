// Package backoff is evaldb's one exponential backoff with jitter, used by
// txn's retries, the cache invalidation listener's reconnects and the read
// replicas' health checks.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the wait after the first failure is
// Base, each further one doubles, capped at Max, and every wait is jittered
// to between half and all of that (so concurrent clients that failed
// together do not retry together). The zero Policy never waits.
type Policy struct {
	Base, Max time.Duration
}

// Delay returns the jittered wait after the given failed attempt (1 for
// the first failure).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 1 {
		return max(d, 0)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits for d or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayDoublesWithinJitterAndCap(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	for _, tt := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, 5 * time.Millisecond, 10 * time.Millisecond},
		{2, 10 * time.Millisecond, 20 * time.Millisecond},
		{3, 20 * time.Millisecond, 40 * time.Millisecond},
		{4, 25 * time.Millisecond, 50 * time.Millisecond}, // capped
		{40, 25 * time.Millisecond, 50 * time.Millisecond},
	} {
		for range 200 {
			if d := p.Delay(tt.attempt); d < tt.lo || d > tt.hi {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", tt.attempt, d, tt.lo, tt.hi)
			}
		}
	}
	if d := (Policy{}).Delay(3); d != 0 {
		t.Errorf("zero Policy Delay = %s, want 0", d)
	}
}

func TestSleepEndsWithCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep(1ms) = %v, want nil", err)
	}
}

package dberr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aah/evaldb/dberr"
)

// A pool timeout is nameable both ways: as ErrPoolTimeout and as the
// deadline of the wait it ran out of.
func TestPoolTimeoutErrorUnwrapsItsCause(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("get user: %w", &dberr.PoolTimeoutError{MaxConns: 3, Timeout: time.Second, Err: context.DeadlineExceeded})
	if !errors.Is(err, dberr.ErrPoolTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, ErrPoolTimeout / DeadlineExceeded) = %v / %v, want both true", err,
			errors.Is(err, dberr.ErrPoolTimeout), errors.Is(err, context.DeadlineExceeded))
	}
	var pte *dberr.PoolTimeoutError
	if !errors.As(err, &pte) || pte.MaxConns != 3 {
		t.Errorf("errors.As(*PoolTimeoutError) = %v, want MaxConns 3", pte)
	}
}

func TestURLErrorNamesTheParameter(t *testing.T) {
	t.Parallel()
	err := &dberr.URLError{Param: "connection_limit", Value: "0", Reason: "must be between 1 and 10000"}
	if got, want := err.Error(), `database URL parameter connection_limit="0": must be between 1 and 10000`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

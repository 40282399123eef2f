package dberr

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// lockErr stands in for pgconn's unexported connLockError, which is safe
// to retry by its own account and reads "conn closed".
type lockErr struct{ status string }

func (e lockErr) Error() string     { return e.status }
func (e lockErr) SafeToRetry() bool { return true }

type unsent struct{}

func (unsent) Error() string     { return "write failed before sending" }
func (unsent) SafeToRetry() bool { return true }

func TestNeverSent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"Nil", nil, false},
		{"UnexpectedEOF", io.ErrUnexpectedEOF, false},
		{"SafeToRetry", unsent{}, true},
		{"WrappedSafeToRetry", fmt.Errorf("exec: %w", unsent{}), true},
		{"ConnClosedMayHaveRun", lockErr{"conn closed"}, false},
		{"WrappedConnClosed", fmt.Errorf("commit: %w", lockErr{"conn closed"}), false},
		{"ConnBusy", lockErr{"conn busy"}, true},
		{"Joined", errors.Join(errors.New("x"), lockErr{"conn closed"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeverSent(tc.err); got != tc.want {
				t.Errorf("NeverSent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

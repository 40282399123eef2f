package dberr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

func TestTranslateCtx(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	live := context.Background()
	qc := &pgconn.PgError{Code: CodeQueryCanceled, Message: "canceling statement due to user request"}
	already := fmt.Errorf("%w: %w", context.Canceled, qc)
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		err     error
		wantCtx error // the context error the result must wrap, or nil for none
		same    bool  // the result is err itself
	}{
		{"Nil", canceled, nil, nil, true},
		{"QueryCanceledWithCanceledCtx", canceled, qc, context.Canceled, false},
		{"WrappedQueryCanceledWithCanceledCtx", canceled, fmt.Errorf("exec: %w", qc), context.Canceled, false},
		{"QueryCanceledPastDeadline", expired, qc, context.DeadlineExceeded, false},
		// statement_timeout, or a cancel sent by someone else: the caller
		// did not give up, so it stays the server's error.
		{"QueryCanceledWithLiveCtx", live, qc, nil, true},
		{"OtherCodeWithCanceledCtx", canceled, &pgconn.PgError{Code: "22021"}, nil, true},
		{"AlreadyWrapsCtx", canceled, already, context.Canceled, true},
		// pgx closed the connection because ctx ended (no cancel request
		// answered, or COPY's writer stopped): the caller's cancel is why.
		{"ConnClosedWithCanceledCtx", canceled, fmt.Errorf("%w: %w", ErrConnClosed, net.ErrClosed), context.Canceled, false},
		{"NetClosedPastDeadline", expired, fmt.Errorf("copy: %w", net.ErrClosed), context.DeadlineExceeded, false},
		{"ConnClosedWithLiveCtx", live, fmt.Errorf("%w: %w", ErrConnClosed, net.ErrClosed), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := TranslateCtx(tc.ctx, tc.err)
			if tc.same && got != tc.err {
				t.Errorf("TranslateCtx(%v) = %v, want it unchanged", tc.err, got)
			}
			for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
				if want := c == tc.wantCtx; errors.Is(got, c) != want {
					t.Errorf("errors.Is(TranslateCtx(%v), %v) = %v, want %v", tc.err, c, !want, want)
				}
			}
			var pgErr *pgconn.PgError
			if tc.err != nil && errors.As(tc.err, &pgErr) {
				want := pgErr
				if !errors.As(got, &pgErr) || pgErr != want {
					t.Errorf("TranslateCtx(%v) = %v: the *pgconn.PgError is no longer reachable", tc.err, got)
				}
			}
		})
	}
}

package txn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/dberr"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/backoff"
	idberr "github.com/aah/evaldb/internal/dberr"
	"github.com/aah/evaldb/observe"
)

// Beginner begins a transaction. *pgxpool.Pool, *pgx.Conn, pgx.Tx (which
// begins a savepoint) and pgxmock's pools and connections satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// txBeginner is a Beginner that can also set the isolation level and access
// mode; *pgxpool.Pool, *pgx.Conn and pgxmock have it, pgx.Tx does not.
type txBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Cache is told about a transaction's writes; cachewrap.(*Cache) implements
// it. Implementations must be safe for concurrent use.
type Cache interface {
	// Tx wraps the transaction-bound queries: reads bypass the cache, and the
	// tables that writes touch are recorded; commit must be called only
	// after COMMIT succeeded (never before) and invalidates them.
	//
	// Do also calls commit when the outcome of COMMIT is unknown (the
	// connection was lost while it was in flight), because the writes may
	// have been committed. It never calls commit after a rollback.
	Tx(q gen.Querier) (txq gen.Querier, commit func())
	// Invalidate marks tables as changed (used after COMMIT for writes not
	// made through gen.Querier, e.g. RecordEvalRun's batch/COPY:
	// "eval_runs", "eval_results", "eval_metrics").
	Invalidate(tables ...string)
}

// Defaults of Options.
const (
	// DefaultMaxWait is Prisma's maxWait: how long to wait for a connection
	// and BEGIN.
	DefaultMaxWait = 2 * time.Second
	// DefaultTimeout is Prisma's timeout: how long one attempt of the
	// transaction, BEGIN to COMMIT, may take.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxAttempts is how many times a transaction is tried in all.
	DefaultMaxAttempts = 5
	// DefaultBaseBackoff is the wait before the first retry; it doubles for
	// each further one.
	DefaultBaseBackoff = 10 * time.Millisecond
	// DefaultMaxBackoff caps the wait between two attempts.
	DefaultMaxBackoff = 500 * time.Millisecond
)

// Options configures Do and RecordEvalRun. A nil *Options means all
// defaults; zero fields take their defaults. An Options may be shared by
// concurrent calls as long as nobody modifies it.
type Options struct {
	// Isolation is the transaction isolation level, e.g. pgx.Serializable.
	// Default "": the server's default (normally read committed). It needs a
	// Beginner with BeginTx (a pool or connection, not a pgx.Tx).
	Isolation pgx.TxIsoLevel
	// AccessMode is pgx.ReadOnly or pgx.ReadWrite. Default "": the server's
	// default (read write).
	AccessMode pgx.TxAccessMode
	// MaxWait bounds waiting for a connection plus BEGIN, per attempt. When
	// it runs out the error wraps dberr.ErrPoolTimeout and is not retried.
	// Default DefaultMaxWait (2 s), except on a Beginner that bounds the wait
	// for a connection itself (repo's DB(), which reports its PoolTimeout):
	// there a transaction waits for a connection exactly as a query does,
	// within the pool timeout (failing with a *dberr.PoolTimeoutError that
	// the pool counts) or, with a pool timeout of 0, as long as ctx allows,
	// and MaxWait applies only when set.
	MaxWait time.Duration
	// Timeout bounds one attempt from BEGIN to COMMIT; fn's ctx carries it.
	// When it runs out the transaction is rolled back and the error wraps
	// ErrTimeout and context.DeadlineExceeded. Default DefaultTimeout (5 s).
	Timeout time.Duration
	// MaxAttempts is how many attempts Do makes in all (1 = never retry).
	// Default DefaultMaxAttempts (5).
	MaxAttempts int
	// BaseBackoff is the wait before the second attempt; each further wait
	// doubles, capped at MaxBackoff, and is jittered to between half and all
	// of that. Default DefaultBaseBackoff (10 ms).
	BaseBackoff time.Duration
	// MaxBackoff caps the wait between attempts. Default DefaultMaxBackoff
	// (500 ms).
	MaxBackoff time.Duration
	// Cache is told which tables a committed transaction changed. Default
	// nil: no cache.
	Cache Cache
	// CopyThreshold is RecordEvalRun's switch between its two write paths:
	// runs with at least this many results are loaded with COPY, smaller ones
	// go in one pipelined batch. Default DefaultCopyThreshold, measured on
	// the development machine (see BENCHMARKS.md); -1 means always batch.
	CopyThreshold int
	// Logger receives a line per retry. Default nil: silent.
	Logger *slog.Logger
	// Observer is told about each transaction (observe.Observer.StartTx),
	// its retries and its end; statements in it run under the context it
	// returns. Default nil: nothing observed.
	Observer observe.Observer
}

// resolve validates the options and fills in the defaults.
func (o *Options) resolve() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MaxWait", r.MaxWait}, {"Timeout", r.Timeout}, {"BaseBackoff", r.BaseBackoff}, {"MaxBackoff", r.MaxBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("txn: Options.%s must be >= 0, 0 for the default (got %s)", d.name, d.v))
		}
	}
	if r.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("txn: Options.MaxAttempts must be >= 0, 1 to disable retries (got %d)", r.MaxAttempts))
	}
	if r.CopyThreshold < -1 {
		errs = append(errs, fmt.Errorf("txn: Options.CopyThreshold must be >= -1 (got %d)", r.CopyThreshold))
	}
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	r.Timeout = cmp.Or(r.Timeout, DefaultTimeout)
	r.MaxAttempts = cmp.Or(r.MaxAttempts, DefaultMaxAttempts)
	r.BaseBackoff = cmp.Or(r.BaseBackoff, DefaultBaseBackoff)
	r.MaxBackoff = cmp.Or(r.MaxBackoff, DefaultMaxBackoff)
	r.CopyThreshold = cmp.Or(r.CopyThreshold, DefaultCopyThreshold)
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

var (
	// ErrCommitUnknown is dberr.ErrCommitUnknown: the connection was lost
	// while COMMIT was in flight, so whether the transaction committed is
	// unknown. Do does not retry it; the caller must find out (RecordEvalRun
	// does so by itself). The error also wraps dberr.ErrConnClosed.
	ErrCommitUnknown = dberr.ErrCommitUnknown

	// ErrTimeout is dberr.ErrTxTimeout: the transaction ran longer than
	// Options.Timeout and was rolled back. The error also wraps
	// context.DeadlineExceeded.
	ErrTimeout = dberr.ErrTxTimeout
)

// Tx is the transaction handed to Do's fn: the typed queries bound to it
// (embedded, so tx.GetEvalRun(ctx, id) works) and the raw pgx.Tx. Each
// attempt gets a new Tx; it is valid only until fn returns and, like
// pgx.Tx, is not safe for concurrent use.
type Tx struct {
	gen.Querier
	raw     pgx.Tx
	attempt int
	touched []string
}

// Raw returns the underlying pgx.Tx for what gen.Querier cannot do (batches,
// COPY, ad-hoc SQL). Do not Commit or Rollback it: Do does. Writes made
// through it are invisible to Options.Cache unless declared with Touch.
func (t *Tx) Raw() pgx.Tx { return t.raw }

// Attempt returns which attempt this is, starting at 1.
func (t *Tx) Attempt() int { return t.attempt }

// Touch declares tables written through Raw, so that Options.Cache
// invalidates them after COMMIT. Without a cache it does nothing harmful.
func (t *Tx) Touch(tables ...string) { t.touched = append(t.touched, tables...) }

// Do runs fn in a transaction on db: it begins one (waiting at most
// Options.MaxWait), runs fn with a ctx bounded by Options.Timeout, commits
// when fn returns nil and rolls back when fn returns an error or panics
// (the panic goes on). opts nil means defaults.
//
// Attempts that fail with a serialization failure (40001), a deadlock
// (40P01) or a connection failure before COMMIT are retried with backoff
// (see the package doc), so fn must be safe to run again. Any other error is
// returned at once, translated by dberr.Translate: fn's own errors keep
// their identity for errors.Is/As. Errors to know: ErrCommitUnknown (never
// retried), ErrTimeout, dberr.ErrPoolTimeout (MaxWait ran out), ctx's error.
//
// When db is a pgx.Tx, Do runs fn in a savepoint and never retries: the
// outer transaction owns the retries. Do is safe for concurrent use when db
// is (a pool is; a single connection or pgx.Tx is not).
func Do(ctx context.Context, db Beginner, opts *Options, fn func(ctx context.Context, tx *Tx) error) error {
	o, err := opts.resolve()
	if err != nil {
		return err
	}
	return do(ctx, db, &o, fn)
}

// do is Do with resolved options.
func do(ctx context.Context, db Beginner, o *Options, fn func(ctx context.Context, tx *Tx) error) error {
	if o.Observer == nil {
		return attempts(ctx, db, o, fn, nil)
	}
	ctx, span := o.Observer.StartTx(ctx, &observe.Tx{Isolation: string(o.Isolation), ReadOnly: o.AccessMode == pgx.ReadOnly})
	err := attempts(ctx, db, o, fn, span)
	span.End(err)
	return err
}

// attempts runs the attempts of one transaction.
func attempts(ctx context.Context, db Beginner, o *Options, fn func(ctx context.Context, tx *Tx) error, span observe.TxSpan) error {
	maxAttempts := o.MaxAttempts
	if isNested(db) {
		maxAttempts = 1
	}
	for attempt := 1; ; attempt++ {
		retry, err := attemptOnce(ctx, db, o, attempt, fn)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		if attempt >= maxAttempts {
			if maxAttempts == 1 {
				return err
			}
			return fmt.Errorf("transaction failed %d times, giving up: %w", attempt, err)
		}
		wait := o.backoff().Delay(attempt)
		o.Logger.InfoContext(ctx, "txn: retrying transaction", "attempt", attempt, "wait", wait, "error", err)
		if werr := backoff.Sleep(ctx, wait); werr != nil {
			return fmt.Errorf("waiting to retry (%w) after: %w", werr, err)
		}
		if span != nil {
			span.Retry(attempt+1, err)
		}
	}
}

// connWaiter is a Beginner that bounds the wait for a connection itself,
// within its PoolTimeout (repo's DB()).
type connWaiter interface {
	PoolTimeout() time.Duration
}

// maxWait is the bound of one attempt's wait for a connection plus BEGIN,
// 0 for none.
func maxWait(db Beginner, o *Options) time.Duration {
	if o.MaxWait > 0 {
		return o.MaxWait
	}
	if _, ok := db.(connWaiter); ok {
		return 0
	}
	return DefaultMaxWait
}

// attemptOnce makes one attempt: BEGIN, fn, COMMIT. It reports whether the
// failure may be retried.
func attemptOnce(ctx context.Context, db Beginner, o *Options, attempt int, fn func(ctx context.Context, tx *Tx) error) (retry bool, err error) {
	beginCtx, cancelBegin := ctx, context.CancelFunc(func() {})
	wait := maxWait(db, o)
	if wait > 0 {
		beginCtx, cancelBegin = context.WithTimeout(ctx, wait)
	}
	pgtx, err := begin(beginCtx, db, o)
	cancelBegin()
	if err != nil {
		if errors.Is(err, dberr.ErrPoolTimeout) {
			return false, fmt.Errorf("begin transaction: %w", err)
		}
		if ctx.Err() == nil && errors.Is(beginCtx.Err(), context.DeadlineExceeded) {
			return false, fmt.Errorf("begin transaction: %w: no connection and BEGIN within Options.MaxWait (%s): %w",
				dberr.ErrPoolTimeout, wait, err)
		}
		terr := idberr.TranslateCtx(ctx, err)
		return ctx.Err() == nil && isConnFailure(terr), fmt.Errorf("begin transaction: %w", terr)
	}

	txCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var q gen.Querier = gen.New(batchTx{pgtx})
	if o.Observer != nil {
		q = observedQuerier{q: q, obs: o.Observer}
	}
	var cacheCommit func()
	if o.Cache != nil {
		q, cacheCommit = o.Cache.Tx(q)
	}
	t := &Tx{Querier: q, raw: pgtx, attempt: attempt}

	finished := false
	defer func() {
		if !finished { // fn panicked
			rollback(ctx, o, pgtx)
		}
	}()
	err = fn(txCtx, t)
	finished = true
	if err != nil {
		rollback(ctx, o, pgtx)
		return classify(ctx, txCtx, o, err)
	}

	if err := pgtx.Commit(txCtx); err != nil {
		if commitOutcomeUnknown(err) {
			notifyCache(o, t, cacheCommit)
			terr := idberr.Translate(err)
			if ctx.Err() == nil && txCtx.Err() != nil {
				terr = fmt.Errorf("%w after Options.Timeout (%s): %w", ErrTimeout, o.Timeout, terr)
			}
			return false, fmt.Errorf("commit: %w: %w", ErrCommitUnknown, terr)
		}
		// The server answered (or nothing was sent): it did not commit.
		rollback(ctx, o, pgtx)
		retry, err := classify(ctx, txCtx, o, err)
		return retry, fmt.Errorf("commit: %w", err)
	}
	notifyCache(o, t, cacheCommit)
	return false, nil
}

func notifyCache(o *Options, t *Tx, cacheCommit func()) {
	if cacheCommit != nil {
		cacheCommit()
	}
	if o.Cache != nil && len(t.touched) > 0 {
		o.Cache.Invalidate(t.touched...)
	}
}

// begin starts a transaction with the requested options.
func begin(ctx context.Context, db Beginner, o *Options) (pgx.Tx, error) {
	if o.Isolation == "" && o.AccessMode == "" {
		return db.Begin(ctx)
	}
	tb, ok := db.(txBeginner)
	if !ok {
		return nil, fmt.Errorf("txn: Options.Isolation/AccessMode need a pool or connection with BeginTx; %T (a nested transaction?) has none", db)
	}
	return tb.BeginTx(ctx, pgx.TxOptions{IsoLevel: o.Isolation, AccessMode: o.AccessMode})
}

// isNested reports whether db is itself a transaction, so that Begin makes
// a savepoint. pgxmock's pools implement pgx.Tx too but, unlike a real
// pgx.Tx, also BeginTx.
func isNested(db Beginner) bool {
	if _, ok := db.(pgx.Tx); !ok {
		return false
	}
	_, canBeginTx := db.(txBeginner)
	return !canBeginTx
}

// rollback rolls back, even when ctx is done, and ignores pgx.ErrTxClosed.
// A failed rollback is logged, not returned: the error that caused it is
// the one the caller needs, and pgx closes a connection left mid-transaction.
func rollback(ctx context.Context, o *Options, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := tx.Rollback(rctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		o.Logger.DebugContext(ctx, "txn: rollback failed", "error", err)
	}
}

// classify translates a failure before COMMIT took effect and says whether
// it may be retried. A statement the server cancelled (57014) because ctx
// or txCtx ended wraps that context's error (dberr.TranslateCtx) and is
// never retried.
func classify(ctx, txCtx context.Context, o *Options, err error) (retry bool, _ error) {
	if ctx.Err() != nil {
		return false, idberr.TranslateCtx(ctx, err)
	}
	if txCtx.Err() != nil {
		return false, fmt.Errorf("%w after Options.Timeout (%s): %w", ErrTimeout, o.Timeout, idberr.TranslateCtx(txCtx, err))
	}
	terr := idberr.Translate(err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return true, terr
	}
	return isConnFailure(terr), terr
}

// isConnFailure reports whether a translated error is a lost or impossible
// connection.
func isConnFailure(terr error) bool {
	return errors.Is(terr, dberr.ErrConnClosed) || errors.Is(terr, dberr.ErrUnreachable)
}

// commitOutcomeUnknown reports whether a COMMIT error leaves open whether
// the transaction committed: not when the server answered with an error
// (other than a connection-class one), not when pgx sent nothing.
func commitOutcomeUnknown(err error) bool {
	if errors.Is(err, pgx.ErrTxCommitRollback) || errors.Is(err, pgx.ErrTxClosed) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return idberr.IsConnectionClass(pgErr.Code)
	}
	// Not pgconn.SafeToRetry: pgx also calls a connection that died during
	// COMMIT safe to retry (see dberr.NeverSent).
	return !idberr.NeverSent(err)
}

func (o *Options) backoff() backoff.Policy {
	return backoff.Policy{Base: o.BaseBackoff, Max: o.MaxBackoff}
}

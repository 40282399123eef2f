// Package dsn translates a Prisma-style PostgreSQL connection URL into one
// pgx accepts. Prisma reads parameters of its own from the URL
// (connection_limit, pool_timeout, pgbouncer, schema, …); pgx forwards every
// parameter it does not know to the server as a run-time setting, and the
// connection then fails with "unrecognized configuration parameter". Parse
// removes Prisma's parameters, validates them and returns them typed, so that
// package repo can map them onto pgxpool and schema or cmd can hand the clean
// URL to pgx or goose.
//
// Everything here is pure (no I/O, no environment) and safe for concurrent
// use. No error or string produced by this package contains the URL's
// password.
package dsn

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aah/evaldb/dberr"
)

// Prisma parameter names that Parse removes from the URL.
const (
	ParamConnectionLimit    = "connection_limit"
	ParamPoolTimeout        = "pool_timeout"
	ParamConnectTimeout     = "connect_timeout"
	ParamSocketTimeout      = "socket_timeout"
	ParamPgBouncer          = "pgbouncer"
	ParamSchema             = "schema"
	ParamStatementCacheSize = "statement_cache_size"
	ParamMaxIdleLifetime    = "max_idle_connection_lifetime"
)

// prismaOnly are Prisma TLS parameters whose meaning differs from, or does
// not exist in, libpq/pgx. They are refused rather than silently guessed.
var prismaOnly = map[string]string{
	"sslaccept":   "use sslmode=verify-full (strict) or sslmode=require (accept_invalid_certs) instead",
	"sslidentity": "use sslcert and sslkey (PEM files) instead of a PKCS#12 identity",
	"sslpassword": "decrypt the key file or use sslkey with an unencrypted PEM key instead",
}

// MaxSeconds is the largest number of seconds a timeout parameter accepts
// (one day): larger values are almost certainly a unit mistake
// (milliseconds given as seconds).
const MaxSeconds = 86400

// MaxConnectionLimit is the largest connection_limit accepted.
const MaxConnectionLimit = 10000

// MaxStatementCacheSize is the largest statement_cache_size accepted.
const MaxStatementCacheSize = 100000

// Error is a refused URL or parameter. Its text names the parameter, the
// (redacted) value and what is accepted; it never contains the password. It
// is the public dberr.URLError, so that callers of repo.ParseURL can name it.
type Error = dberr.URLError

// URL is a parsed connection URL: the part pgx understands (Clean) and the
// Prisma parameters that were removed from it. A nil pointer field means the
// parameter was absent.
type URL struct {
	// Clean is the URL without Prisma's parameters, ready for
	// pgx.ParseConfig / pgxpool.ParseConfig. It holds the password: do not log it.
	Clean string
	// Redacted is Clean with the password replaced by "xxxxx", for messages.
	Redacted string

	ConnectionLimit    *int32         // connection_limit: 1..MaxConnectionLimit
	PoolTimeout        *time.Duration // pool_timeout: seconds, 0 = wait forever
	ConnectTimeout     *time.Duration // connect_timeout: seconds, 0 = no timeout
	SocketTimeout      *time.Duration // socket_timeout: seconds, 0 = no deadline
	PgBouncer          *bool          // pgbouncer: true/false
	Schema             *string        // schema: becomes search_path
	StatementCacheSize *int           // statement_cache_size: 0..MaxStatementCacheSize
	MaxIdleLifetime    *time.Duration // max_idle_connection_lifetime: seconds, 0 = never

	// Params are pgx/libpq parameters left in Clean (sslmode, pool_max_conns,
	// search_path, …), last value wins as in pgx.
	Params map[string]string

	password string
}

// Scrub replaces every occurrence of the URL's password in s with "xxxxx".
// Use it on any text derived from the URL (for example a pgx parse error).
func (u *URL) Scrub(s string) string {
	return scrub(s, u.password)
}

func scrub(s, password string) string {
	if password == "" {
		return s
	}
	s = strings.ReplaceAll(s, password, "xxxxx")
	if esc := url.PathEscape(password); esc != password {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	if esc := url.QueryEscape(password); esc != password {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	return s
}

// Parse splits raw into the pgx part and Prisma's parameters, validating
// each. raw must be a postgres:// or postgresql:// URL (Prisma accepts
// nothing else). The error is a *Error naming the parameter and the accepted
// range; it never contains the password.
func Parse(raw string) (*URL, error) {
	if raw == "" {
		return nil, &Error{Param: "url", Reason: "empty: set DATABASE_URL (or POSTGRES_PRISMA_URL) to a postgres:// URL"}
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "postgres" && scheme != "postgresql") {
		// Say nothing of the URL beyond its scheme: whatever follows may be a
		// password in a shape no redaction recognises.
		what := "it has no scheme"
		if ok && schemeRe.MatchString(scheme) {
			what = "its scheme is " + strconv.Quote(scheme)
		}
		return nil, &Error{Param: "url", Reason: "not a postgres:// or postgresql:// URL (" + what + ")"}
	}
	pu, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw URL, password included: keep only the reason.
		var ue *url.Error
		reason := err.Error()
		if errors.As(err, &ue) {
			reason = ue.Err.Error()
		}
		return nil, &Error{Param: "url", Reason: fmt.Sprintf("malformed URL %s: %s", Redact(raw), scrub(reason, passwordOf(raw)))}
	}
	pw, _ := pu.User.Password()
	u := &URL{password: pw, Params: map[string]string{}}
	if qp := pu.Query().Get("password"); qp != "" && u.password == "" {
		u.password = qp
	}
	q, err := url.ParseQuery(pu.RawQuery)
	if err != nil {
		return nil, &Error{Param: "url", Reason: fmt.Sprintf("malformed query string in %s: %s", Redact(raw), scrub(err.Error(), u.password))}
	}
	for k, vs := range q {
		if len(vs) > 1 {
			if _, known := prismaParams[k]; known {
				return nil, &Error{Param: k, Value: vs[0], Reason: "given more than once; give it once"}
			}
		}
		if why, bad := prismaOnly[k]; bad {
			return nil, &Error{Param: k, Value: vs[0], Reason: "is a Prisma-only TLS parameter that pgx does not support: " + why}
		}
	}
	for _, k := range prismaOrder {
		set := prismaParams[k]
		vs, ok := q[k]
		if !ok {
			continue
		}
		if err := set(u, vs[0]); err != nil {
			return nil, err
		}
		q.Del(k)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		if k == "password" || k == "sslpassword" {
			v = "xxxxx"
		}
		u.Params[k] = v
	}
	pu.RawQuery = q.Encode()
	u.Clean = keepSlashes(pu.String(), pu.Scheme)
	u.Redacted = keepSlashes(pu.Redacted(), pu.Scheme)
	if u.password != "" {
		u.Redacted = scrub(u.Redacted, u.password)
	}
	return u, nil
}

// prismaOrder fixes the order in which parameters are checked, so that the
// same URL always yields the same error.
var prismaOrder = []string{ParamConnectionLimit, ParamPoolTimeout, ParamConnectTimeout,
	ParamSocketTimeout, ParamMaxIdleLifetime, ParamPgBouncer, ParamSchema, ParamStatementCacheSize}

var prismaParams = map[string]func(u *URL, v string) error{
	ParamConnectionLimit: func(u *URL, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 1 || n > MaxConnectionLimit {
			return &Error{Param: ParamConnectionLimit, Value: v, Reason: fmt.Sprintf("must be a whole number from 1 to %d (the pool's maximum connections)", MaxConnectionLimit)}
		}
		n32 := int32(n)
		u.ConnectionLimit = &n32
		return nil
	},
	ParamPoolTimeout: func(u *URL, v string) error {
		d, err := seconds(ParamPoolTimeout, v, "0 waits forever")
		u.PoolTimeout = d
		return err
	},
	ParamConnectTimeout: func(u *URL, v string) error {
		d, err := seconds(ParamConnectTimeout, v, "0 means no timeout")
		u.ConnectTimeout = d
		return err
	},
	ParamSocketTimeout: func(u *URL, v string) error {
		d, err := seconds(ParamSocketTimeout, v, "0 means no per-query deadline")
		u.SocketTimeout = d
		return err
	},
	ParamMaxIdleLifetime: func(u *URL, v string) error {
		d, err := seconds(ParamMaxIdleLifetime, v, "0 means idle connections are never closed")
		u.MaxIdleLifetime = d
		return err
	},
	ParamPgBouncer: func(u *URL, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return &Error{Param: ParamPgBouncer, Value: v, Reason: "must be true or false"}
		}
		u.PgBouncer = &b
		return nil
	},
	ParamSchema: func(u *URL, v string) error {
		if v == "" || len(v) > 63 || strings.ContainsRune(v, 0) || !validUTF8(v) {
			return &Error{Param: ParamSchema, Value: v, Reason: "must be a schema name of 1 to 63 bytes without NUL"}
		}
		u.Schema = &v
		return nil
	},
	ParamStatementCacheSize: func(u *URL, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > MaxStatementCacheSize {
			return &Error{Param: ParamStatementCacheSize, Value: v, Reason: fmt.Sprintf("must be a whole number from 0 (no statement cache) to %d", MaxStatementCacheSize)}
		}
		u.StatementCacheSize = &n
		return nil
	},
}

// keepSlashes restores the "//" that url.URL.String drops when a URL has no
// host, user or path ("postgres://" means all defaults to pgx).
func keepSlashes(s, scheme string) string {
	if strings.HasPrefix(s, scheme+"://") {
		return s
	}
	return scheme + "://" + strings.TrimPrefix(s, scheme+":")
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// seconds parses a non-negative number of seconds (fractions allowed, as
// in "0.5") up to MaxSeconds.
func seconds(param, v, zero string) (*time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > MaxSeconds {
		return nil, &Error{Param: param, Value: v, Reason: fmt.Sprintf("must be a number of seconds from 0 to %d (%s)", MaxSeconds, zero)}
	}
	d := time.Duration(f * float64(time.Second))
	return &d, nil
}

var (
	schemeRe   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]{0,31}$`)
	userinfoRe = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/]*):.*@`)
	pwParamRe  = regexp.MustCompile(`(?i)((?:^|[?&\s])(?:ssl)?password=)[^&\s]*`)
)

// Redact returns raw with any password (in the user-info part or as a
// password= parameter) replaced by "xxxxx". It works on malformed URLs too,
// erring on the side of hiding too much.
func Redact(raw string) string {
	if pu, err := url.Parse(raw); err == nil && (pu.Scheme != "" || pu.User != nil) {
		pw, _ := pu.User.Password()
		out := pwParamRe.ReplaceAllString(pu.Redacted(), "${1}xxxxx")
		return scrub(out, pw)
	}
	pw := passwordOf(raw)
	out := userinfoRe.ReplaceAllString(raw, "${1}:xxxxx@")
	out = pwParamRe.ReplaceAllString(out, "${1}xxxxx")
	return scrub(out, pw)
}

// passwordOf extracts a password from a possibly malformed URL: everything
// between the first ':' after "://user" and the last '@'.
func passwordOf(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	userinfo := rest[:at]
	_, pw, ok := strings.Cut(userinfo, ":")
	if !ok {
		return ""
	}
	return pw
}

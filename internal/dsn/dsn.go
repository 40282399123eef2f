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
	// pgx.ParseConfig / pgxpool.ParseConfig. It holds the password: do not log
	// it, and prefer parsing Redacted and setting the password afterwards
	// (see Password), so that no parser's error can hold it.
	Clean string
	// Redacted is Clean with every password (the user-info password and any
	// password= parameter) replaced by "xxxxx" and nothing else changed. pgx
	// parses it to the same configuration as Clean except for the password.
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
	// search_path, …), decoded, last value wins as in pgx; a password's value
	// is "xxxxx".
	Params map[string]string

	password string // the decoded password pgx would use ("" when none)
	masked   bool   // Redacted differs from Clean in a password
}

// Password returns the password pgx would take from Clean (decoded) and
// whether Redacted masks one. When ok, set pgconn.Config.Password to it
// after parsing Redacted; when not, Redacted equals Clean as far as
// passwords go (and pgx may still find one in a passfile).
func (u *URL) Password() (pw string, ok bool) { return u.password, u.masked }

// Mask is what a password is replaced by.
const Mask = "xxxxx"

// Parse splits raw into the pgx part and Prisma's parameters, validating
// each. raw must be a postgres:// or postgresql:// URL (Prisma accepts
// nothing else); a keyword/value string (host=… password=…) is refused with
// a message that says how to write it as a URL. The error is a *Error naming
// the parameter and the accepted range; it never contains the password,
// because the URL is taken apart by its structure (the rules of libpq and
// pgx) and the password's span is masked before anything else reads it.
func Parse(raw string) (*URL, error) {
	st, err := split(raw)
	if err != nil {
		return nil, err
	}
	u := &URL{Params: map[string]string{}}
	seen := map[string]string{} // Prisma parameter -> first raw value
	for _, p := range st.query {
		if why, bad := prismaOnly[p.key]; bad {
			return nil, &Error{Param: p.key, Value: p.shown(), Reason: "is a Prisma-only TLS parameter that pgx does not support: " + why}
		}
		if _, known := prismaParams[p.key]; known {
			if _, dup := seen[p.key]; dup {
				return nil, &Error{Param: p.key, Value: seen[p.key], Reason: "given more than once; give it once"}
			}
			seen[p.key] = p.value
		}
	}
	for _, k := range prismaOrder {
		if v, ok := seen[k]; ok {
			if err := prismaParams[k](u, v); err != nil {
				return nil, err
			}
		}
	}
	var clean, redacted []string
	for _, p := range st.query {
		if _, known := prismaParams[p.key]; known {
			continue
		}
		if err := checkParam(p); err != nil {
			return nil, err
		}
		u.Params[p.key] = p.shown()
		clean = append(clean, p.raw)
		redacted = append(redacted, p.masked())
		if p.key == "password" {
			u.password, u.masked = p.value, p.value != ""
		}
	}
	if _, ok := u.Params["password"]; !ok && st.password != "" {
		u.password, u.masked = st.password, true
	}
	u.Clean = st.render(false, clean)
	u.Redacted = st.render(true, redacted)
	return u, nil
}

// Redact returns raw with every password masked, for a message. A URL whose
// structure is ambiguous (an '@' that does not end the user-info part, a
// NUL) or that is not a postgres:// URL at all is withheld except for its
// scheme. Nothing else is changed.
func Redact(raw string) string {
	st, err := split(raw)
	if err != nil {
		scheme, _, ok := strings.Cut(raw, "://")
		if ok && schemeRe.MatchString(scheme) {
			return scheme + "://(withheld: malformed)"
		}
		return "(withheld: not a URL)"
	}
	var q []string
	for _, p := range st.query {
		q = append(q, p.masked())
	}
	return st.render(true, q)
}

// Database returns the database name of a postgres:// URL (decoded), or ""
// when it has none or cannot be taken apart. It never returns any part of
// the password.
func Database(raw string) string {
	st, err := split(raw)
	if err != nil {
		return ""
	}
	db, err := uriDecode(st.dbname)
	if err != nil {
		db = ""
	}
	for _, p := range st.query {
		if p.key == "database" { // overrides the path, as in pgx; last wins
			db = p.value
		}
	}
	return db
}

// structure is a URL taken apart by libpq's rules (which pgx v5.11 follows
// exactly): the user-info part ends at the first '@' that comes before any
// '/'; the password is what follows its first ':'; the host list ends at
// '/' or '?'; the database name at '?'; query pairs are separated by '&'.
// Spans are kept raw (as written) so that rendering changes nothing but
// the masked password.
type structure struct {
	scheme   string // "postgres" or "postgresql"
	userinfo bool
	user     string // raw
	colon    bool   // the user-info part has a ':' (a password, maybe empty)
	rawPW    string // raw password span
	password string // decoded
	netloc   string // raw host list
	slash    bool   // a '/' starts a path
	dbname   string // raw
	query    []pair
}

type pair struct {
	raw      string // "key=value" as written
	rawKey   string
	rawValue string
	key      string // decoded, canonical (dbname -> database)
	value    string // decoded
	secret   bool   // password or sslpassword
}

// shown is the value as it may appear in a message.
func (p pair) shown() string {
	if p.secret {
		return Mask
	}
	return p.value
}

// masked is the pair as written, with a secret value masked.
func (p pair) masked() string {
	if p.secret && p.value != "" {
		return p.rawKey + "=" + Mask
	}
	return p.raw
}

func (st *structure) render(mask bool, query []string) string {
	var b strings.Builder
	b.WriteString(st.scheme + "://")
	if st.userinfo {
		b.WriteString(st.user)
		if st.colon {
			b.WriteByte(':')
			if mask && st.password != "" {
				b.WriteString(Mask)
			} else {
				b.WriteString(st.rawPW)
			}
		}
		b.WriteByte('@')
	}
	b.WriteString(st.netloc)
	if st.slash {
		b.WriteByte('/')
		b.WriteString(st.dbname)
	}
	if len(query) > 0 {
		b.WriteByte('?')
		b.WriteString(strings.Join(query, "&"))
	}
	return b.String()
}

// Fixed texts of refusals about the password or the URL's shape: they quote
// nothing of the URL, because its parts cannot be told apart from the
// password.
const (
	reasonAmbiguous = "it has an '@' that does not end the user name and password (user:password@host). " +
		"Percent-encode '@' as %40 wherever else it appears, and in the password also '/' as %2F, '?' as %3F, '#' as %23, ':' as %3A and '%' as %25"
	reasonPassword    = "its password is not validly percent-encoded: write '%' as %25 and a space as %20, and never %00"
	reasonNUL         = "it contains a NUL byte"
	reasonNoEquals    = "a parameter in its query string"
	reasonValueEquals = "has an '=': percent-encode it as %3D"
	reasonValueEscape = "is not validly percent-encoded: write '%' as %25 and a space as %20, and never %00"
	reasonKeyword     = "it is a keyword/value connection string (host=… user=… password=…), which evaldb does not take: " +
		"write it as a URL, postgres://user:password@host:port/dbname?sslmode=… (percent-encode special characters in the password), " +
		"as Prisma requires too"
)

func split(raw string) (*structure, error) {
	if raw == "" {
		return nil, &Error{Param: "url", Reason: "empty: set DATABASE_URL (or POSTGRES_PRISMA_URL) to a postgres:// URL"}
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return nil, &Error{Param: "url", Reason: reasonNUL}
	}
	st := &structure{}
	var p string
	switch {
	case strings.HasPrefix(raw, "postgresql://"):
		st.scheme, p = "postgresql", raw[len("postgresql://"):]
	case strings.HasPrefix(raw, "postgres://"):
		st.scheme, p = "postgres", raw[len("postgres://"):]
	default:
		// Say nothing of the string beyond its scheme: whatever follows may
		// be a password in a shape no redaction recognises.
		if keywordRe.MatchString(raw) {
			return nil, &Error{Param: "url", Reason: reasonKeyword}
		}
		what := "it has no scheme"
		if scheme, _, ok := strings.Cut(raw, "://"); ok && schemeRe.MatchString(scheme) {
			what = "its scheme is " + strconv.Quote(scheme)
		}
		return nil, &Error{Param: "url", Reason: "not a postgres:// or postgresql:// URL (" + what + ")"}
	}
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		st.userinfo = true
		st.user, st.rawPW, st.colon = strings.Cut(p[:i], ":")
		p = p[i+1:]
	}
	if strings.IndexByte(p, '@') >= 0 {
		return nil, &Error{Param: "url", Reason: reasonAmbiguous}
	}
	if st.colon {
		pw, err := uriDecode(st.rawPW)
		if err != nil {
			return nil, &Error{Param: "url", Reason: reasonPassword}
		}
		st.password = pw
	}
	// The host list: up to '/' or '?', skipping over [IPv6] literals.
	i := 0
	for i < len(p) && p[i] != '/' && p[i] != '?' {
		if p[i] == '[' {
			if j := strings.IndexByte(p[i:], ']'); j >= 0 {
				i += j
			}
		}
		i++
	}
	st.netloc, p = p[:i], p[i:]
	if strings.HasPrefix(p, "/") {
		st.slash = true
		var q bool
		st.dbname, p, q = strings.Cut(p[1:], "?")
		if q {
			p = "?" + p
		}
	}
	if !strings.HasPrefix(p, "?") {
		return st, nil
	}
	// Pairs as libpq reads them: a trailing '&' ends the list, an empty pair
	// anywhere else is refused.
	n := 0
	for params := p[1:]; params != ""; {
		raw := params
		if i := strings.IndexByte(params, '&'); i >= 0 {
			raw, params = params[:i], params[i+1:]
		} else {
			params = ""
		}
		n++
		k, v, ok := strings.Cut(raw, "=")
		if !ok {
			// Not quoted: it may be the rest of a password= value that held
			// an unescaped '&'.
			return nil, &Error{Param: "url", Reason: fmt.Sprintf("%s (number %d) has no '=': write every parameter as key=value, "+
				"and percent-encode '&' inside a value as %%26", reasonNoEquals, n)}
		}
		key, err := uriDecode(k)
		if err != nil {
			return nil, &Error{Param: "url", Reason: fmt.Sprintf("query parameter name %q is not validly percent-encoded", k)}
		}
		if key == "dbname" {
			key = "database"
		}
		pr := pair{raw: raw, rawKey: k, rawValue: v, key: key, secret: key == "password" || key == "sslpassword"}
		// These two quote the name only: whichever the key, its value may
		// be a password.
		if strings.IndexByte(v, '=') >= 0 {
			return nil, &Error{Param: "url", Reason: fmt.Sprintf("the value of query parameter %q %s", k, reasonValueEquals)}
		}
		if pr.value, err = uriDecode(v); err != nil {
			return nil, &Error{Param: "url", Reason: fmt.Sprintf("the value of query parameter %q %s", k, reasonValueEscape)}
		}
		st.query = append(st.query, pr)
	}
	return st, nil
}

// uriDecode percent-decodes a URI component as libpq and pgx do: '%' and
// two hex digits, %00 forbidden, leading and trailing spaces dropped,
// spaces inside refused. '+' stays '+'.
func uriDecode(raw string) (string, error) {
	raw = strings.Trim(raw, " ")
	if strings.IndexByte(raw, ' ') >= 0 {
		return "", errors.New("space")
	}
	if strings.IndexByte(raw, '%') < 0 {
		return raw, nil
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			b.WriteByte(raw[i])
			continue
		}
		if i+2 >= len(raw) {
			return "", errors.New("short escape")
		}
		hi, ok1 := unhex(raw[i+1])
		lo, ok2 := unhex(raw[i+2])
		if !ok1 || !ok2 || hi<<4|lo == 0 {
			return "", errors.New("bad escape")
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
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

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// seconds parses a non-negative number of seconds (fractions allowed, as
// in "0.5") up to MaxSeconds.
func seconds(param, v, zero string) (*time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > MaxSeconds {
		return nil, &Error{Param: param, Value: v, Reason: fmt.Sprintf("must be a number of seconds from 0 to %d (%s)", MaxSeconds, zero)}
	}
	d := time.Duration(f * float64(time.Second))
	if f > 0 && d < time.Millisecond {
		// time.Duration would round it to (nearly) nothing, and 0 means
		// something else entirely.
		return nil, &Error{Param: param, Value: v, Reason: fmt.Sprintf("is below one millisecond, too small to be a timeout; give at least 0.001 seconds, or 0 (%s)", zero)}
	}
	return &d, nil
}

var (
	schemeRe  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]{0,31}$`)
	keywordRe = regexp.MustCompile(`^\s*[a-zA-Z_]+\s*=`)
)

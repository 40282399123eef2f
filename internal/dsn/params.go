package dsn

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pgxParams are the parameters pgx v5 (pgconn, pgx and pgxpool) reads
// itself; every other parameter reaches the server as a run-time setting.
var pgxParams = []string{
	"host", "port", "database", "user", "password", "passfile", "connect_timeout",
	"sslmode", "sslkey", "sslcert", "sslrootcert", "sslnegotiation", "sslpassword", "sslsni", "ssl",
	"krbspn", "krbsrvname", "target_session_attrs", "service", "servicefile",
	"min_protocol_version", "max_protocol_version", "channel_binding", "require_auth",
	"statement_cache_capacity", "description_cache_capacity", "default_query_exec_mode",
	"pool_max_conns", "pool_min_conns", "pool_min_idle_conns", "pool_max_conn_lifetime",
	"pool_max_conn_idle_time", "pool_health_check_period", "pool_max_conn_lifetime_jitter",
	"pool_ping_timeout",
}

// serverSettings are PostgreSQL settings commonly given in a URL. They are
// known names, so a near-miss check never refuses them.
var serverSettings = []string{
	"application_name", "fallback_application_name", "options", "search_path", "timezone",
	"datestyle", "intervalstyle", "client_encoding", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "idle_session_timeout", "transaction_timeout",
	"default_transaction_isolation", "default_transaction_read_only", "synchronous_commit",
	"work_mem", "jit", "role", "replication", "extra_float_digits",
}

// knownParams is every name above plus Prisma's.
var knownParams = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range pgxParams {
		m[k] = true
	}
	for _, k := range serverSettings {
		m[k] = true
	}
	for k := range prismaParams {
		m[k] = true
	}
	for k := range prismaOnly {
		m[k] = true
	}
	return m
}()

// suggestFrom are the names a mistyped parameter is compared with: the ones
// whose misspelling silently changes evaldb's or pgx's behaviour.
var suggestFrom = func() []string {
	out := append([]string{}, pgxParams...)
	for k := range prismaParams {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}()

// pgxDurations are pgxpool's parameters read with time.ParseDuration.
var pgxDurations = map[string]string{
	"pool_max_conn_lifetime":        "connections would be closed after every use",
	"pool_max_conn_idle_time":       "idle connections would be closed at once",
	"pool_health_check_period":      "the health check would run without pause",
	"pool_max_conn_lifetime_jitter": "the jitter would be none",
	"pool_ping_timeout":             "the ping before reuse would have no time at all",
}

// serverTimeouts are PostgreSQL settings in milliseconds that the server
// rounds to a whole number, where 0 disables the timeout.
var serverTimeouts = map[string]bool{
	"statement_timeout": true, "lock_timeout": true, "idle_in_transaction_session_timeout": true,
	"idle_session_timeout": true, "transaction_timeout": true,
}

// checkParam refuses a parameter that Parse passes on to pgx when it is
// surely a mistake: a near-miss of a parameter name (which would reach the
// server as a setting and fail the connection, or be ignored), or a
// duration that rounds to zero (which means "none" or "forever").
func checkParam(p pair) error {
	if why, ok := pgxDurations[p.key]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(p.value))
		if err == nil && d == 0 && nonZero(p.value) {
			return &Error{Param: p.key, Value: p.value, Reason: fmt.Sprintf("rounds to zero (the smallest duration is 1ns), and with 0 %s; give a duration such as 30s or 5m", why)}
		}
		return nil
	}
	if serverTimeouts[p.key] {
		if ms, ok := serverMillis(p.value); ok && ms > 0 && ms < 1 {
			return &Error{Param: p.key, Value: p.value, Reason: "is below 1ms, which PostgreSQL rounds to 0, and 0 disables the timeout; give at least 1ms (for example 500ms or 5s), or 0 to disable it on purpose"}
		}
		return nil
	}
	if knownParams[p.key] || strings.Contains(p.key, ".") {
		return nil // known, or a custom setting (myapp.tenant)
	}
	if s := nearest(p.key); s != "" {
		v := p.shown()
		if s == "password" || s == "sslpassword" {
			v = Mask // it is surely a password
		}
		return &Error{Param: p.key, Value: v, Reason: fmt.Sprintf("is not a parameter evaldb or pgx knows, so it would be sent to PostgreSQL as a setting "+
			"(which refuses an unknown one at connect); did you mean %s?", s)}
	}
	return nil
}

// nonZero reports whether a duration's text has a non-zero digit.
func nonZero(v string) bool { return strings.ContainsAny(v, "123456789") }

// serverMillis reads a PostgreSQL time setting (a number with an optional
// unit us, ms, s, min, h or d; milliseconds by default) as milliseconds.
func serverMillis(v string) (float64, bool) {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' && r != 'e' && r != 'E'
	})
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	scale, ok := map[string]float64{"": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}[unit]
	return f * scale, ok
}

// nearest returns the known parameter name key most likely stands for: the
// same name in other case or with '-' for '_', or one within two edits (one
// for short names); "" when there is none.
func nearest(key string) string {
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	best, bestD := "", 3
	for _, k := range suggestFrom {
		if norm == k {
			return k
		}
		limit := 2
		if len(k) < 8 {
			limit = 1
		}
		if len(k) < 5 {
			continue
		}
		if d := editDistance(norm, k); d <= limit && d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance (insertions,
// deletions, substitutions and transpositions of adjacent bytes).
func editDistance(a, b string) int {
	if a == b {
		return 0
	}
	if d := len(a) - len(b); d > 2 || d < -2 {
		return 3 // farther than anything nearest considers
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzRedaction checks redaction by non-interference: a URL holding a
// password must give exactly the output (Redacted, Params, or the error) of
// the same URL holding "xxxxx" instead, so no output can hold any form of
// the password, and nothing that is not the password is changed. The only
// outputs allowed to differ are fixed texts that quote nothing of the URL
// (an ambiguous or badly escaped password). It also checks, with pgx as the
// oracle, that pgx reads the same configuration from Redacted plus
// Password() as from Clean.
//
// mode&3 is how the password is written (0 as is, 1 every byte escaped, 2
// doubly escaped, 3 url.QueryEscape); mode&4 puts it in a password= query
// parameter instead of the user-info part; mode&8 makes a keyword/value
// string instead of a URL.
func FuzzRedaction(f *testing.F) {
	for _, c := range specialChars {
		for mode := range uint8(16) {
			f.Add("app", "Pw"+string(c)+"z9", "db.example:6543", "/sales?sslmode=disable", mode)
		}
	}
	for _, s := range [][4]string{
		{"postgres", "postgres", "localhost", "/postgres"},
		{"app", "s", "h:5432", "/sales?application_name=s"},
		{"app", "5432", "h:5432", "/app"},
		{"app", "app", "h", "/app?connection_limit=5&pool_timeout=2"},
		{"u", "%2540", "h", "/%40"},
		{"u", "a@b/c?d#e", "h1:1,h2:2", "/db?target_session_attrs=any"},
		{"", "pw", "[::1]:5432", "/db"},
	} {
		f.Add(s[0], s[1], s[2], s[3], uint8(0))
	}
	f.Fuzz(func(t *testing.T, user, pw, host, rest string, mode uint8) {
		if mode&8 != 0 {
			// A keyword/value string, which Parse refuses: the refusal
			// must be the same whatever the password.
			raw := "user=" + user + " password=" + pw + " host=" + host + " " + rest
			ref := "user=" + user + " password=" + Mask + " host=" + host + " " + rest
			check(t, raw, ref)
			return
		}
		build := func(p string) string {
			switch mode & 3 {
			case 1:
				p = escapeAll(p)
			case 2:
				p = escapeAll(escapeAll(p))
			case 3:
				p = url.QueryEscape(p)
			}
			if mode&4 == 0 {
				return "postgres://" + user + ":" + p + "@" + host + rest
			}
			sep := "?"
			if strings.Contains(rest, "?") {
				sep = "&"
			}
			return "postgres://" + user + "@" + host + rest + sep + "password=" + p
		}
		if strings.ContainsAny(user, ":@/") {
			return // then the password does not start where build puts it
		}
		if mode&7 == 4 && strings.Contains(pw, "&") {
			// An unescaped '&' ends a query value for every URL parser:
			// password=a&b=c is the password "a" and a parameter b. Nothing
			// can tell that from a password "a&b=c".
			return
		}
		check(t, build(pw), build(Mask))
	})
}

// check compares what Parse makes of raw, which holds a password, with what
// it makes of ref, the same string with the password masked.
func check(t *testing.T, raw, ref string) {
	t.Helper()
	{
		got, err := Parse(raw)
		want, wantErr := Parse(ref)
		if err != nil {
			if wantErr != nil && err.Error() == wantErr.Error() {
				return
			}
			var de *Error
			if !errors.As(err, &de) || (de.Value != "" && de.Value != Mask) || !fixedReason(de.Reason) {
				t.Fatalf("Parse(%q) = %v; with the password masked it is %v, and the difference is not a fixed text", raw, err, wantErr)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("Parse(%q) accepted, but with the password masked it is refused: %v", raw, wantErr)
		}
		if _, ok := got.Password(); !ok {
			// The password decodes to nothing: there is nothing to mask.
			if got.Redacted != got.Clean {
				t.Fatalf("no password, but Redacted %q differs from Clean %q", got.Redacted, got.Clean)
			}
			return
		}
		if got.Redacted != want.Clean {
			t.Fatalf("Parse(%q).Redacted = %q, want %q (the same URL with the password masked)", raw, got.Redacted, want.Clean)
		}
		if g, w := strings.Join(explain(got), "\n"), strings.Join(explain(want), "\n"); g != w {
			t.Fatalf("Parse(%q) settings differ from the masked URL's:\n%s\nwant\n%s", raw, g, w)
		}
		for k := range got.Params {
			if strings.Contains(k, "ssl") || strings.Contains(k, "service") || strings.Contains(k, "passfile") {
				return // pgx would read files
			}
		}
		samePgxConfig(t, got)
	}
}

// fixedReason reports whether reason is one of the texts that quote
// nothing of the URL.
func fixedReason(reason string) bool {
	switch reason {
	case reasonAmbiguous, reasonPassword, reasonNUL:
		return true
	}
	if k, ok := strings.CutPrefix(reason, "the value of query parameter "); ok {
		return strings.HasSuffix(k, reasonValueEquals) || strings.HasSuffix(k, reasonValueEscape)
	}
	return strings.HasPrefix(reason, reasonNoEquals+" (number ")
}

// explain lists a URL's settings as text, in a fixed order.
func explain(u *URL) []string {
	var out []string
	for k, v := range u.Params {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	show := func(p any) string { return fmt.Sprint(p) }
	if u.ConnectionLimit != nil {
		show = func(any) string { return fmt.Sprint(*u.ConnectionLimit) }
	}
	out = append(out, show(u.ConnectionLimit))
	for _, d := range []*time.Duration{u.PoolTimeout, u.ConnectTimeout, u.SocketTimeout, u.MaxIdleLifetime} {
		if d != nil {
			out = append(out, d.String())
		} else {
			out = append(out, "-")
		}
	}
	if u.PgBouncer != nil {
		out = append(out, fmt.Sprint(*u.PgBouncer))
	}
	if u.Schema != nil {
		out = append(out, "schema="+*u.Schema)
	}
	if u.StatementCacheSize != nil {
		out = append(out, fmt.Sprint(*u.StatementCacheSize))
	}
	return out
}

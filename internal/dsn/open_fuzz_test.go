package dsn_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/aah/evaldb/internal/dsn"
	"github.com/aah/evaldb/repo"
)

// FuzzOpenRedaction checks what repo makes of a URL end to end, by
// non-interference: ParseURL's settings or error, and Open's error and log
// lines for a server that refuses the connection, must be exactly those
// of the same URL with "xxxxx" as its password (or, when the password
// itself is refused, a text that quotes nothing of it). So no error, log
// line or setting derived from the URL can hold the password, and nothing
// else in them is changed.
//
// mode&3 is how the password is written (as is, escaped, doubly escaped,
// url.QueryEscape); mode&4 puts it in a password= parameter.
func FuzzOpenRedaction(f *testing.F) {
	for _, c := range ":/?#[]@!$&'()*+,;=% \\\"<>`{}|^~" {
		for mode := range uint8(8) {
			f.Add("app", "Pw"+string(c)+"z9", "/sales", mode)
		}
	}
	f.Add("postgres", "postgres", "/postgres", uint8(0))
	f.Add("app", "1", "/app?application_name=1", uint8(0))
	f.Add("app", "app", "/app?connection_limit=2", uint8(4))
	f.Fuzz(func(t *testing.T, user, pw, rest string, mode uint8) {
		if strings.ContainsAny(user, ":@/") || strings.Contains(pw, "&") && mode&7 == 4 {
			return // see FuzzRedaction
		}
		// Nothing may make Open look beyond 127.0.0.1:1 (closed) or read
		// files.
		if !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
		for _, k := range []string{"host", "port", "ssl", "service", "passfile", "timeout", "krb", "target", "protocol"} {
			if strings.Contains(strings.ToLower(rest), k) || strings.Contains(strings.ToLower(user), k) {
				return
			}
		}
		build := func(p string) string {
			switch mode & 3 {
			case 1:
				p = escape(p)
			case 2:
				p = escape(escape(p))
			case 3:
				p = url.QueryEscape(p)
			}
			sep := "?"
			if strings.Contains(rest, "?") {
				sep = "&"
			}
			if mode&4 == 0 {
				return "postgres://" + user + ":" + p + "@127.0.0.1:1" + rest + sep + "connect_timeout=1&sslmode=disable"
			}
			return "postgres://" + user + "@127.0.0.1:1" + rest + sep + "connect_timeout=1&sslmode=disable&password=" + p
		}
		for _, p := range []string{pw, dsn.Mask} {
			u, err := dsn.Parse(build(p))
			if err != nil {
				continue // Open is not reached
			}
			if _, ok := u.Password(); !ok {
				return // it decodes to no password: nothing to mask
			}
			for k, v := range u.Params { // decoded: %73slrootcert is sslrootcert
				if k == "sslmode" && v == "disable" || k == "password" {
					continue // build's own
				}
				for _, bad := range []string{"host", "port", "ssl", "service", "passfile", "timeout", "krb", "target", "protocol"} {
					if strings.Contains(strings.ToLower(k), bad) {
						return
					}
				}
			}
		}
		got, want := outputs(build(pw)), outputs(build(dsn.Mask))
		if got == want {
			return
		}
		// Only the password's own refusals may differ; they quote nothing.
		for _, fixed := range []string{"password is not validly percent-encoded", "that does not end the user name and password",
			`the value of query parameter "password"`, "it contains a NUL byte"} {
			if strings.Contains(got, fixed) && !strings.Contains(got, "Open:") {
				return
			}
		}
		t.Fatalf("outputs for %q differ from those with the password masked:\n%s\nwant\n%s", build(pw), got, want)
	})
}

// outputs is everything repo says about raw, as text.
func outputs(raw string) string {
	var b strings.Builder
	s, err := repo.ParseURL(raw, repo.Production)
	if err != nil {
		return "ParseURL: " + err.Error()
	}
	b.WriteString(s.Redacted + "\n")
	for _, set := range s.Explain {
		b.WriteString(set.Name + " " + set.Value + " " + set.Source + "\n")
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" || a.Key == "elapsed" {
				return slog.Attr{}
			}
			return a
		}}))
	r, err := repo.Open(context.Background(), &repo.Config{URL: raw, Env: repo.Production, Logger: log, LogLevel: slog.LevelDebug,
		DisableListen: true, DisableCache: true})
	if err == nil {
		r.Close()
		b.WriteString("Open: succeeded\n")
	} else {
		b.WriteString("Open: " + err.Error() + "\n")
	}
	b.WriteString(logs.String())
	return b.String()
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

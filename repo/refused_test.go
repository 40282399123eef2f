package repo

import (
	"context"
	"strings"
	"testing"

	"github.com/aah/evaldb/internal/dbtest"
)

// TestOpenServerRefuses checks that an error the server reports at connect
// is worded as a refusal with the server's reason, never as "cannot reach":
// the server answered.
func TestOpenServerRefuses(t *testing.T) {
	t.Parallel()
	s := dbtest.GetServer(t)
	withParam := func(u, p string) string {
		if strings.Contains(u, "?") {
			return u + "&" + p
		}
		return u + "?" + p
	}
	for _, tt := range []struct {
		name, url string
		want      []string
	}{
		{"NoSuchDatabase", s.DatabaseURL("evaldb_no_such_database"), []string{"refused the connection", "3D000", "database does not exist"}},
		{"UnknownSetting", withParam(s.DatabaseURL("postgres"), "evaldb_no_such_setting=1"), []string{"refused the connection", "42704", "run-time setting"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(context.Background(), &Config{URL: tt.url, Env: Test, DisableListen: true})
			if err == nil {
				r.Close()
				t.Fatalf("Open(%s) succeeded", tt.name)
			}
			if strings.Contains(err.Error(), "cannot reach") {
				t.Errorf("Open error calls a server that answered unreachable: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), dbtest.Password) {
				t.Errorf("Open error holds the password: %v", err)
			}
		})
	}
}

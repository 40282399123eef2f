package repo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/cachewrap"
)

// TestOpenChecksNotificationTriggers opens a Repo on a database whose users
// table lacks its notification trigger (as one still managed by Prisma
// would): a write by plain SQL must show at once, because reads of users are
// not cached, unless the caller opted in to TTL-only staleness.
func TestOpenChecksNotificationTriggers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ttlOnly   []string
		wantStale bool
	}{
		{"NotCached", nil, false},
		{"TTLOnlyOptIn", []string{"users"}, true},
		{"TTLOnlyEverything", []string{"*"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dbURL := testURL(t, "")
			psql, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer psql.Close(ctx)
			var id int64
			if err := psql.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('a@x.io', 'before') RETURNING id`).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if _, err := psql.Exec(ctx, `DROP TRIGGER users_notify_invalidate ON users`); err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			// No listener: its first connect invalidates everything, which
			// would race with the stale read this test expects. Without a
			// trigger it would hear nothing of the plain-SQL write anyway.
			r := open(t, &Config{URL: dbURL, Env: Test, Logger: logs.logger(), DisableListen: true,
				CacheOptions: &cachewrap.Options{TTL: time.Hour, TTLOnly: tc.ttlOnly}})
			warned := strings.Contains(logs.String(), "no cache notification trigger on users")
			if warned == tc.wantStale {
				t.Errorf("warning about users logged = %v, want %v; logs:\n%s", warned, !tc.wantStale, logs)
			}
			if u, err := r.Queries().GetUser(ctx, id); err != nil || u.Name != "before" {
				t.Fatalf("GetUser() = %+v, %v", u, err)
			}
			if _, err := psql.Exec(ctx, `UPDATE users SET name = 'after' WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			u, err := r.Queries().GetUser(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if stale := u.Name == "before"; stale != tc.wantStale {
				t.Errorf("GetUser() after a plain-SQL write = %q; stale %v, want %v", u.Name, stale, tc.wantStale)
			}
		})
	}
}

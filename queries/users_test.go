package queries_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/aah/evaldb/gen"
)

func TestUsers(t *testing.T) {
	t.Parallel()
	pool, q := setup(t)
	ctx := context.Background()

	before := serverNow(t, pool)
	ada, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "Ada.Lovelace@Example.COM", Name: "Ada Lovelace"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	after := serverNow(t, pool)
	if ada.CreatedAt.Before(before) || ada.CreatedAt.After(after) {
		t.Errorf("CreateUser: created_at %v not within server time [%v, %v]", ada.CreatedAt, before, after)
	}
	want := gen.User{ID: ada.ID, Email: "Ada.Lovelace@Example.COM", Name: "Ada Lovelace", CreatedAt: ada.CreatedAt}
	if diff := cmp.Diff(want, ada); diff != "" {
		t.Errorf("CreateUser() mismatch (-want +got):\n%s", diff)
	}
	grace, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "grace@example.com", Name: "Grace Hopper 🧭"})
	if err != nil {
		t.Fatalf("CreateUser(grace): %v", err)
	}
	if grace.ID == ada.ID {
		t.Fatalf("CreateUser gave two users the same id %d", ada.ID)
	}

	t.Run("GetUser", func(t *testing.T) {
		for _, u := range []gen.User{ada, grace} {
			got, err := q.GetUser(ctx, u.ID)
			if err != nil {
				t.Fatalf("GetUser(%d): %v", u.ID, err)
			}
			if diff := cmp.Diff(u, got); diff != "" {
				t.Errorf("GetUser(%d) mismatch (-want +got):\n%s", u.ID, diff)
			}
		}
		_, err := q.GetUser(ctx, grace.ID+1000)
		wantNoRows(t, "GetUser(unknown id)", err)
	})

	t.Run("GetUserByEmailIgnoresCase", func(t *testing.T) {
		for _, email := range []string{"Ada.Lovelace@Example.COM", "ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"} {
			got, err := q.GetUserByEmail(ctx, email)
			if err != nil {
				t.Fatalf("GetUserByEmail(%q): %v", email, err)
			}
			if diff := cmp.Diff(ada, got); diff != "" {
				t.Errorf("GetUserByEmail(%q) mismatch (-want +got):\n%s", email, diff)
			}
		}
		for _, email := range []string{"ada@example.com", "", "%@%", "ada.lovelace@example.com "} {
			_, err := q.GetUserByEmail(ctx, email)
			wantNoRows(t, "GetUserByEmail("+email+")", err)
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		_, err := q.CreateUser(ctx, gen.CreateUserParams{Email: "ada.lovelace@EXAMPLE.com", Name: "Impostor"})
		wantPgError(t, "CreateUser(email differing only in case)", err, "23505", "users_email_key")
		_, err = q.CreateUser(ctx, gen.CreateUserParams{Email: "not-an-email", Name: "X"})
		wantPgError(t, "CreateUser(bad email)", err, "23514", "users_email_check")
		_, err = q.CreateUser(ctx, gen.CreateUserParams{Email: "x@example.com", Name: ""})
		wantPgError(t, "CreateUser(empty name)", err, "23514", "users_name_check")
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 2 {
			t.Errorf("users after rejected inserts = %d, %v; want 2", n, err)
		}
	})
}

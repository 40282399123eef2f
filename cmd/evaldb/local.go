package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/pgcluster"
)

// localDataRoot is where the embedded PostgreSQL keeps its data between runs:
// $EVALDB_DATA_DIR, else the user's cache directory. Root's cache directory
// (/root/.cache) is closed to the postgres user the server must run as, so
// root's cluster lives in /var/cache/evaldb instead.
func localDataRoot() (string, error) {
	if d := os.Getenv("EVALDB_DATA_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if os.Geteuid() == 0 {
		return "/var/cache/evaldb", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory for the local database (set EVALDB_DATA_DIR): %w", err)
	}
	return filepath.Join(d, "evaldb"), nil
}

// localDB is the embedded default: a PostgreSQL started from the installed
// binaries, with its data kept in localDataRoot so that it persists between
// runs. When another evaldb process already runs it, this one connects to
// that server instead of starting a second one.
type localDB struct {
	URL     string
	DataDir string
	cluster *pgcluster.Cluster // nil when another process owns the server
}

// startLocalDB starts (or joins) the local database and makes sure the
// "evaldb" database exists. It reports what it did on w.
func startLocalDB(ctx context.Context, w io.Writer) (*localDB, error) {
	root, err := localDataRoot()
	if err != nil {
		return nil, err
	}
	l := &localDB{DataDir: filepath.Join(root, "data")}
	admin := ""
	if port := pgcluster.Running(l.DataDir); port != 0 {
		admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		fmt.Fprintf(w, "evaldb: using the local PostgreSQL already running on port %d (data in %s)\n", port, l.DataDir)
	} else {
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		c, err := pgcluster.Start(startCtx, pgcluster.Options{
			DataDir: l.DataDir,
			Durable: true,
			// A demo database may lose its last few commits in a machine crash,
			// never its consistency.
			Settings: map[string]string{"synchronous_commit": "off"},
		})
		if err != nil {
			return nil, fmt.Errorf("no DATABASE_URL is set, and starting a local PostgreSQL failed: %w", err)
		}
		l.cluster = c
		admin = c.URL("postgres")
		fmt.Fprintf(w, "evaldb: no DATABASE_URL set; started a local PostgreSQL on 127.0.0.1:%d\n"+
			"        data: %s (kept between runs; remove it with: rm -rf %s)\n", c.Port, l.DataDir, root)
	}
	if err := ensureDatabase(ctx, admin, "evaldb"); err != nil {
		l.Close()
		return nil, err
	}
	u := admin[:len(admin)-len("/postgres?sslmode=disable")] + "/evaldb?sslmode=disable"
	l.URL = u
	return l, nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to the local PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Close stops the server if this process started it. The data stays.
func (l *localDB) Close() {
	if l != nil && l.cluster != nil {
		_ = l.cluster.Stop()
	}
}

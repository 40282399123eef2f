package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/internal/backoff"
	"github.com/aah/evaldb/internal/pgcluster"
)

// localDataRoot is where the embedded PostgreSQL keeps its data between runs:
// $EVALDB_DATA_DIR, else the user's cache directory. Root's cache directory
// (/root/.cache) is closed to the postgres user the server must run as, so
// root's cluster lives in /var/cache/evaldb instead.
func localDataRoot(getenv func(string) string) (string, error) {
	if d := getenv("EVALDB_DATA_DIR"); d != "" {
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

// localURL is the URL of database dbname on the local server's port.
func localURL(port int, dbname string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, dbname)
}

// joinWait bounds how long a command waits for a local server that another
// evaldb process is starting or stopping.
const joinWait = 60 * time.Second

// startLocalDB starts (or joins) the local database and makes sure the
// "evaldb" database exists. It reports what it did on w.
//
// Commands run back to back, or side by side, must never race for the one
// data directory. A server another process runs is joined; one that is
// shutting down (its owner exiting: 57P03, a reset or a refused
// connection) is waited for until it is gone, and then this process starts
// its own. Two processes starting at once are told apart by the server's
// own lock (postmaster.pid): the loser joins the winner.
func startLocalDB(ctx context.Context, w io.Writer, getenv func(string) string) (*localDB, error) {
	root, err := localDataRoot(getenv)
	if err != nil {
		return nil, err
	}
	l := &localDB{DataDir: filepath.Join(root, "data")}
	deadline := time.Now().Add(joinWait)
	var lastErr error
	for time.Now().Before(deadline) {
		if port := pgcluster.Running(l.DataDir); port != 0 {
			err := ensureDatabase(ctx, localURL(port, "postgres"), "evaldb")
			if err == nil {
				fmt.Fprintf(w, "evaldb: using the local PostgreSQL already running on port %d (data in %s)\n", port, l.DataDir)
				l.URL = localURL(port, "evaldb")
				return l, nil
			}
			if !transient(err) || ctx.Err() != nil {
				return nil, err
			}
			// Starting up or shutting down: wait and look again.
			lastErr = err
			if err := backoff.Sleep(ctx, 100*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		c, err := pgcluster.Start(startCtx, pgcluster.Options{
			DataDir: l.DataDir,
			Durable: true,
			// A demo database may lose its last few commits in a machine crash,
			// never its consistency.
			Settings: map[string]string{"synchronous_commit": "off"},
		})
		cancel()
		if err != nil {
			if strings.Contains(err.Error(), "lock file") && ctx.Err() == nil {
				// Another process started it between our look and our start.
				lastErr = err
				continue
			}
			return nil, fmt.Errorf("no DATABASE_URL is set, and starting a local PostgreSQL failed: %w", err)
		}
		l.cluster = c
		fmt.Fprintf(w, "evaldb: no DATABASE_URL set; started a local PostgreSQL on 127.0.0.1:%d\n"+
			"        data: %s (kept between runs; remove it with: rm -rf %s)\n", c.Port, l.DataDir, root)
		if err := ensureDatabase(ctx, c.URL("postgres"), "evaldb"); err != nil {
			l.Close(io.Discard)
			return nil, err
		}
		l.URL = localURL(c.Port, "evaldb")
		return l, nil
	}
	return nil, fmt.Errorf("the local PostgreSQL in %s neither accepted connections nor stopped within %s: %w", l.DataDir, joinWait, lastErr)
}

// transient reports whether a connection error means a server that is
// starting or stopping: worth waiting for.
func transient(err error) bool {
	msg := err.Error()
	for _, s := range []string{"57P03", "connection refused", "connection reset", "EOF", "broken pipe"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, adminURL)
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
		var already bool
		// Two processes creating it at once: the other one won.
		if qerr := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&already); qerr == nil && already {
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Close stops the server if this process started it, and waits until it
// has exited, so that the next command finds it gone rather than stopping.
// While other evaldb commands that joined the server are connected, it
// waits for them to finish first, saying so on w: a fast shutdown would cut
// them off mid-command. An interrupt (SIGINT, SIGTERM) stops it at once.
// The data stays.
func (l *localDB) Close(w io.Writer) {
	if l == nil || l.cluster == nil {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if conn, err := connectAdmin(ctx, l.cluster.URL("postgres")); err == nil {
		said := false
		for ctx.Err() == nil {
			n, err := otherClients(ctx, conn)
			if err != nil || n == 0 {
				break
			}
			if !said {
				fmt.Fprintf(w, "evaldb: waiting for %d connection(s) of other evaldb commands to end before stopping the local PostgreSQL (interrupt to stop it now)\n", n)
				said = true
			}
			_ = backoff.Sleep(ctx, 200*time.Millisecond)
		}
		_ = conn.Close(context.WithoutCancel(ctx))
	}
	_ = l.cluster.Stop()
}

// connectAdmin opens the one session Close polls with.
func connectAdmin(ctx context.Context, adminURL string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.Connect(cctx, adminURL)
}

// otherClients counts the client connections to the server other than
// conn's: this process's pool is closed by now, so they are other
// commands'.
func otherClients(ctx context.Context, conn *pgx.Conn) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int
	err := conn.QueryRow(cctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&n)
	return n, err
}

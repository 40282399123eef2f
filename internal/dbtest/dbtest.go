// Package dbtest gives each test an isolated, fully migrated PostgreSQL
// database.
//
// The server is TEST_DATABASE_URL when it is set (a superuser, or a role that
// may create databases). Otherwise the first test that asks starts a
// throwaway cluster from the installed PostgreSQL binaries (internal/
// pgcluster), shared by every test of the binary and stopped by Main when the
// binary exits. Packages that use dbtest call Main from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// Databases are cloned from a template database that holds every migration
// and is named after a hash of schema/, pgtestdb's technique: the template is
// built once per schema version and server, and each test then gets a fresh
// copy in tens of milliseconds. Each test's database is dropped when it ends.
//
// When no PostgreSQL can be had, tests skip with a message saying how to get
// one, except when CI is set, where they fail.
//
// PgBouncerURL routes a test database's URL through a PgBouncer in
// transaction pooling mode, shared by the binary's tests like the server
// (started on first use, stopped by Main), for tests of what PgBouncer
// changes: no prepared statements across transactions, few server
// connections for many clients.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/schema"
)

// Server is the PostgreSQL server the tests of this binary use.
type Server struct {
	// AdminURL connects to the server's maintenance database as a role that
	// may create databases.
	AdminURL string
	// Cluster is the throwaway cluster, or nil when TEST_DATABASE_URL is used.
	Cluster *pgcluster.Cluster

	admin    *pgxpool.Pool
	tplOnce  sync.Once
	template string
	tplErr   error
}

// Password is the password in every URL dbtest hands out for its own
// throwaway cluster, which trusts any password. It is there to be looked
// for: `make test` runs the whole suite verbosely and fails when Password
// appears anywhere in its output (a log line, an error, a panic, a metric
// label a test printed), the suite-wide check that no credential leaks.
// scripts/scan-secrets.sh reads it from this line.
const Password = "dbtest-Pw-7fK2qZ"

var (
	serverOnce sync.Once
	server     *Server
	serverErr  error
)

// Main runs the package's tests and then stops the throwaway cluster, if one
// was started, so that nothing is left running or on disk.
func Main(m *testing.M) { os.Exit(Run(m, nil)) }

// Run is Main without the exit: it runs the tests, then after (when not
// nil, with the tests' exit code, returning the code to exit with), then
// stops the cluster, and returns the code.
func Run(m *testing.M, after func(code int) int) int {
	code := m.Run()
	if after != nil {
		code = after(code)
	}
	stopBouncer()
	if server != nil {
		server.admin.Close()
		if server.Cluster != nil {
			if err := server.Cluster.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "dbtest: stop cluster:", err)
			}
		}
	}
	return code
}

// GetServer returns the shared server, starting it on first use. It fails
// the test (under CI) or skips it (elsewhere) when no server can be had.
func GetServer(t testing.TB) *Server {
	t.Helper()
	serverOnce.Do(func() { server, serverErr = startServer() })
	if serverErr != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("dbtest: no PostgreSQL for integration tests (CI is set, so this fails instead of skipping): %v", serverErr)
		}
		t.Skipf("dbtest: no PostgreSQL for integration tests, skipping: %v\n"+
			"Set TEST_DATABASE_URL to a server where this role may CREATE DATABASE, "+
			"or install the server binaries (apt-get install postgresql).", serverErr)
	}
	return server
}

func startServer() (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &Server{AdminURL: os.Getenv("TEST_DATABASE_URL")}
	if s.AdminURL == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{})
		if err != nil {
			return nil, err
		}
		s.Cluster, s.AdminURL = c, withPassword(c.URL("postgres"))
	}
	cfg, err := pgxpool.ParseConfig(s.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(ctx, cfg); err == nil {
		err = s.admin.Ping(ctx)
	}
	if err != nil {
		if s.Cluster != nil {
			_ = s.Cluster.Stop()
		}
		return nil, fmt.Errorf("connect to %s: %w", redact(s.AdminURL), err)
	}
	return s, nil
}

func withPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = url.UserPassword(u.User.Username(), Password)
	return u.String()
}

// redact hides the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// SchemaHash is a hash of the migrations in schema.FS: any change to them
// yields a new template database.
func SchemaHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(schema.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schema.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// templateDB makes sure the migrated template database for the current schema
// exists on the server and returns its name. Concurrent test binaries sharing
// a server serialise on an advisory lock; the template appears under its final
// name only once fully migrated, so a crash half-way leaves no broken template.
func (s *Server) templateDB(ctx context.Context) (string, error) {
	s.tplOnce.Do(func() {
		hash, err := SchemaHash()
		if err != nil {
			s.tplErr = err
			return
		}
		name := "evaldb_tpl_" + hash
		s.template, s.tplErr = name, s.buildTemplate(ctx, name)
	})
	return s.template, s.tplErr
}

func (s *Server) buildTemplate(ctx context.Context, name string) error {
	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	sum := sha256.Sum256([]byte(name))
	key := int64(binary.BigEndian.Uint64(sum[:8]))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("lock template: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	tmp := pgx.Identifier{name + "_building"}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+tmp); err != nil {
		return fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+tmp); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if _, err := schema.Migrate(ctx, s.DatabaseURL(name+"_building")); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	final := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+tmp+" RENAME TO "+final); err != nil {
		return fmt.Errorf("rename template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+final+" WITH IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	return nil
}

// DatabaseURL returns the URL of database dbname on this server.
func (s *Server) DatabaseURL(dbname string) string {
	u, err := url.Parse(s.AdminURL)
	if err != nil {
		panic("dbtest: admin URL no longer parses") // it parsed in startServer
	}
	u.Path = "/" + dbname
	return u.String()
}

// CreateDatabase creates an empty database (no migrations) and drops it
// when the test ends. It is for tests of the migrations themselves.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	return s.clone(t, "template0")
}

func (s *Server) clone(t testing.TB, template string) string {
	t.Helper()
	ctx := context.Background()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "evaldb_test_" + hex.EncodeToString(b[:])
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database from %s: %v", template, err)
	}
	t.Cleanup(func() {
		if _, err := s.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+
			pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	return s.DatabaseURL(name)
}

// URL returns the URL of a new, fully migrated database of its own for this
// test, dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	s := GetServer(t)
	tpl, err := s.templateDB(context.Background())
	if err != nil {
		t.Fatalf("dbtest: template database: %v", err)
	}
	return s.clone(t, tpl)
}

// Pool returns a pool on a new, fully migrated database of its own for this
// test. Pool and database go away when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("dbtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the database is dropped
	return pool
}

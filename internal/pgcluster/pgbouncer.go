package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoPgBouncer is returned when the pgbouncer binary cannot be found.
var ErrNoPgBouncer = errors.New("pgbouncer is not installed: install it with `apt-get install pgbouncer` " +
	"(Debian/Ubuntu; as root; `make test` does this when it runs as root), or set PGBOUNCER to its path")

// BouncerOptions configures StartPgBouncer.
type BouncerOptions struct {
	// PoolMode is PgBouncer's pool_mode. Default: "transaction".
	PoolMode string
	// PoolSize is default_pool_size: server connections per database and
	// user. Default: 5.
	PoolSize int
	// MaxClientConn is max_client_conn. Default: 1000.
	MaxClientConn int

	// UpstreamHost and UpstreamPort are the server PgBouncer forwards to.
	// Default: the Cluster's (127.0.0.1 and its port); StartPgBouncer with
	// no Cluster needs UpstreamPort.
	UpstreamHost string
	UpstreamPort int
	// UpstreamUser and UpstreamPassword, when UpstreamUser is set, are the
	// role every server connection logs in as (for a server that asks for a
	// password, such as one given by TEST_DATABASE_URL). Clients still log
	// in to PgBouncer without a password, as UpstreamUser or postgres.
	// Default: none (each client's own user name, trusted by the Cluster).
	UpstreamUser     string
	UpstreamPassword string
}

// PgBouncer is a running PgBouncer in front of a Cluster.
type PgBouncer struct {
	Port int
	Dir  string

	cmd    *exec.Cmd
	exited chan struct{}
}

// FindPgBouncer returns the pgbouncer binary: $PGBOUNCER, /usr/sbin/pgbouncer
// (Debian's), or the one on PATH.
func FindPgBouncer() (string, error) {
	if p := os.Getenv("PGBOUNCER"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	return "", ErrNoPgBouncer
}

// StartPgBouncer starts a PgBouncer listening on a free loopback port that
// forwards every database name to the same database on c, with trust
// authentication (the cluster's own). Stop it with Stop; it also dies with
// this process.
func (c *Cluster) StartPgBouncer(ctx context.Context, o BouncerOptions) (*PgBouncer, error) {
	if o.UpstreamPort == 0 {
		o.UpstreamPort = c.Port
	}
	return startBouncer(ctx, c.cred, o)
}

// StartPgBouncer starts a PgBouncer in front of a server this package did
// not start (o.UpstreamHost, o.UpstreamPort, and o.UpstreamUser with its
// password when the server asks for one), for example TEST_DATABASE_URL's.
// As root it runs as the "postgres" user (PgBouncer refuses to run as
// root). Stop it with Stop; it also dies with this process.
func StartPgBouncer(ctx context.Context, o BouncerOptions) (*PgBouncer, error) {
	if o.UpstreamPort == 0 {
		return nil, errors.New("pgcluster: StartPgBouncer: BouncerOptions.UpstreamPort is 0; set the port of the server to put PgBouncer in front of")
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	return startBouncer(ctx, cred, o)
}

func startBouncer(ctx context.Context, cred *syscall.Credential, o BouncerOptions) (*PgBouncer, error) {
	bin, err := FindPgBouncer()
	if err != nil {
		return nil, err
	}
	c := &Cluster{cred: cred} // for chown
	o.UpstreamHost = cmpOr(o.UpstreamHost, "127.0.0.1")
	if o.PoolMode == "" {
		o.PoolMode = "transaction"
	}
	if o.PoolSize == 0 {
		o.PoolSize = 5
	}
	if o.MaxClientConn == 0 {
		o.MaxClientConn = 1000
	}
	dir, err := os.MkdirTemp("", "evaldb-pgbouncer-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := c.chown(dir); err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		b, err := c.launchBouncer(ctx, bin, dir, port, o)
		if err == nil {
			return b, nil
		}
		lastErr = err
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

func (c *Cluster) launchBouncer(ctx context.Context, bin, dir string, port int, o BouncerOptions) (*PgBouncer, error) {
	upstream := fmt.Sprintf("host=%s port=%d", o.UpstreamHost, o.UpstreamPort)
	users := `"postgres" ""` + "\n"
	if o.UpstreamUser != "" {
		upstream += " user=" + iniQuote(o.UpstreamUser)
		if o.UpstreamPassword != "" {
			upstream += " password=" + iniQuote(o.UpstreamPassword)
		}
		if o.UpstreamUser != "postgres" {
			users += `"` + strings.ReplaceAll(o.UpstreamUser, `"`, `""`) + `" ""` + "\n"
		}
	}
	ini := fmt.Sprintf(`[databases]
* = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir = %s
auth_type = trust
auth_file = %s
admin_users = postgres
pool_mode = %s
default_pool_size = %d
max_client_conn = %d
ignore_startup_parameters = extra_float_digits
server_lifetime = 3600
logfile = %s
`, upstream, port, dir, filepath.Join(dir, "userlist.txt"), o.PoolMode, o.PoolSize, o.MaxClientConn,
		filepath.Join(dir, "pgbouncer.log"))
	files := map[string]string{"pgbouncer.ini": ini, "userlist.txt": users}
	for name, body := range files {
		p := filepath.Join(dir, name)
		// 0600: the ini may hold the upstream password.
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return nil, err
		}
		if err := c.chown(p); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.Dir = dir
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	b := &PgBouncer{Port: port, Dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(b.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-b.exited:
			return nil, fmt.Errorf("pgbouncer exited during start-up:\n%s\n%s",
				readTail(filepath.Join(dir, "stderr.log"), 0), readTail(filepath.Join(dir, "pgbouncer.log"), 0))
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(30 * time.Millisecond):
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgconn.Connect(pctx, b.URL("pgbouncer"))
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return b, nil
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("pgbouncer did not accept connections within 20s: %w", err)
		}
	}
}

// iniQuote quotes a value of a [databases] connection string the way
// PgBouncer's loader reads it: in single quotes, each quote doubled.
func iniQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// URL returns a URL for database dbname through PgBouncer, as postgres.
func (b *PgBouncer) URL(dbname string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(b.Port) + "/" + dbname + "?sslmode=disable"
}

// Stop stops PgBouncer and removes its directory.
func (b *PgBouncer) Stop() {
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-b.exited:
		case <-time.After(5 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
	}
	_ = os.RemoveAll(b.Dir)
}

// Package pgcluster starts a private PostgreSQL server from the binaries
// installed on the machine: initdb into a data directory, then a postmaster
// on a free loopback port with its own socket directory.
//
// It is shared by the test harness (internal/dbtest), which makes a throwaway
// cluster per test binary, and by cmd/evaldb, which keeps a persistent one in
// the user's cache directory when no DATABASE_URL is set.
//
// When the process runs as root, initdb and postgres (which both refuse to
// run as root) run as the "postgres" user, and the data directory is handed
// to that user. The server is a child of this process with a parent-death
// signal, so it cannot outlive it even when the process is killed.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries can be found.
// Its message says what to install.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found (initdb, postgres): " +
	"install them with `apt-get install postgresql` (Debian/Ubuntu; as root), " +
	"or set PG_BINDIR to the directory that holds initdb and postgres")

// Options configures Start. The zero value makes a throwaway cluster in a new
// temporary directory with test-friendly settings.
type Options struct {
	// DataDir is where the cluster lives. When it already holds a cluster it
	// is reused; otherwise initdb creates one. Default: a new temporary
	// directory, removed by Stop.
	DataDir string
	// Durable keeps fsync and full-page writes on (for data that must survive
	// a crash). Default false: test settings, fast but unsafe on power loss.
	Durable bool
	// Settings are extra server settings (name → value), passed as -c flags.
	Settings map[string]string
	// Port to listen on. Default: a free port chosen at start.
	Port int
	// Log receives the server's log output path; default: server.log in the
	// cluster's directory.
	LogFile string
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	BinDir  string
	DataDir string
	Port    int
	SockDir string
	LogFile string

	root    string // directory removed by Stop, or "" when DataDir was given
	cred    *syscall.Credential
	opts    Options
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// FindBinDir locates the directory holding initdb and postgres: $PG_BINDIR,
// then the newest /usr/lib/postgresql/*/bin (Debian's layout), then PATH.
func FindBinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres", "pg_ctl"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("PG_BINDIR=%q does not hold initdb, postgres and pg_ctl: %w", dir, ErrNoBinaries)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises (when needed) and starts a cluster, and waits until it
// accepts connections. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{BinDir: binDir, opts: opts}
	if c.cred, err = serverCredential(); err != nil {
		return nil, err
	}

	base := ""
	if opts.DataDir == "" {
		if base, err = os.MkdirTemp("", "evaldb-pg-"); err != nil {
			return nil, fmt.Errorf("create cluster directory: %w", err)
		}
		c.root = base
		c.DataDir = filepath.Join(base, "data")
	} else {
		c.DataDir = opts.DataDir
		base = filepath.Dir(opts.DataDir)
	}
	c.SockDir = filepath.Join(base, "sock")
	c.LogFile = cmpOr(opts.LogFile, filepath.Join(base, "server.log"))

	if err := c.prepare(ctx); err != nil {
		c.cleanup()
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.cleanup()
		return nil, err
	}
	return c, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// serverCredential returns the credential the server processes run under:
// nil (this process's) unless running as root, where it is the postgres user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as an unprivileged user, "+
			"but user \"postgres\" does not exist (install the postgresql package, which creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *Cluster) chown(paths ...string) error {
	if c.cred == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres user: %w", p, err)
		}
	}
	return nil
}

func (c *Cluster) prepare(ctx context.Context) error {
	base := filepath.Dir(c.DataDir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", base, err)
	}
	if err := os.MkdirAll(c.SockDir, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if c.root != "" {
		if err := os.Chmod(c.root, 0o755); err != nil {
			return err
		}
	}
	if err := c.chown(base, c.SockDir); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); err == nil {
		return nil // an existing cluster: reuse it
	}
	args := []string{"-D", c.DataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"}
	if !c.opts.Durable {
		args = append(args, "--no-sync")
	}
	if out, err := c.command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", c.DataDir, err, out)
	}
	return nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	cmd.Dir = filepath.Dir(c.DataDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func (c *Cluster) settings() []string {
	s := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": c.SockDir,
		"port":                    strconv.Itoa(c.Port),
		"max_connections":         "300",
		"shared_buffers":          "128MB",
		"log_min_messages":        "warning",
		"logging_collector":       "off",
	}
	if !c.opts.Durable {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
		s["max_wal_size"] = "1GB"
	}
	for k, v := range c.opts.Settings {
		s[k] = v
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", c.DataDir}
	for _, k := range keys {
		args = append(args, "-c", k+"="+s[k])
	}
	return args
}

// start launches the postmaster as a child process and waits for it to
// accept connections. A busy port (another process took it between our
// probe and the server's bind) is retried with a new one.
func (c *Cluster) start(ctx context.Context) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		c.Port = c.opts.Port
		if c.Port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			c.Port = p
		}
		lastErr = c.launch(ctx)
		if lastErr == nil {
			return nil
		}
		if c.opts.Port != 0 || !strings.Contains(lastErr.Error(), "in use") {
			return lastErr
		}
	}
	return lastErr
}

func (c *Cluster) launch(ctx context.Context) error {
	logf, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logf.Close()
	start := 0
	if fi, err := logf.Stat(); err == nil {
		start = int(fi.Size())
	}
	// exec.Command, not CommandContext: the server must outlive ctx (which
	// only bounds the start-up) and stop only through Stop or our death.
	cmd := exec.Command(filepath.Join(c.BinDir, "postgres"), c.settings()...)
	cmd.Dir = filepath.Dir(c.DataDir)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		// SIGQUIT is PostgreSQL's immediate shutdown: if this process dies
		// without calling Stop, the server follows it instead of lingering.
		Pdeathsig: syscall.SIGQUIT,
		Setpgid:   true,
	}
	// Pdeathsig fires when the thread that forked the child exits; keep the
	// fork on a thread the runtime will not retire.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("postgres exited during start-up:\n%s", readTail(c.LogFile, start))
		case <-ctx.Done():
			c.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if c.ping(ctx) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			c.kill()
			return fmt.Errorf("postgres did not accept connections within 60s:\n%s", readTail(c.LogFile, start))
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func readTail(path string, from int) string {
	b, _ := os.ReadFile(path)
	if from > len(b) {
		from = 0
	}
	b = b[from:]
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Running reports the port of a server already running on dataDir (another
// process's), from its postmaster.pid, or 0 when none is.
func Running(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0 // stale pid file
	}
	return port
}

// URL returns a connection URL for database dbname as the postgres superuser
// over TCP on loopback.
func (c *Cluster) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, dbname)
}

// Restart stops the server with a fast shutdown (like `pg_ctl restart -m
// fast`) and starts it again on the same port, for fault tests.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.shutdown(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	c.opts.Port = c.Port
	return c.launch(ctx)
}

// Stop shuts the server down (fast shutdown: open sessions are terminated)
// and, for a throwaway cluster, removes its directory. It is safe to call
// more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	c.mu.Unlock()
	err := c.shutdown(syscall.SIGINT, 30*time.Second)
	c.cleanup()
	return err
}

func (c *Cluster) shutdown(sig syscall.Signal, wait time.Duration) error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
		c.kill()
		return fmt.Errorf("postgres did not stop within %s; killed it", wait)
	}
}

func (c *Cluster) kill() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

func (c *Cluster) cleanup() {
	if c.root != "" {
		_ = os.RemoveAll(c.root)
	}
}

// StartReplica makes a streaming replica of c (pg_basebackup -R into a new
// throwaway data directory) and starts it as a hot standby on its own port.
// Stop it with its own Stop.
func (c *Cluster) StartReplica(ctx context.Context) (*Cluster, error) {
	base, err := os.MkdirTemp("", "evaldb-pg-replica-")
	if err != nil {
		return nil, fmt.Errorf("create replica directory: %w", err)
	}
	r := &Cluster{BinDir: c.BinDir, cred: c.cred, root: base, opts: Options{Settings: c.opts.Settings},
		DataDir: filepath.Join(base, "data"), SockDir: filepath.Join(base, "sock"), LogFile: filepath.Join(base, "server.log")}
	if err := os.Chmod(base, 0o755); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := os.MkdirAll(r.SockDir, 0o700); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := r.chown(base, r.SockDir); err != nil {
		r.cleanup()
		return nil, err
	}
	out, err := r.command(ctx, "pg_basebackup", "-D", r.DataDir, "-R", "-X", "stream", "--no-sync",
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres").CombinedOutput()
	if err != nil {
		r.cleanup()
		return nil, fmt.Errorf("pg_basebackup from port %d: %w\n%s", c.Port, err, out)
	}
	if err := r.start(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	return r, nil
}

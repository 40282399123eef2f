// Command evaldb runs evaldb's main job and its operational tasks:
//
//	evaldb migrate [up|down|status]   apply or inspect the schema migrations
//	evaldb demo [flags]               record and read back a synthetic workload
//	evaldb stats                      the pool's and the database's connection figures
//	evaldb config                     what the current environment means
//	evaldb serve [flags]              a small HTTP JSON service on one shared Repo
//
// It reads the environment Prisma users already have (DATABASE_URL,
// POSTGRES_PRISMA_URL, POSTGRES_URL_NON_POOLING, DIRECT_URL, APP_ENV; see
// the README). With neither DATABASE_URL nor POSTGRES_PRISMA_URL set, demo,
// migrate and stats (and serve -local) start a local PostgreSQL from the
// installed binaries, keep its data in the user's cache directory and say
// where; in production (APP_ENV=production), and for serve without -local,
// a missing URL is an error instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"golang.org/x/term"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, app *app, args []string) error
}

var commands = []command{
	{"migrate", "apply (up), roll back one (down) or list (status) the schema migrations", runMigrate},
	{"demo", "record a synthetic workload through repo and txn, read it back, print a report", runDemo},
	{"stats", "print the pool's and the database's connection figures", runStats},
	{"config", "print what the current environment means (passwords redacted)", runConfig},
	{"serve", "run the HTTP JSON service on one shared Repo", runServe},
}

// app carries what every subcommand shares: its output streams and the
// environment.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	local          *localDB
	terminal       bool   // stderr is a terminal: progress may redraw in place
	cmd            string // the subcommand's name
	allowLocal     bool   // serve -local: the embedded database may be served
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: evaldb <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'evaldb <command> -h' for a command's flags.")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	if f, ok := stderr.(*os.File); ok {
		a.terminal = term.IsTerminal(int(f.Fd()))
	}
	// a.local is set later, by the command: Close must see that value, so
	// that a server this process started is stopped (and waited for) before
	// it exits, not left to die with it while the next command connects.
	defer func() { a.local.Close(stderr) }()
	for _, c := range commands {
		if c.name == args[0] {
			a.cmd = c.name
			err := c.run(ctx, a, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "evaldb %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "evaldb: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlags returns a flag set for a subcommand whose -h prints its usage.
func (a *app) newFlags(name, argsUsage, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("evaldb "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: evaldb %s %s\n\n%s\n", name, argsUsage, about)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/aah/evaldb/internal/pgcluster"
	"github.com/aah/evaldb/repo"
)

func runConfig(_ context.Context, a *app, args []string) error {
	fs := a.newFlags("config", "",
		"Prints what the current environment means: which variable each URL came from, the URLs\n"+
			"with passwords redacted, how the cache learns of other processes' writes and why, and\n"+
			"every pool setting with its value and where it came from.\n"+
			"It connects to nothing and starts nothing.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := a.configWithoutServer()
	if err != nil {
		return err
	}
	pooled, err := repo.ParseURL(cfg.URL, cfg.Env)
	if err != nil {
		return fmt.Errorf("pooled URL (%s): %w", cfg.Sources["URL"], err)
	}
	direct, err := repo.ParseURL(cfg.DirectURL, cfg.Env)
	if err != nil {
		return fmt.Errorf("non-pooling URL (%s): %w", cfg.Sources["DirectURL"], err)
	}
	mode, why, err := repo.ResolveCoherence(cfg)
	if err != nil {
		return err
	}
	if src := cfg.Sources["Coherence"]; src != "" {
		why += " (" + src + ")"
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "environment\t%s\t(%s)\n", cfg.Env, cfg.Sources["Env"])
	fmt.Fprintf(tw, "pooled URL\t%s\t(%s)\n", pooled.Redacted, cfg.Sources["URL"])
	fmt.Fprintf(tw, "non-pooling URL\t%s\t(%s)\n", direct.Redacted, cfg.Sources["DirectURL"])
	fmt.Fprintf(tw, "cache coherence\t%s\t(%s)\n", mode, why)
	fmt.Fprintln(tw, "\nPOOL SETTING\tVALUE\tFROM")
	for _, s := range pooled.Explain {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Value, s.Source)
	}
	return tw.Flush()
}

// configWithoutServer resolves the environment as the other commands do,
// but never starts a server: without a database URL it describes the
// embedded local PostgreSQL, running or not, as the fallback it would be.
func (a *app) configWithoutServer() (*repo.Config, error) {
	if !a.noURL() {
		return repo.ConfigFromLookup(a.lookup)
	}
	if err := a.localAllowed(); err != nil {
		return nil, err
	}
	root, err := localDataRoot(a.getenv)
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(root, "data")
	if port := pgcluster.Running(dataDir); port != 0 {
		return a.localConfig(localURL(port, "evaldb"), fmt.Sprintf(
			"no DATABASE_URL or POSTGRES_PRISMA_URL set: the local PostgreSQL running on port %d, data in %s", port, dataDir))
	}
	return a.localConfig("postgres://postgres@127.0.0.1/evaldb?sslmode=disable", fmt.Sprintf(
		"no DATABASE_URL or POSTGRES_PRISMA_URL set: the local PostgreSQL, not running; demo, migrate, stats and serve -local "+
			"start it on a free port, data in %s (development only)", dataDir))
}

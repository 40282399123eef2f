package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/schema"
)

// repoConfig resolves the environment into a repo.Config. With neither
// DATABASE_URL nor POSTGRES_PRISMA_URL set, it starts (or joins) the local
// PostgreSQL, migrates it, and points every URL at it.
func (a *app) repoConfig(ctx context.Context) (*repo.Config, error) {
	if !a.noURL() {
		return repo.ConfigFromLookup(a.lookup)
	}
	if err := a.localAllowed(); err != nil {
		return nil, err
	}
	if a.local == nil {
		l, err := startLocalDB(ctx, a.stderr, a.getenv)
		if err != nil {
			return nil, err
		}
		a.local = l
		if _, err := schema.Migrate(ctx, l.URL); err != nil {
			return nil, fmt.Errorf("migrate the local database: %w", err)
		}
	}
	return a.localConfig(a.local.URL, "local PostgreSQL: no DATABASE_URL or POSTGRES_PRISMA_URL set")
}

func (a *app) lookup(k string) (string, bool) { v := a.getenv(k); return v, v != "" }

// noURL reports whether neither database URL variable is set: the embedded
// local PostgreSQL is then the fallback.
func (a *app) noURL() bool {
	return a.getenv(repo.EnvDatabaseURL) == "" && a.getenv(repo.EnvPrismaURL) == ""
}

// localConfig is the configuration of the environment with every URL
// pointing at the local server's url; source says so.
func (a *app) localConfig(url, source string) (*repo.Config, error) {
	cfg, err := repo.ConfigFromLookup(func(k string) (string, bool) {
		switch k {
		case repo.EnvDatabaseURL:
			return url, true
		case repo.EnvPrismaURL, repo.EnvNonPoolingURL, repo.EnvDirectURL:
			return "", false
		}
		return a.lookup(k)
	})
	if err != nil {
		return nil, err
	}
	cfg.Sources["URL"] = source
	cfg.Sources["DirectURL"] = source
	return cfg, nil
}

// localAllowed says whether this command may fall back on the embedded
// local PostgreSQL when no database URL is set: it is for the demo and for
// development, never for production (APP_ENV=production), and serve uses it
// only when asked (-local), so that a service deployed without its
// DATABASE_URL fails at start instead of accepting writes into a database
// nobody backs up.
func (a *app) localAllowed() error {
	env := a.getenv(repo.EnvAppEnvironment)
	if repo.Environment(env) == repo.Production {
		return fmt.Errorf("no database URL: set %s (or %s) to your database's postgres:// URL; "+
			"with %s=production evaldb never falls back on the embedded local PostgreSQL, which is for the demo and development only",
			repo.EnvDatabaseURL, repo.EnvPrismaURL, repo.EnvAppEnvironment)
	}
	if a.cmd == "serve" && !a.allowLocal {
		return fmt.Errorf("no database URL: set %s (or %s) to the database to serve, "+
			"or pass -local to serve the embedded local PostgreSQL (development only)", repo.EnvDatabaseURL, repo.EnvPrismaURL)
	}
	return nil
}

// migrationConfig is the connection configuration for migrations: the
// non-pooling URL, translated like the pooled one.
func (a *app) migrationConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	cfg, err := a.repoConfig(ctx)
	if err != nil {
		return nil, err
	}
	s, err := repo.ParseURL(cfg.DirectURL, cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("non-pooling URL (%s): %w", cfg.Sources["DirectURL"], err)
	}
	return s.Pool.ConnConfig, nil
}

// openRepo resolves the environment, applies pending migrations through the
// non-pooling URL when migrate is set, and opens the Repo; adjust, when not
// nil, may change the configuration first. The caller closes the Repo.
func (a *app) openRepo(ctx context.Context, migrate bool, adjust func(*repo.Config)) (*repo.Repo, error) {
	cfg, err := a.repoConfig(ctx)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		adjust(cfg)
	}
	if migrate {
		mcfg, err := a.migrationConfig(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := schema.MigrateConfig(ctx, mcfg); err != nil {
			return nil, err
		}
	}
	return repo.Open(ctx, cfg)
}

package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/aah/evaldb/schema"
)

func runMigrate(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("migrate", "[up|down|status|baseline]",
		"Applies every pending migration and then the notification triggers (up, the default),\n"+
			"rolls back the newest migration (down), or lists each migration and whether it is\n"+
			"applied (status). On a database whose tables exist but were not created by evaldb\n"+
			"(Prisma Migrate's, say) up stops and says so; baseline then checks that the tables\n"+
			"match what the migrations create (columns, types, keys, triggers), names each\n"+
			"difference, and when they match records the migrations as applied (when they match\n"+
			"only the first migrations, those, and then applies the newer ones). It connects through the\n"+
			"non-pooling URL (POSTGRES_URL_NON_POOLING, else DIRECT_URL, else the pooled URL):\n"+
			"the migration lock needs a session, which PgBouncer's transaction pooling does not keep.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	action := "up"
	switch fs.NArg() {
	case 0:
	case 1:
		action = fs.Arg(0)
	default:
		return fmt.Errorf("too many arguments %q: want one of up, down, status, baseline", fs.Args())
	}
	if action != "up" && action != "down" && action != "status" && action != "baseline" {
		return fmt.Errorf("unknown action %q: want up, down, status or baseline", action)
	}
	cfg, err := a.migrationConfig(ctx)
	if err != nil {
		return err
	}
	db := schema.Open(cfg)
	defer db.Close()
	p, err := schema.NewProvider(db)
	if err != nil {
		return err
	}
	switch action {
	case "up":
		res, err := schema.Up(ctx, db)
		if err != nil {
			return err
		}
		if len(res) == 0 {
			fmt.Fprintln(a.stdout, "migrate: the schema is up to date")
		}
		for _, r := range res {
			fmt.Fprintf(a.stdout, "migrate: applied %s (%s)\n", r.Source.Path, r.Duration.Round(1e5))
		}
	case "baseline":
		versions, err := schema.Baseline(ctx, db)
		if err != nil {
			return err
		}
		if all := len(p.ListSources()); len(versions) < all {
			fmt.Fprintf(a.stdout, "migrate: the tables match the first %d of %d migrations; recorded versions %v as applied, applied the newer ones and installed the notification triggers\n", len(versions), all, versions)
		} else {
			fmt.Fprintf(a.stdout, "migrate: the tables match the migrations; recorded versions %v as applied and installed the notification triggers\n", versions)
		}
	case "down":
		if err := schema.CheckAdoptable(ctx, db); err != nil {
			return err
		}
		r, err := p.Down(ctx)
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		fmt.Fprintf(a.stdout, "migrate: rolled back %s (%s)\n", r.Source.Path, r.Duration.Round(1e5))
	case "status":
		// goose creates its version table on first contact: on a database
		// evaldb did not create, say so rather than leave one behind.
		if err := schema.CheckAdoptable(ctx, db); err != nil {
			return err
		}
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tMIGRATION\tSTATE\tAPPLIED AT")
		for _, s := range st {
			at := "-"
			if !s.AppliedAt.IsZero() {
				at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.Source.Path, s.State, at)
		}
		return tw.Flush()
	}
	return nil
}

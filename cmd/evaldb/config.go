package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/aah/evaldb/repo"
)

func runConfig(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("config", "",
		"Prints what the current environment means: which variable each URL came from, the URLs\n"+
			"with passwords redacted, and every pool setting with its value and where it came from.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := a.repoConfig(ctx)
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
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "environment\t%s\t(%s)\n", cfg.Env, cfg.Sources["Env"])
	fmt.Fprintf(tw, "pooled URL\t%s\t(%s)\n", pooled.Redacted, cfg.Sources["URL"])
	fmt.Fprintf(tw, "non-pooling URL\t%s\t(%s)\n", direct.Redacted, cfg.Sources["DirectURL"])
	fmt.Fprintln(tw, "\nPOOL SETTING\tVALUE\tFROM")
	for _, s := range pooled.Explain {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Value, s.Source)
	}
	return tw.Flush()
}

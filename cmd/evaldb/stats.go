package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

func runStats(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("stats", "",
		"Prints the pool's figures (this process's pool, opened for the purpose) and the\n"+
			"database's connections by state from pg_stat_activity: every client's, not only evaldb's.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := a.openRepo(ctx, false, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stats(ctx)
	if err != nil {
		return err
	}
	p := st.Pool
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\t")
	fmt.Fprintf(tw, "  max connections\t%d\n", p.MaxConns)
	fmt.Fprintf(tw, "  open\t%d\n", p.TotalConns)
	fmt.Fprintf(tw, "  idle\t%d\n", p.IdleConns)
	fmt.Fprintf(tw, "  in use\t%d\n", p.AcquiredConns)
	fmt.Fprintf(tw, "  acquires\t%d\n", p.AcquireCount)
	fmt.Fprintf(tw, "  acquires that waited\t%d (%s in all)\n", p.EmptyAcquireCount, p.EmptyAcquireWaitTime.Round(time.Microsecond))
	fmt.Fprintf(tw, "  acquires that timed out\t%d\n", p.AcquireTimeouts)
	fmt.Fprintln(tw, "DATABASE CONNECTIONS BY STATE\t")
	if len(st.Connections) == 0 {
		fmt.Fprintln(tw, "  (none)\t")
	}
	var total int64
	for _, state := range sortedKeys(st.Connections) {
		fmt.Fprintf(tw, "  %s\t%d\n", state, st.Connections[state])
		total += st.Connections[state]
	}
	fmt.Fprintf(tw, "  total\t%d\n", total)
	return tw.Flush()
}

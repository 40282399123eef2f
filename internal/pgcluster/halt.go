package pgcluster

import (
	"context"
	"syscall"
	"time"
)

// Halt stops the server with a fast shutdown but keeps its data directory,
// so that Resume can start it again on the same port: a replica (or any
// server) that goes away for a while, for fault tests. Unlike Stop it may
// be followed by Resume; Stop still removes everything.
func (c *Cluster) Halt() error {
	return c.shutdown(syscall.SIGINT, 30*time.Second)
}

// Resume starts a server stopped by Halt again, on the same port. A
// replica resumes streaming from where it stopped.
func (c *Cluster) Resume(ctx context.Context) error {
	c.opts.Port = c.Port
	return c.launch(ctx)
}

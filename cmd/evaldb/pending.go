//go:build !evaldb_integrated

package main

import (
	"context"
	"errors"
)

// Until repo gains RecordEvalRun, Tx and the cache accessors, demo and serve
// are built only with -tags evaldb_integrated.
func runDemo(context.Context, *app, []string) error  { return errors.New("not built yet") }
func runServe(context.Context, *app, []string) error { return errors.New("not built yet") }

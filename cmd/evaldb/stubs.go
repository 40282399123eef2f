package main

import (
	"context"
	"errors"
)

func runDemo(ctx context.Context, a *app, args []string) error  { return errors.New("not yet") }
func runStats(ctx context.Context, a *app, args []string) error { return errors.New("not yet") }
func runServe(ctx context.Context, a *app, args []string) error { return errors.New("not yet") }

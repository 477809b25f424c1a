package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Dump refreshes every source once and prints the exposition: a quick way
// to see what a configuration yields without running a server.
func Dump(ctx context.Context, o Options, w io.Writer, logger *slog.Logger) error {
	o.oneShot = true
	a, err := New(ctx, o, logger, false)
	if err != nil {
		return err
	}
	defer a.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !a.ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if err := a.expo.Write(w, a.reg); err != nil {
		return err
	}
	// The exposition is printed either way; the status says whether every
	// source refreshed, so that scripts can rely on it.
	if failed := a.failedSources(); failed != "" {
		return fmt.Errorf("refresh failed for %s (see the log above)", failed)
	}
	return nil
}

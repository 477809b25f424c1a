package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
)

// dump refreshes every source once and prints the exposition: a quick way
// to see what a configuration yields without running a server.
func dump(ctx context.Context, f *flags, w io.Writer, logger *slog.Logger) error {
	a, err := newApp(ctx, f, logger, false)
	if err != nil {
		return err
	}
	defer a.close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !a.store.Snapshot().Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	mfs, err := a.reg.Gather()
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	// The exposition is printed either way; the status says whether every
	// source refreshed, so that scripts can rely on it.
	var failed []string
	for name, d := range a.store.Snapshot().Sources {
		if !d.LastOK && !d.LastAttempt.IsZero() {
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("refresh failed for %s (see the log above)", strings.Join(failed, ", "))
	}
	return nil
}

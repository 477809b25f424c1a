package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/report"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// ReportSource says where a report's data comes from.
type ReportSource int

// Report sources: the state file alone (no cloud call), the configured
// sources refreshed first, or the demo.
const (
	FromStateFile ReportSource = iota
	FromRefresh
	FromDemo
)

// ReportCommand declares the report command's flags on cmd and returns what
// runs it. The flags are the query parameters of GET /report, checked by
// the same parser, so that both give the same report.
func ReportCommand(cmd *kingpin.CmdClause) func(ctx context.Context, o Options, stdout io.Writer, logger *slog.Logger) error {
	var period, fiscal, from, to, unit, format, output string
	var by []string
	var refresh bool
	cmd.Flag("period", "month, quarter or year.").Default("year").StringVar(&period)
	cmd.Flag("fiscal-year-start", "First month of the fiscal year, 1 to 12; fiscal years are named by the year they end in (FY2026).").Default("1").StringVar(&fiscal)
	cmd.Flag("from", "First period, e.g. 2025, 2025-Q1, 2025-03, FY2026; default the first with data.").StringVar(&from)
	cmd.Flag("to", "Last period; default the last with data.").StringVar(&to)
	cmd.Flag("by", "Dimensions of the rows, repeatable or comma-separated: provider, account, service, location, scope.").Default("provider", "scope").StringsVar(&by)
	cmd.Flag("unit", "Unit of emissions: t, kg or g.").Default("t").StringVar(&unit)
	cmd.Flag("format", "csv, json or markdown.").Default("csv").StringVar(&format)
	cmd.Flag("output", "File to write; default standard output.").StringVar(&output)
	cmd.Flag("refresh", "Refresh the configured sources first (calls the clouds); default: the state file alone.").BoolVar(&refresh)
	return func(ctx context.Context, o Options, stdout io.Writer, logger *slog.Logger) error {
		q := url.Values{"period": {period}, "fiscal_year_start": {fiscal}, "unit": {unit}, "format": {format}, "by": {strings.Join(by, ",")}}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		ro, err := report.ParseOptions(q)
		if err != nil {
			return err
		}
		src := FromStateFile
		switch {
		case o.Demo:
			src = FromDemo
		case refresh:
			src = FromRefresh
		}
		if output == "" {
			return Report(ctx, o, src, ro, stdout, logger)
		}
		// The file is written only once the report is whole, so that a
		// failed run leaves an earlier report in place.
		var buf bytes.Buffer
		if err := Report(ctx, o, src, ro, &buf, logger); err != nil {
			return err
		}
		if err := os.WriteFile(output, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		return nil
	}
}

// Report writes a greenhouse-gas report of the data in the state file, or
// of the configured sources (or the demo) refreshed first.
func Report(ctx context.Context, o Options, from ReportSource, ro report.Options, w io.Writer, logger *slog.Logger) error {
	var sources map[string]*store.SourceData
	switch from {
	case FromStateFile:
		path := o.Shard.statePath(o.StateFile)
		data, err := store.NewStateFile(path).Load()
		if err != nil {
			return err
		}
		if data == nil {
			return fmt.Errorf("no state file at %s: run the exporter first, or pass --refresh (calls the clouds) or --demo", path)
		}
		sources = data
	default:
		o.Demo = from == FromDemo
		o.oneShot = true
		a, err := New(ctx, o, logger, from == FromRefresh)
		if err != nil {
			return err
		}
		defer a.Close()
		if err := a.waitSettled(ctx); err != nil {
			return err
		}
		if failed := a.failedSources(); failed != "" {
			logger.Warn("Refresh failed for some sources; the report holds their last good data", "sources", failed)
		}
		sources = a.store.Snapshot().Sources
	}
	if ro.Now.IsZero() {
		ro.Now = o.Now()
	}
	r, err := report.Build(report.Input{Sources: sources, Schedules: schedules(o.Plugins)}, ro)
	if err != nil {
		return err
	}
	return r.Write(w)
}

// schedules are the clouds' publication schedules, by provider label.
func schedules(plugins []provider.Plugin) map[string]provider.Schedule {
	out := make(map[string]provider.Schedule, len(plugins))
	for _, pl := range plugins {
		out[pl.Name] = pl.Schedule
	}
	return out
}

// reportHandler serves GET /report with the same parameters as the report
// command, from the data the exporter holds, bounded like /metrics.
func (a *App) reportHandler() http.Handler {
	scheds := schedules(a.opts.Plugins)
	h := newReportHandler(a.opts.MaxRequests, a.opts.ScrapeTimeout, a.store.Snapshot, a.opts.Now,
		func(snap *store.Snapshot, ro report.Options) (int, string, []byte) {
			rep, err := report.Build(report.Input{Sources: snap.Sources, Schedules: scheds}, ro)
			if err != nil {
				return http.StatusBadRequest, "text/plain; charset=utf-8", []byte(err.Error() + "\n")
			}
			var buf bytes.Buffer
			if err := rep.Write(&buf); err != nil {
				a.logger.Error("Error writing a report", "err", err)
				return http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("The report could not be written.\n")
			}
			return http.StatusOK, rep.ContentType(), buf.Bytes()
		})
	h.onError = func(err error) { a.logger.Debug("Error sending a report", "err", err) }
	return h
}

// waitSettled waits until every source has finished its refreshes for now:
// the history window, then the older months kept for reports, with
// nothing due in the next minute.
func (a *App) waitSettled(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if a.ready() && a.settled() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// settled reports whether every source's refreshes are done for now: its
// latest attempt failed (a report then holds its last good data; waiting
// for a retry could take forever), or nothing is due within a minute.
func (a *App) settled() bool {
	soon := a.opts.Now().Add(time.Minute)
	for _, d := range a.store.Snapshot().Sources {
		failed := !d.LastAttempt.IsZero() && !d.LastOK
		if !failed && (d.NextRefresh.IsZero() || d.NextRefresh.Before(soon)) {
			return false
		}
	}
	return true
}

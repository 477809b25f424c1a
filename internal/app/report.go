package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provisional"
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
	var period, fiscal, from, to, unit, format, output, asOf string
	var by, merge []string
	var refresh, fallback, provisional bool
	cmd.Flag("period", "month, quarter or year.").Default("year").StringVar(&period)
	cmd.Flag("fiscal-year-start", "First month of the fiscal year, 1 to 12; fiscal years are named by the year they end in (FY2026).").Default("1").StringVar(&fiscal)
	cmd.Flag("from", "First period, e.g. 2025, 2025-Q1, 2025-03, FY2026; default the first with data.").StringVar(&from)
	cmd.Flag("to", "Last period; default the last with data.").StringVar(&to)
	cmd.Flag("by", "Dimensions of the rows, repeatable or comma-separated: provider, account, service, location, scope.").Default("provider", "scope").StringsVar(&by)
	cmd.Flag("unit", "Unit of emissions: t, kg or g.").Default("t").StringVar(&unit)
	cmd.Flag("format", "csv, json or markdown.").Default("csv").StringVar(&format)
	cmd.Flag("output", "File to write; default standard output.").StringVar(&output)
	cmd.Flag("refresh", "Refresh the configured sources first (calls the clouds); default: the state file alone.").BoolVar(&refresh)
	cmd.Flag("state.merge", "State files to merge into one report instead of --state.file, such as every shard's: a path or a glob (state.shard-*-of-3.json), repeatable.").PlaceHolder("PATTERN").StringsVar(&merge)
	cmd.Flag("market-based-fallback", "Fill market-based figures with location-based ones where a provider reports none, flagged.").BoolVar(&fallback)
	cmd.Flag("include-provisional", "Add provisional estimates of unpublished months to the totals; they are flagged either way.").BoolVar(&provisional)
	cmd.Flag("as-of", "Show the data as it stood then: a date (2026-02-15, its start in UTC) or an RFC 3339 time, such as a filed report's generated_at.").StringVar(&asOf)
	return func(ctx context.Context, o Options, stdout io.Writer, logger *slog.Logger) error {
		q := url.Values{"period": {period}, "fiscal_year_start": {fiscal}, "unit": {unit}, "format": {format}, "by": {strings.Join(by, ",")},
			"market_based_fallback": {strconv.FormatBool(fallback)}, "include_provisional": {strconv.FormatBool(provisional)}}
		for k, v := range map[string]string{"from": from, "to": to, "as_of": asOf} {
			if v != "" {
				q.Set(k, v)
			}
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
		write := func(w io.Writer) error { return Report(ctx, o, src, ro, w, logger) }
		if len(merge) > 0 {
			if src != FromStateFile {
				return errors.New("--state.merge reports the state files alone: it takes neither --refresh nor --demo")
			}
			write = func(w io.Writer) error { return ReportStateFiles(ctx, o, merge, ro, w, logger) }
		}
		if output == "" {
			return write(stdout)
		}
		// The file is written only once the report is whole, so that a
		// failed run leaves an earlier report in place.
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			return err
		}
		// The directory may be new, such as reports/ on a volume that
		// holds only state files so far.
		if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
			return fmt.Errorf("--output: %w", err)
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
	var notes []string
	var digest string
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
		if o.Shard.Sharded() {
			notes = append(notes, shardReportNote(o.Shard, slices.Sorted(maps.Keys(data)), 0))
		}
		digest = fileDigest(o)
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
		digest = a.configDigest()
	}
	if ro.Now.IsZero() {
		ro.Now = o.Now()
	}
	r, err := report.Build(reportInput(sources, o.Plugins, digest), ro)
	if err != nil {
		return err
	}
	r.Notes = append(r.Notes, notes...)
	return r.Write(w)
}

// reportInput is what a report of sources is built from: the clouds'
// schedules and methodologies, the exporter's version and the digest of
// its configuration.
func reportInput(sources map[string]*store.SourceData, plugins []provider.Plugin, digest string) report.Input {
	methodology := make(map[string]provider.Methodology, len(plugins))
	for _, pl := range plugins {
		methodology[pl.Name] = pl.Methodology
	}
	return report.Input{Sources: sources, Schedules: schedules(plugins), Methodology: methodology,
		Version: version.Version, ConfigHash: digest, Provisional: provisionalRecords(sources)}
}

// provisionalRecords are the estimates of the months the sources have not
// published, as records, by source: reports flag them, and sum them only
// when asked.
func provisionalRecords(sources map[string]*store.SourceData) map[string][]provider.Record {
	out := map[string][]provider.Record{}
	for name, d := range sources {
		if len(d.Costs) == 0 {
			continue
		}
		for _, e := range provisional.Estimates(d.CostInputs()) {
			out[name] = append(out[name], provider.Record{Provider: d.Provider, Account: e.Account, Service: e.Service,
				Location: e.Location, Scope: e.Scope, Month: e.Month, EmissionsGrams: e.Grams, MarketBasedGrams: e.MarketBasedGrams, Known: e.Known})
		}
	}
	return out
}

// digestOf identifies a configuration in reports: the SHA-256 of the
// configuration as --config.check prints it, secrets redacted, so that it
// reveals none and stays the same when a key is rotated.
func digestOf(cfg *config.Config) string {
	sum := sha256.Sum256([]byte(cfg.String()))
	return hex.EncodeToString(sum[:])
}

// fileDigest is the digest of the configuration file, "" when it does not
// load. The configuration is only described, not needed: a report of state
// files is made where its secrets may not resolve.
func fileDigest(o Options) string {
	if cfg, err := config.Load(o.ConfigFile, o.Plugins); err == nil {
		return digestOf(cfg)
	}
	return ""
}

// configDigest returns the running configuration's digest; empty in demo
// mode, which has no configuration file.
func (a *App) configDigest() string {
	if d := a.digest.Load(); d != nil {
		return *d
	}
	return ""
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
// command, from the data the exporter holds, bounded like /metrics. A
// shard's report says which sources it covers, in a note and in headers.
func (a *App) reportHandler() http.Handler {
	h := newReportHandler(a.opts.MaxRequests, a.opts.ScrapeTimeout, a.store.Snapshot, a.opts.Now,
		func(snap *store.Snapshot, ro report.Options) (int, string, []byte) {
			rep, err := report.Build(reportInput(snap.Sources, a.opts.Plugins, a.configDigest()), ro)
			if err != nil {
				return http.StatusBadRequest, "text/plain; charset=utf-8", []byte(err.Error() + "\n")
			}
			if s := a.opts.Shard; s.Sharded() {
				rep.Notes = append(rep.Notes, shardReportNote(s, slices.Sorted(maps.Keys(snap.Sources)), a.shard.configuredSources()))
			}
			var buf bytes.Buffer
			if err := rep.Write(&buf); err != nil {
				a.logger.Error("Error writing a report", "err", err)
				return http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("The report could not be written.\n")
			}
			return http.StatusOK, rep.ContentType(), buf.Bytes()
		})
	h.onError = func(err error) { a.logger.Debug("Error sending a report", "err", err) }
	if !a.opts.Shard.Sharded() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := slices.Sorted(maps.Keys(a.store.Snapshot().Sources))
		shardHeaders(w.Header(), a.opts.Shard, names, a.shard.configuredSources())
		h.ServeHTTP(w, r)
	})
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

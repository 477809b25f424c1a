// Command cloudcarbon_exporter exposes the carbon footprint that cloud
// providers report as Prometheus metrics.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"go.opentelemetry.io/otel"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/app"
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
)

func main() {
	if version.Version == "" {
		// Builds without the Makefile's -ldflags (go run, go install).
		version.Version = moduleVersion()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

// moduleVersion is the version Go recorded for the main module: a tag or
// pseudo-version for go install, "devel" for a build from a work tree.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// run is the whole command; now is the clock of the refreshers and the demo
// dataset, which tests fix.
func run(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	kp := kingpin.New(app.Name, "Exports the carbon footprint that cloud providers report as Prometheus metrics.")
	kp.UsageWriter(stderr)
	kp.ErrorWriter(stderr)
	o := app.Options{Plugins: clouds.All(), Now: now}
	var configCheck bool
	var shardIndex, shardTotal int
	logConfig := &promslog.Config{}
	kp.Flag("config.file", "Configuration file.").Default("cloudcarbon_exporter.yml").StringVar(&o.ConfigFile)
	kp.Flag("config.check", "Validate the configuration file, print it with secrets redacted, and exit.").BoolVar(&configCheck)
	kp.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.TelemetryPath)
	kp.Flag("history.months", "Months of history exposed in the cloudcarbon_history_* families, the latest month included.").Default("13").IntVar(&o.HistoryMonths)
	kp.Flag("retention.months", "Months kept in the state file for reports (the report command, /report), the latest included; at least --history.months.").Default("38").IntVar(&o.RetentionMonths)
	kp.Flag("state.file", "File that persists fetched data across restarts; empty disables persistence.").Default("cloudcarbon_exporter.state.json").StringVar(&o.StateFile)
	kp.Flag("demo", "Serve a built-in multi-provider dataset through in-process fake provider endpoints; needs no config file and no credentials.").BoolVar(&o.Demo)
	kp.Flag("otlp.enable", "Push metrics over OTLP/gRPC, as the config's otlp section and the OTEL_EXPORTER_OTLP_* variables say (same as otlp.enabled in the config).").BoolVar(&o.OTLP)
	kp.Flag("web.max-requests", "Maximum number of concurrent scrape requests, and apart from them of /report requests; more are answered 503 at once. 0 disables the limit; negative values are refused.").Default("40").IntVar(&o.MaxRequests)
	kp.Flag("web.timeout", "Write deadline of one scrape or /report response; greater than 0.").Default("30s").DurationVar(&o.ScrapeTimeout)
	kp.Flag("web.enable-pprof", "Serve Go profiles on /debug/pprof/ (off by default: they are not for the metrics port of every deployment).").BoolVar(&o.Pprof)
	kp.Flag("shard.total", "Number of replicas the sources are split over; each source belongs to one, each replica holding as many as the others give or take one, dealt from the configuration alone.").Default("1").IntVar(&shardTotal)
	kp.Flag("shard.index", "This replica's shard, from 0 to --shard.total - 1; -1 takes it from the ordinal ending $POD_NAME or the host name, as in a StatefulSet.").Default("0").IntVar(&shardIndex)
	o.Web = kingpinflag.AddFlags(kp, ":9874")
	promslogflag.AddFlags(kp, logConfig)
	kp.Version(version.Print(app.Name))
	kp.HelpFlag.Short('h')

	serveCmd := kp.Command("serve", "Serve metrics (the default).").Default()
	dumpCmd := kp.Command("dump", "Refresh every source once and print the exposition to standard output.")
	reportCmd := kp.Command("report", "Print a greenhouse-gas report (monthly, quarterly or yearly totals by scope and method) of the state file, or of the sources refreshed first.")
	runReport := app.ReportCommand(reportCmd)
	exampleCmd := kp.Command("example-config", "Print the example configuration: every key, with its default and what it does.")
	// Clouds add their own subcommands, such as gcp-setup.
	commands := map[string]func(context.Context, io.Writer) error{}
	for _, pl := range o.Plugins {
		for _, c := range pl.Commands {
			cmd := kp.Command(c.Name, c.Help)
			commands[cmd.FullCommand()] = c.Setup(cmd)
		}
	}

	cmd, err := kp.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", app.Name, err)
		return 2
	}
	logConfig.Writer = stderr
	logger := promslog.New(logConfig)
	// The OpenTelemetry SDK reports push errors through a process-wide
	// handler; the pusher already logs each failed run once, so the SDK's
	// copies go to debug.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Debug("OpenTelemetry SDK error", "err", err) }))
	if o.HistoryMonths < 1 || o.HistoryMonths > 120 || o.RetentionMonths < o.HistoryMonths || o.RetentionMonths > 120 {
		logger.Error("--history.months must be between 1 and 120, --retention.months between it and 120", "history", o.HistoryMonths, "retention", o.RetentionMonths)
		return 2
	}
	if o.MaxRequests < 0 {
		logger.Error("--web.max-requests must be 0 (no limit) or more", "value", o.MaxRequests)
		return 2
	}
	if o.ScrapeTimeout <= 0 {
		logger.Error("--web.timeout must be greater than 0", "value", o.ScrapeTimeout)
		return 2
	}
	if o.Shard, err = app.ResolveShard(shardIndex, shardTotal); err != nil {
		logger.Error("Invalid sharding flags", "err", err)
		return 2
	}

	if configCheck {
		cfg, err := config.Load(o.ConfigFile, o.Plugins)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s is valid:\n%s", o.ConfigFile, cfg)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case serveCmd.FullCommand():
		err = app.Serve(ctx, o, logger)
	case dumpCmd.FullCommand():
		err = app.Dump(ctx, o, stdout, logger)
	case reportCmd.FullCommand():
		err = runReport(ctx, o, stdout, logger)
	case exampleCmd.FullCommand():
		_, err = io.WriteString(stdout, config.Example(o.Plugins))
	default:
		err = commands[cmd](ctx, stdout)
	}
	if err != nil {
		logger.Error("Exiting", "err", err)
		return 1
	}
	return 0
}

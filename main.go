// Command cloudcarbon_exporter exposes the carbon footprint that cloud
// providers report as Prometheus metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"go.opentelemetry.io/otel"

	"github.com/cloudcarbon/cloudcarbon_exporter/collector"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
)

const exporterName = "cloudcarbon_exporter"

// flags holds the command line.
type flags struct {
	configFile    string
	configCheck   bool
	telemetryPath string
	historyMonths int
	stateFile     string
	demo          bool
	otlp          bool
	web           *web.FlagConfig
	log           *promslog.Config
	// now is the clock of the refreshers and of the demo dataset; tests
	// fix it to make the exposition reproducible.
	now func() time.Time
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr *os.File) int {
	app := kingpin.New(exporterName, "Exports the carbon footprint that cloud providers report (GCP, Azure, IBM Cloud) as Prometheus metrics.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	f := &flags{log: &promslog.Config{}, now: time.Now}
	app.Flag("config.file", "Configuration file.").Default("cloudcarbon_exporter.yml").StringVar(&f.configFile)
	app.Flag("config.check", "Validate the configuration file, print it with secrets redacted, and exit.").BoolVar(&f.configCheck)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	app.Flag("history.months", "Months of history exposed in the cloudcarbon_history_* families, the latest month included.").Default("13").IntVar(&f.historyMonths)
	app.Flag("state.file", "File that persists fetched data across restarts; empty disables persistence.").Default("cloudcarbon_exporter.state.json").StringVar(&f.stateFile)
	app.Flag("demo", "Serve a built-in multi-provider dataset through in-process fake provider endpoints; needs no config file and no credentials.").BoolVar(&f.demo)
	app.Flag("otlp.enable", "Push metrics over OTLP/gRPC, as the config's otlp section and the OTEL_EXPORTER_OTLP_* variables say (same as otlp.enabled in the config).").BoolVar(&f.otlp)
	f.web = kingpinflag.AddFlags(app, ":9874")
	promslogflag.AddFlags(app, f.log)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')

	serveCmd := app.Command("serve", "Serve metrics (the default).").Default()
	dumpCmd := app.Command("dump", "Refresh every source once and print the exposition to standard output.")
	setupCmd := app.Command("gcp-setup", "Create the GCP Carbon Footprint export (a BigQuery Data Transfer config) for a billing account, and optionally backfill its history. Does nothing when the export exists.")
	var setup gcpSetupFlags
	setupCmd.Flag("project", "Project that owns the transfer config and the destination dataset.").Required().StringVar(&setup.project)
	setupCmd.Flag("billing-account", "Billing account to export, e.g. 012345-6789AB-CDEF01.").Required().StringVar(&setup.billingAccount)
	setupCmd.Flag("dataset", "Destination dataset in --project; it must exist.").Required().StringVar(&setup.dataset)
	setupCmd.Flag("location", "Location of the dataset, e.g. US or EU.").StringVar(&setup.location)
	setupCmd.Flag("backfill-from", "Also load history from this month (YYYY-MM, 2021-01 at the earliest).").StringVar(&setup.backfillFrom)
	setupCmd.Flag("credentials-file", "Service-account key file; default: Application Default Credentials.").StringVar(&setup.credentialsFile)
	setupCmd.Flag("endpoint", "BigQuery Data Transfer API endpoint, for private endpoints.").StringVar(&setup.endpoint)
	setupCmd.Flag("dry-run", "Print what would be done and call nothing.").BoolVar(&setup.dryRun)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", exporterName, err)
		return 2
	}
	f.log.Writer = stderr
	logger := promslog.New(f.log)
	// The OpenTelemetry SDK reports push errors through a process-wide
	// handler; the pusher already logs each failed run once, so the SDK's
	// copies go to debug.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Debug("OpenTelemetry SDK error", "err", err) }))
	if f.historyMonths < 1 || f.historyMonths > 120 {
		logger.Error("--history.months must be between 1 and 120", "value", f.historyMonths)
		return 2
	}

	if f.configCheck {
		cfg, err := config.Load(f.configFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s is valid:\n%s", f.configFile, cfg)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case serveCmd.FullCommand():
		err = serve(ctx, f, logger)
	case dumpCmd.FullCommand():
		err = dump(ctx, f, stdout, logger)
	case setupCmd.FullCommand():
		err = gcpSetup(ctx, &setup, stdout)
	}
	if err != nil {
		logger.Error("Exiting", "err", err)
		return 1
	}
	return 0
}

// app is the running exporter: registries, store and refreshers.
type app struct {
	flags    *flags
	logger   *slog.Logger
	reg      *prometheus.Registry
	metrics  *collector.Metrics
	store    *collector.Store
	manager  *collector.Manager
	reloader *reloader
	demo     *demo.Env

	otlp       *collector.OTLPPusher
	otlpConfig config.OTLP
}

func newApp(ctx context.Context, f *flags, logger *slog.Logger, persist bool) (*app, error) {
	a := &app{flags: f, logger: logger, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(versioncollector.NewCollector("cloudcarbon"))
	a.metrics = collector.NewMetrics(a.reg)

	var cfg *config.Config
	var err error
	if f.demo {
		a.demo, err = demo.Start(ctx, f.now(), logger.With("component", "demo"))
		if err != nil {
			return nil, fmt.Errorf("start demo: %w", err)
		}
		cfg = a.demo.Config()
		logger.Warn("DEMO MODE: serving a built-in dataset from in-process fake provider endpoints; no cloud is queried and no state file is used")
	} else {
		cfg, err = config.Load(f.configFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (pass --config.file, or try the exporter without a cloud account with --demo)", err)
		}
		if err != nil {
			return nil, err
		}
	}

	var state *collector.StateFile
	if persist && !f.demo && f.stateFile != "" {
		state = collector.NewStateFile(f.stateFile)
	}
	a.store = collector.NewStore(f.historyMonths, state, a.metrics, logger)
	a.reg.MustRegister(collector.NewCollector(a.store))
	a.manager = collector.NewManager(a.store, a.metrics, logger)
	a.reloader = newReloader(a, cfg)

	seed := collector.LoadState(state, a.metrics, logger)
	if err := a.reloader.apply(ctx, cfg, seed); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// close stops everything and flushes the state file, once. It holds the
// reloader's lock so that a reload racing with shutdown cannot start
// refreshers or a pusher after it.
func (a *app) close() {
	a.reloader.mu.Lock()
	defer a.reloader.mu.Unlock()
	if a.reloader.closed {
		return
	}
	a.reloader.closed = true
	a.manager.Stop()
	a.stopOTLP()
	if err := a.store.Flush(); err != nil {
		a.logger.Error("Cannot write state file", "err", err)
	}
	if a.demo != nil {
		a.demo.Close()
	}
}

func serve(ctx context.Context, f *flags, logger *slog.Logger) error {
	logger.Info("Starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext())
	a, err := newApp(ctx, f, logger, true)
	if err != nil {
		return err
	}
	defer a.close()

	mux, err := a.handler(ctx)
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := a.reloader.reload(ctx); err != nil {
					logger.Error("Reload failed; the previous configuration stays in effect", "err", err)
				}
			}
		}
	}()

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, f.web, logger) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("Shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler serves metrics, the landing page, health, readiness and reload.
// ctx bounds the refreshers a reload starts, not the reload request.
func (a *app) handler(ctx context.Context) (http.Handler, error) {
	f, logger := a.flags, a.logger
	exporterReg := prometheus.NewRegistry()
	exporterReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle(f.telemetryPath, promhttp.HandlerFor(
		prometheus.Gatherers{a.reg, exporterReg},
		promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError), ErrorHandling: promhttp.ContinueOnError, Registry: exporterReg},
	))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	// Readiness latches: a reload that adds a source must not take a
	// serving exporter out of its load balancer until that source's
	// first refresh.
	var ready atomic.Bool
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() && !a.store.Snapshot().Ready() {
			http.Error(w, "Not ready: waiting for the first refresh of every source", http.StatusServiceUnavailable)
			return
		}
		ready.Store(true)
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "This endpoint requires a POST or PUT request.", http.StatusMethodNotAllowed)
			return
		}
		if err := a.reloader.reload(ctx); err != nil {
			http.Error(w, fmt.Sprintf("Reload failed; the previous configuration stays in effect: %v", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	if f.telemetryPath != "/" {
		landing, err := web.NewLandingPage(landingConfig(f))
		if err != nil {
			return nil, fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil

}

func landingConfig(f *flags) web.LandingConfig {
	desc := "Exports the carbon footprint that cloud providers report (GCP, Azure, IBM Cloud)."
	if f.demo {
		desc = "DEMO MODE: the data shown is a built-in dataset served by in-process fake provider endpoints, not a real cloud account. " + desc
	}
	return web.LandingConfig{
		Name:        exporterName,
		Description: desc,
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: f.telemetryPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
	}
}

package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
)

// Serve runs the exporter until ctx ends: HTTP endpoints, refreshers,
// reloads on SIGHUP and POST /-/reload.
func Serve(ctx context.Context, o Options, logger *slog.Logger) error {
	logger.Info("Starting "+Name, "version", version.Info(), "build_context", version.BuildContext())
	// Whatever stops the server from serving stops the exporter before
	// its first refresh: a busy address, an invalid web configuration.
	listeners, err := listen(o.Web, logger)
	if err != nil {
		return err
	}
	defer closeListeners(listeners)
	if path := *o.Web.WebConfigFile; path != "" {
		if err := web.Validate(path); err != nil {
			return fmt.Errorf("--web.config.file: %w", err)
		}
	}
	a, err := New(ctx, o, logger, true)
	if err != nil {
		return err
	}
	defer a.Close()

	mux, err := a.Handler(ctx)
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
				if err := a.Reload(ctx); err != nil {
					logger.Error("Reload failed; the previous configuration stays in effect", "err", err)
				}
			}
		}
	}()

	// /metrics sets its own write deadline (--web.timeout); the server's
	// bounds the other endpoints and any client that stops reading.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: max(2*time.Minute, 2*o.ScrapeTimeout), IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- web.ServeMultiple(listeners, srv, o.Web, logger) }()
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

// Handler serves metrics, the landing page, health, readiness and reload.
// ctx bounds the refreshers a reload starts, not the reload request.
func (a *App) Handler(ctx context.Context) (http.Handler, error) {
	o := a.opts
	// The exporter's own process and Go metrics live apart from the data,
	// so that the OTLP push carries only the data and self-metrics.
	processReg := prometheus.NewRegistry()
	processReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle(o.TelemetryPath, promhttp.InstrumentMetricHandler(processReg,
		a.expo.Handler(prometheus.Gatherers{a.reg, processReg}, exposition.HandlerOpts{MaxRequests: o.MaxRequests, Timeout: o.ScrapeTimeout})))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	// Readiness latches: a reload that adds a source must not take a
	// serving exporter out of its load balancer until that source's
	// first refresh.
	var ready atomic.Bool
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() && !a.ready() {
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
		switch err := a.Reload(ctx); {
		case errors.Is(err, errDemoReload):
			http.Error(w, "Not reloaded: "+err.Error()+".", http.StatusConflict)
			return
		case err != nil:
			a.logger.Error("Reload failed; the previous configuration stays in effect", "err", err)
			http.Error(w, fmt.Sprintf("Reload failed; the previous configuration stays in effect: %v", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	mux.Handle("/report", a.reportHandler())
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if o.TelemetryPath != "/" {
		landing, err := web.NewLandingPage(a.landingConfig())
		if err != nil {
			return nil, fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}

func (a *App) landingConfig() web.LandingConfig {
	desc := "Exports the carbon footprint that cloud providers report."
	if a.opts.Demo {
		desc = "DEMO MODE: the data shown is a built-in dataset served by in-process fake provider endpoints, not a real cloud account. " + desc
	}
	// The landing page links to profiles only where they are served.
	profiling := "false"
	if a.opts.Pprof {
		profiling = "true"
	}
	return web.LandingConfig{
		Profiling:   profiling,
		Name:        Name,
		Description: desc,
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: a.opts.TelemetryPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
			{Address: "/report?period=year&format=markdown", Text: "Greenhouse-gas report"},
		},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/collector"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
)

// reloader applies configurations. A new configuration replaces the running
// one only when it loads, validates and builds every source; otherwise the
// old one keeps running and the reload gauge says so.
type reloader struct {
	app *app
	// mu serialises reloads with each other and with app.close.
	mu sync.Mutex
	// closed is set by app.close; a reload after it does nothing.
	closed      bool
	hash        string
	success     prometheus.Gauge
	successTime prometheus.Gauge
}

func newReloader(a *app, cfg *config.Config) *reloader {
	r := &reloader{
		app: a,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cloudcarbon_config_last_reload_successful",
			Help: "Whether the last configuration load or reload succeeded (1) or failed (0).",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cloudcarbon_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully, as a Unix timestamp.",
		}),
	}
	a.reg.MustRegister(r.success, r.successTime)
	return r
}

// apply starts refreshers for cfg. seed is persisted data for a start.
func (r *reloader) apply(ctx context.Context, cfg *config.Config, seed map[string]*collector.SourceData) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applyLocked(ctx, cfg, seed)
}

func (r *reloader) applyLocked(ctx context.Context, cfg *config.Config, seed map[string]*collector.SourceData) error {
	if r.closed {
		return errShuttingDown
	}
	var ov map[string]demo.Override
	if r.app.demo != nil {
		ov = r.app.demo.Overrides()
	}
	sources, err := buildSources(ctx, cfg, r.app.metrics, r.app.logger, ov)
	if err != nil {
		r.success.Set(0)
		return err
	}
	otlp := cfg.OTLP
	otlp.Enabled = otlp.Enabled || r.app.flags.otlp
	if err := r.app.applyOTLP(ctx, otlp); err != nil {
		collector.CloseSources(sources)
		r.success.Set(0)
		return err
	}
	r.app.manager.Apply(ctx, sources, refreshOptions(cfg, r.app.flags), seed)
	r.hash = cfg.Hash()
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
	r.app.logger.Info("Configuration applied", "sources", len(sources))
	return nil
}

// reload reads the configuration file again and applies it if it changed.
func (r *reloader) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errShuttingDown
	}
	if r.app.flags.demo {
		r.app.logger.Info("Demo mode has no configuration file to reload")
		return nil
	}
	cfg, err := config.Load(r.app.flags.configFile)
	if err != nil {
		r.success.Set(0)
		return err
	}
	if cfg.Hash() == r.hash {
		r.app.logger.Info("Configuration unchanged; nothing to reload")
		r.success.Set(1)
		r.successTime.SetToCurrentTime()
		return nil
	}
	if err := r.applyLocked(ctx, cfg, nil); err != nil {
		return fmt.Errorf("apply configuration: %w", err)
	}
	return nil
}

var errShuttingDown = errors.New("the exporter is shutting down")

func refreshOptions(cfg *config.Config, f *flags) collector.Options {
	rc := cfg.Refresh
	return collector.Options{
		Interval:       rc.Interval,
		IdleInterval:   rc.IdleInterval,
		Jitter:         rc.Jitter,
		Timeout:        rc.Timeout,
		BackoffMin:     rc.BackoffMin,
		BackoffMax:     rc.BackoffMax,
		MaxConcurrency: rc.MaxConcurrency,
		History:        f.historyMonths,
		Now:            f.now,
	}
}

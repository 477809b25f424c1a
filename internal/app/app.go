// Package app is the running exporter: it wires the configuration, the
// cloud plug-ins, the store, the refreshers, the exposition and the OTLP
// push together, applies reloads, and serves HTTP. The main package only
// parses the command line and hands over.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/otlp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Name is the exporter's name in logs, the landing page and OTLP.
const Name = "cloudcarbon_exporter"

// Options are what the command line sets.
type Options struct {
	ConfigFile    string
	TelemetryPath string
	HistoryMonths int
	// RetentionMonths is how many months the state keeps for reports; at
	// least HistoryMonths (zero: HistoryMonths).
	RetentionMonths int
	// StateFile persists data across restarts; empty disables it.
	StateFile string
	Demo      bool
	// OTLP turns the push on whatever the configuration says.
	OTLP bool
	Web  *web.FlagConfig
	// MaxRequests bounds concurrent /metrics requests, and apart from
	// them concurrent /report requests (0: no limit); ScrapeTimeout is
	// the write deadline of one.
	MaxRequests   int
	ScrapeTimeout time.Duration
	// Pprof serves /debug/pprof/ on the web port.
	Pprof bool
	// Shard selects the sources this replica refreshes; the zero value
	// takes them all.
	Shard Shard
	// oneShot runs the refreshers once for a command (dump, report):
	// without jitter, so that months due after the first refresh follow
	// at once.
	oneShot bool
	// Plugins are the clouds the configuration may name.
	Plugins []provider.Plugin
	// Now is the clock of the refreshers and of the demo dataset; tests
	// fix it to make the exposition reproducible.
	Now func() time.Time
}

// App is a running exporter.
type App struct {
	opts   Options
	logger *slog.Logger
	// reg holds what is gathered per scrape: self-metrics and freshness.
	// The data families are pre-rendered by expo; data holds them as
	// metrics for the OTLP push.
	reg     *prometheus.Registry
	data    *prometheus.Registry
	store   *store.Store
	expo    *exposition.Exposition
	refresh *refresh.Metrics
	manager *refresh.Manager
	otlpM   *otlp.Metrics
	demo    *demo.Env

	reloadOK, reloadTime prometheus.Gauge
	shard                *shardMetrics

	// digest identifies the configuration in reports, which read it
	// without waiting for a reload (configDigest).
	digest atomic.Pointer[string]

	// mu serialises reloads with each other and with Close; it guards the
	// fields below.
	mu         sync.Mutex
	closed     bool
	hash       string
	pusher     *otlp.Pusher
	otlpConfig config.OTLP
}

var (
	errShuttingDown = errors.New("the exporter is shutting down")
	errDemoReload   = errors.New("demo mode has no configuration file to reload")
)

// New loads the configuration (or starts the demo), loads the state file
// when persist is set, and starts a refresher per source.
func New(ctx context.Context, o Options, logger *slog.Logger, persist bool) (*App, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &App{opts: o, logger: logger, reg: prometheus.NewRegistry(), data: prometheus.NewRegistry()}
	a.reg.MustRegister(versioncollector.NewCollector("cloudcarbon"))
	a.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cloudcarbon_config_last_reload_successful",
		Help: "Whether the last configuration load or reload succeeded (1) or failed (0).",
	})
	a.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cloudcarbon_config_last_reload_success_timestamp_seconds",
		Help: "When the configuration was last loaded successfully, as a Unix timestamp.",
	})
	a.reg.MustRegister(a.reloadOK, a.reloadTime)
	a.shard = newShardMetrics(a.reg, o.Shard)

	var cfg *config.Config
	var err error
	if o.Demo {
		a.demo, err = demo.Start(ctx, o.Now(), logger.With("component", "demo"), o.Plugins)
		if err != nil {
			return nil, err
		}
		cfg = a.demo.Config
		logger.Warn("DEMO MODE: serving a built-in dataset from in-process fake provider endpoints; no cloud is queried and no state file is used")
	} else {
		cfg, err = config.Load(o.ConfigFile, o.Plugins)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (pass --config.file, or try the exporter without a cloud account with --demo)", err)
		}
		if err != nil {
			return nil, err
		}
	}

	var state *store.StateFile
	if persist && !o.Demo && o.StateFile != "" {
		state = store.NewStateFile(o.Shard.statePath(o.StateFile))
	}
	// The exposition re-renders when the store says data changed, and
	// reads the store's snapshot when it does.
	a.expo = exposition.New(o.HistoryMonths, func() *store.Snapshot { return a.store.Snapshot() }, logger,
		exposition.WithSchedules(schedules(o.Plugins)))
	a.store = store.New(store.Options{State: state, Registerer: a.reg, Logger: logger, OnData: a.expo.Refresh})
	a.reg.MustRegister(a.expo.Freshness())
	a.data.MustRegister(a.expo.Data())
	a.refresh = refresh.NewMetrics(a.reg, o.Plugins)
	a.otlpM = otlp.NewMetrics(a.reg)
	a.manager = refresh.NewManager(a.store, a.refresh, logger)

	seed := a.store.LoadState()
	a.mu.Lock()
	err = a.apply(ctx, cfg, seed)
	a.mu.Unlock()
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close stops everything and flushes the state file, once.
func (a *App) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	a.manager.Stop()
	a.stopOTLP()
	if err := a.store.Flush(); err != nil {
		a.logger.Error("Cannot write state file", "err", err)
	}
	if a.demo != nil {
		a.demo.Close()
	}
}

// Reload reads the configuration file again and applies it if it changed.
// On any error the running configuration stays in effect.
func (a *App) Reload(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errShuttingDown
	}
	if a.opts.Demo {
		return errDemoReload
	}
	cfg, err := config.Load(a.opts.ConfigFile, a.opts.Plugins)
	if err != nil {
		a.reloadOK.Set(0)
		return err
	}
	if cfg.Hash() == a.hash {
		a.logger.Info("Configuration unchanged; nothing to reload")
		a.reloadOK.Set(1)
		a.reloadTime.SetToCurrentTime()
		return nil
	}
	if err := a.apply(ctx, cfg, nil); err != nil {
		return fmt.Errorf("apply configuration: %w", err)
	}
	return nil
}

// apply builds every source of cfg and, only when all build, replaces the
// running ones. seed is persisted data for a start. Called with mu held.
func (a *App) apply(ctx context.Context, cfg *config.Config, seed map[string]*store.SourceData) error {
	if a.closed {
		return errShuttingDown
	}
	sources, err := a.build(ctx, cfg)
	if err != nil {
		a.reloadOK.Set(0)
		return err
	}
	oc := cfg.OTLP
	oc.Enabled = oc.Enabled || a.opts.OTLP
	if err := a.applyOTLP(ctx, oc); err != nil {
		refresh.CloseSources(sources)
		a.reloadOK.Set(0)
		return err
	}
	rc := cfg.Refresh
	jitter := rc.Jitter
	if a.opts.oneShot {
		jitter = 0
	}
	a.manager.Apply(ctx, sources, refresh.Options{
		Interval:       rc.Interval,
		IdleInterval:   rc.IdleInterval,
		Jitter:         jitter,
		Timeout:        rc.Timeout,
		BackoffMin:     rc.BackoffMin,
		BackoffMax:     rc.BackoffMax,
		MaxConcurrency: rc.MaxConcurrency,
		History:        a.opts.HistoryMonths,
		Retention:      a.opts.RetentionMonths,
		Now:            a.opts.Now,
	}, seed)
	a.hash = cfg.Hash()
	if !a.opts.Demo {
		digest := digestOf(cfg)
		a.digest.Store(&digest)
	}
	a.reloadOK.Set(1)
	a.reloadTime.SetToCurrentTime()
	a.shard.applied(a.logger, len(sources), len(cfg.Sources))
	return nil
}

// build turns the configured sources into clients through their plug-ins.
func (a *App) build(ctx context.Context, cfg *config.Config) (out []refresh.Source, err error) {
	defer func() {
		if err != nil {
			refresh.CloseSources(out)
			out = nil
		}
	}()
	names := make([]string, len(cfg.Sources))
	for i, src := range cfg.Sources {
		names[i] = src.Name()
	}
	owned := a.opts.Shard.Owned(names)
	for _, src := range cfg.Sources {
		name := src.Name()
		if !slices.Contains(owned, name) {
			continue
		}
		env := provider.Env{
			Name:     name,
			Logger:   a.logger.With("provider", src.Provider, "source_name", name),
			Observe:  a.refresh.RequestObserver(src.Provider, name),
			Counters: a.refresh.Counters(src.Provider, name),
		}
		if a.demo != nil {
			env.Connection = a.demo.Connections[name]
		}
		p, err := src.Config.New(ctx, env)
		if err != nil {
			return out, fmt.Errorf("%s source %q: %w", src.Provider, name, err)
		}
		out = append(out, refresh.NewSource(name, src.Config, p))
	}
	return out, nil
}

// applyOTLP starts, restarts or stops the OTLP push to match c. Unchanged
// settings leave a running pusher alone. Called with mu held.
func (a *App) applyOTLP(ctx context.Context, c config.OTLP) error {
	if a.pusher != nil && reflect.DeepEqual(a.otlpConfig, c) {
		return nil
	}
	if !c.Enabled {
		a.stopOTLP()
		return nil
	}
	headers := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		headers[k] = v.Value()
	}
	p, err := otlp.Start(ctx, a.gatherer(), otlp.Options{
		Interval: c.Interval, Endpoint: c.Endpoint, Insecure: c.Insecure, Headers: headers, Timeout: c.Timeout,
		ServiceVersion: version.Version, ServiceInstanceID: a.instanceID(),
	}, a.otlpM, a.logger)
	if err != nil {
		return err // the running pusher, if any, goes on
	}
	a.stopOTLP()
	a.pusher, a.otlpConfig = p, c
	a.logger.Info("Pushing metrics over OTLP", "interval", c.Interval)
	return nil
}

// stopOTLP pushes once more and stops the pusher. Called with mu held.
func (a *App) stopOTLP() {
	if a.pusher == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(a.otlpConfig.Timeout, 10*time.Second)+time.Second)
	defer cancel()
	if err := a.pusher.Shutdown(ctx); err != nil {
		a.logger.Warn("Final OTLP push failed", "err", err)
	}
	a.pusher = nil
}

// instanceID names this exporter the way a Prometheus target would be
// named: host and port.
func (a *App) instanceID() string {
	host, _ := os.Hostname()
	port := "9874"
	if w := a.opts.Web; w != nil && w.WebListenAddresses != nil && len(*w.WebListenAddresses) > 0 {
		if _, p, err := net.SplitHostPort((*w.WebListenAddresses)[0]); err == nil {
			port = p
		}
	}
	return net.JoinHostPort(host, port)
}

// gatherer gathers every family of the exporter but the process and Go
// ones, as metrics.
func (a *App) gatherer() prometheus.Gatherer { return prometheus.Gatherers{a.reg, a.data} }

// ready reports whether every source has data or has finished its first
// refresh, and the exposition shows it.
func (a *App) ready() bool {
	snap := a.store.Snapshot()
	return snap.Ready() && a.expo.Current(snap)
}

// failedSources names the sources whose latest refresh failed.
func (a *App) failedSources() string {
	var failed []string
	for name, d := range a.store.Snapshot().Sources {
		if !d.LastOK && !d.LastAttempt.IsZero() {
			failed = append(failed, name)
		}
	}
	slices.Sort(failed)
	return strings.Join(failed, ", ")
}

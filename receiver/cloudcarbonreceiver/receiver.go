package cloudcarbonreceiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap/exp/zapslog"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// cloudcarbonReceiver runs the exporter's engine: one refresher per
// configured source writes into a store, which a storage extension may
// persist; a collection reads the store's snapshot and never calls a
// provider.
type cloudcarbonReceiver struct {
	cfg    *Config
	set    receiver.Settings
	logger *slog.Logger

	// mu guards the fields below, which Start sets and Shutdown clears.
	mu      sync.Mutex
	started time.Time
	engine  *engine
}

// engine is what a started receiver runs.
type engine struct {
	// reg holds the self-metrics and the freshness families; the data
	// families come from expo with the months they describe.
	reg     *prometheus.Registry
	store   *store.Store
	expo    *exposition.Exposition
	manager *refresh.Manager
	storage *storageBlob
	demo    *demo.Env
	cancel  context.CancelFunc
	// running is set once the refreshers run on the persisted data: only
	// then may stopping save the store, which until then is empty and
	// would replace what the storage holds.
	running bool
}

func newReceiver(cfg *Config, set receiver.Settings) *cloudcarbonReceiver {
	return &cloudcarbonReceiver{
		cfg: cfg, set: set,
		logger: slog.New(zapslog.NewHandler(set.Logger.Core())),
	}
}

// start builds the sources and starts their refreshers. The Collector's
// start context ends with Start; the refreshers run on a context of their
// own, which shutdown cancels.
func (r *cloudcarbonReceiver) start(ctx context.Context, host component.Host) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &engine{reg: prometheus.NewRegistry(), cancel: cancel}
	defer func() {
		if err != nil {
			e.stop(ctx, r.logger)
		}
	}()

	cfg, err := r.cfg.parse(os.Getenv)
	if err != nil {
		return err
	}
	var connections map[string]provider.Connection
	if r.cfg.Demo {
		if e.demo, err = demo.Start(runCtx, time.Now(), r.logger.With("component", "demo"), r.cfg.Sections.plugins); err != nil {
			return err
		}
		cfg.Sources, connections = e.demo.Config.Sources, e.demo.Connections
		r.logger.Warn("DEMO MODE: serving a built-in dataset from in-process fake provider endpoints; no cloud is queried")
	}

	var state *store.StateFile
	if id := r.cfg.StorageID; id != nil {
		if e.storage, err = newStorageBlob(ctx, host, *id, r.set.ID); err != nil {
			return err
		}
		state = store.NewStateBlob(fmt.Sprintf("storage extension %s", id), e.storage)
	} else {
		r.logger.Info("No storage extension configured: fetched months are kept in memory only and fetched again after a restart; set storage to a storage extension such as file_storage to keep them")
	}
	e.expo = exposition.New(r.cfg.HistoryMonths, func() *store.Snapshot { return e.store.Snapshot() }, r.logger)
	e.store = store.New(store.Options{State: state, Registerer: e.reg, Logger: r.logger})
	e.reg.MustRegister(e.expo.Freshness())
	metrics := refresh.NewMetrics(e.reg, r.cfg.Sections.plugins)
	e.manager = refresh.NewManager(e.store, metrics, r.logger)

	sources, err := r.build(runCtx, cfg, metrics, connections)
	if err != nil {
		return err
	}
	if len(sources) == 0 {
		r.logger.Warn("No cloud is configured: the receiver emits nothing; add a cloud's section (" +
			strings.Join(pluginNames(r.cfg.Sections.plugins), ", ") + ") or set demo")
	}
	rc := cfg.Refresh
	started := time.Now()
	e.manager.Apply(runCtx, sources, refresh.Options{
		Interval: rc.Interval, IdleInterval: rc.IdleInterval, Jitter: rc.Jitter, Timeout: rc.Timeout,
		BackoffMin: rc.BackoffMin, BackoffMax: rc.BackoffMax, MaxConcurrency: rc.MaxConcurrency,
		History: r.cfg.HistoryMonths,
	}, e.store.LoadState())
	e.running = true
	r.engine, r.started = e, started
	return nil
}

// build turns the configured sources into clients through their plug-ins,
// as the exporter does.
func (r *cloudcarbonReceiver) build(ctx context.Context, cfg *config.Config, metrics *refresh.Metrics, connections map[string]provider.Connection) (out []refresh.Source, err error) {
	defer func() {
		if err != nil {
			refresh.CloseSources(out)
			out = nil
		}
	}()
	for _, src := range cfg.Sources {
		name := src.Name()
		p, err := src.Config.New(ctx, provider.Env{
			Name:       name,
			Logger:     r.logger.With("provider", src.Provider, "source_name", name),
			Observe:    metrics.RequestObserver(src.Provider, name),
			Counters:   metrics.Counters(src.Provider, name),
			Connection: connections[name],
		})
		if err != nil {
			return out, fmt.Errorf("%s source %q: %w", src.Provider, name, err)
		}
		identity := src.Config.Identity()
		if r.cfg.Demo {
			// A fake listens on another loopback port at every start,
			// which the identity names; its dataset is the same, so
			// that persisted demo data stays usable across restarts.
			identity = "demo|" + src.Provider + "|" + name
		}
		// Provisional months and allocation as the entry asks, as the
		// exporter reads them.
		rs := refresh.NewSource(name, src.Config, p)
		rs.Identity = identity
		out = append(out, rs)
	}
	return out, nil
}

// shutdown stops the refreshers, persists the data and releases the
// storage client and the demo. It is safe without a start.
func (r *cloudcarbonReceiver) shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.engine == nil {
		return nil
	}
	err := r.engine.stop(ctx, r.logger)
	r.engine = nil
	return err
}

func (e *engine) stop(ctx context.Context, logger *slog.Logger) error {
	var errs []error
	if e.manager != nil {
		e.manager.Stop()
	}
	if e.running {
		if err := e.store.Flush(); err != nil {
			logger.Error("Cannot persist the fetched months", "err", err)
			errs = append(errs, err)
		}
	}
	if e.storage != nil {
		errs = append(errs, e.storage.close(ctx))
	}
	if e.demo != nil {
		e.demo.Close()
	}
	e.cancel()
	return errors.Join(errs...)
}

// scrape emits what the store holds; it calls no provider.
func (r *cloudcarbonReceiver) scrape(context.Context) (pmetric.Metrics, error) {
	r.mu.Lock()
	e, started := r.engine, r.started
	r.mu.Unlock()
	if e == nil {
		return pmetric.NewMetrics(), nil
	}
	b := newBuilder(r.cfg, r.set.BuildInfo.Version, started, time.Now())
	e.expo.EachData(b.addSeries)
	families, err := e.reg.Gather()
	b.addFamilies(families)
	return b.emit(), err
}

// Package exposition is the Prometheus view of the store. The data
// families are rendered to exposition text, and to gzip, when a source's
// data changes, never per scrape; a scrape copies those bytes and adds the
// few per-source freshness families and the self-metrics, built per
// scrape. Nothing here calls a provider.
package exposition

import (
	"bytes"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Exposition renders the store's data and serves it.
type Exposition struct {
	history   int
	schedules map[string]provider.Schedule
	snapshot  func() *store.Snapshot
	logger    *slog.Logger
	defs      *defs

	// mu serialises renders. It is not the store's lock: a render never
	// holds up a refresher or a scrape.
	mu       sync.Mutex
	rendered atomic.Pointer[rendered]
	// readers decompress the members for plain scrapes, into texts.
	readers, texts sync.Pool
}

// rendered is the output of one render.
type rendered struct {
	blocks []block
	// generations are those of the sources rendered, by name: the next
	// render is due when they differ from the snapshot's.
	generations map[string]uint64
}

// New returns an exposition of history months of data that reads the
// current data from snapshot. Nothing is rendered before the first
// Refresh, so that snapshot may depend on a store created afterwards with
// Refresh as its OnData.
func New(history int, snapshot func() *store.Snapshot, logger *slog.Logger, opts ...Option) *Exposition {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Exposition{history: history, snapshot: snapshot, logger: logger, defs: newDefs(),
		readers: sync.Pool{New: func() any { return new(gzip.Reader) }},
		texts:   sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Option configures an Exposition.
type Option func(*Exposition)

// WithSchedules gives the providers' publication schedules, by provider
// label: the backtest of provisional months estimates each month from
// the intensity one publication lag earlier.
func WithSchedules(s map[string]provider.Schedule) Option {
	return func(e *Exposition) { e.schedules = s }
}

// Refresh re-renders the data families from the current snapshot when a
// source's data or the set of sources changed since the last render. It
// runs on the goroutine that changed the data, outside the store's lock.
func (e *Exposition) Refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	sources := e.sources()
	generations := generationsOf(sources)
	if last := e.rendered.Load(); last != nil && maps.Equal(last.generations, generations) {
		return
	}
	a := e.defs.aggregate(sources, e.history, e.lagOf)
	// The freshness families are built per scrape, where a repair could
	// only be logged at every scrape; they are counted here instead.
	if repaired := a.repaired + e.defs.freshness(sources).repaired; repaired > 0 {
		e.logger.Warn("Repaired label values that were not valid UTF-8 (U+FFFD replaces the bad bytes)", "count", repaired)
	}
	blocks, err := renderBlocks(a)
	if err != nil {
		// Keep serving the previous render rather than a partial one.
		e.logger.Error("Cannot render the exposition", "err", err)
		return
	}
	e.rendered.Store(&rendered{blocks: blocks, generations: generations})
}

// Current reports whether the data families show the data of snap: a
// source whose refresh just finished is in the snapshot an instant before
// its series are rendered, and readiness must not announce data that a
// scrape would not find.
func (e *Exposition) Current(snap *store.Snapshot) bool {
	last := e.rendered.Load()
	return last != nil && maps.Equal(last.generations, generationsOf(snap.Sources))
}

func generationsOf(sources map[string]*store.SourceData) map[string]uint64 {
	g := make(map[string]uint64, len(sources))
	for name, d := range sources {
		g[name] = d.Generation
	}
	return g
}

// sources tolerates a missing snapshot function or snapshot, so that an
// exposition built only to describe the metrics can also be gathered.
func (e *Exposition) sources() map[string]*store.SourceData {
	if e.snapshot == nil {
		return nil
	}
	if snap := e.snapshot(); snap != nil {
		return snap.Sources
	}
	return nil
}

// Freshness returns the collector of the per-source freshness families,
// built from the current snapshot at each collection. It belongs in the
// registry that /metrics gathers per scrape.
func (e *Exposition) Freshness() prometheus.Collector {
	return &collector{defs: e.defs.freshnessDefs(), collect: func(ch chan<- prometheus.Metric) { e.defs.freshness(e.sources()).collect(ch) }}
}

// Data returns a collector of the data families as const metrics, built
// from the current snapshot at each collection: for the OTLP push, which
// reads a registry once a minute, and for tests. /metrics serves the
// pre-rendered text instead.
func (e *Exposition) Data() prometheus.Collector {
	return &collector{defs: e.defs.dataDefs(), collect: func(ch chan<- prometheus.Metric) { e.defs.aggregate(e.sources(), e.history, e.lagOf).collect(ch) }}
}

type collector struct {
	defs    []*def
	collect func(ch chan<- prometheus.Metric)
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.defs {
		ch <- d.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

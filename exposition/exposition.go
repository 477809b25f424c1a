// Package exposition is the Prometheus view of the store. The data
// families are rendered to const metrics when a source's data changes,
// never per scrape, so that a scrape of a large exposition costs a copy;
// only the few per-source freshness families are built at each scrape.
// Collect never calls a provider.
package exposition

import (
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Exposition is a prometheus.Collector over the store's snapshots.
type Exposition struct {
	history  int
	snapshot func() *store.Snapshot
	logger   *slog.Logger

	// mu serialises renders. It is not the store's lock: a render never
	// holds up a refresher.
	mu       sync.Mutex
	rendered atomic.Pointer[rendered]
}

// New returns an exposition of history months of data that reads the
// current data from snapshot. Nothing is rendered before the first
// Refresh, so that snapshot may depend on a store created afterwards with
// Refresh as its OnData.
func New(history int, snapshot func() *store.Snapshot, logger *slog.Logger) *Exposition {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Exposition{history: history, snapshot: snapshot, logger: logger}
}

// Refresh re-renders the data families from the current snapshot when a
// source's data or the set of sources changed since the last render.
func (e *Exposition) Refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	sources := e.sources()
	generations := generationsOf(sources)
	if last := e.rendered.Load(); last != nil && maps.Equal(last.generations, generations) {
		return
	}
	b := render(sources, e.history)
	invalid := b.invalid
	// The freshness families are built per scrape, where a dropped series
	// could only be logged at every scrape; they are counted here instead.
	var fresh builder
	freshness(&fresh, sources)
	invalid += fresh.invalid
	if invalid > 0 {
		e.logger.Warn("Dropped series whose label values are not valid UTF-8", "count", invalid)
	}
	e.rendered.Store(&rendered{metrics: b.metrics, generations: generations})
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

// Describe implements prometheus.Collector.
func (e *Exposition) Describe(ch chan<- *prometheus.Desc) { describe(ch) }

// Collect implements prometheus.Collector.
func (e *Exposition) Collect(ch chan<- prometheus.Metric) {
	if r := e.rendered.Load(); r != nil {
		for _, m := range r.metrics {
			ch <- m
		}
	}
	var b builder
	freshness(&b, e.sources())
	for _, m := range b.metrics {
		ch <- m
	}
}

package collector

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the current snapshot. Collect never calls a provider.
type Collector struct {
	store *Store
}

// NewCollector returns a prometheus.Collector over store.
func NewCollector(store *Store) *Collector { return &Collector{store: store} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { describe(ch) }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.store.Snapshot().metrics.metrics {
		ch <- m
	}
}

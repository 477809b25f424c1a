package app

import (
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// shardMetrics say which shard a replica is and how many sources it holds,
// so that rules can tell a missing shard from a smaller estate and an
// empty shard shows without reading logs. Each carries the shard and
// shards labels, so that copies of one replica's series (two jobs, an
// HA pair, an OTLP copy) deduplicate by them.
type shardMetrics struct {
	shard               Shard
	sources, configured prometheus.Gauge
	// configuredN is the configured gauge's value, for GET /report.
	configuredN atomic.Int64
}

func newShardMetrics(reg prometheus.Registerer, s Shard) *shardMetrics {
	labels := prometheus.Labels{"shard": strconv.Itoa(s.Index), "shards": strconv.Itoa(max(s.Total, 1))}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
		reg.MustRegister(g)
		return g
	}
	gauge("cloudcarbon_shard_info",
		"The shard of the sources this replica refreshes and exposes (--shard.index of --shard.total); always 1.").Set(1)
	gauge("cloudcarbon_shards_configured",
		"Number of shards the sources are split over (--shard.total): how many replicas should report.").Set(float64(max(s.Total, 1)))
	return &shardMetrics{
		shard: s,
		sources: gauge("cloudcarbon_shard_sources",
			"Sources this replica refreshes and exposes; 0 on a shard that the assignment left empty."),
		configured: gauge("cloudcarbon_sources_configured",
			"Sources in the configuration, whichever shard holds them."),
	}
}

// applied records a configuration that was applied with owned of its
// configured sources on this shard.
func (m *shardMetrics) applied(logger *slog.Logger, owned, configured int) {
	m.sources.Set(float64(owned))
	m.configured.Set(float64(configured))
	m.configuredN.Store(int64(configured))
	if !m.shard.Sharded() {
		logger.Info("Configuration applied", "sources", owned)
		return
	}
	args := []any{"sources", owned, "sources_configured", configured, "shard", m.shard.Index, "shards", m.shard.Total}
	if owned == 0 {
		// Ready with nothing to serve looks healthy from outside; with
		// fewer sources than shards some shards are idle by design, so
		// the configuration wants fewer shards.
		logger.Warn("This shard holds no source: there are fewer sources than shards; lower --shard.total (the chart's shards) to the number of sources or less", args...)
		return
	}
	logger.Info("Configuration applied", args...)
}

// configuredSources is the number of sources of the configuration last
// applied, whichever shard holds them.
func (m *shardMetrics) configuredSources() int { return int(m.configuredN.Load()) }

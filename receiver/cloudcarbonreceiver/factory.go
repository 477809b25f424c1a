package cloudcarbonreceiver

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/cloudcarbon/cloudcarbon_exporter/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/receiver/cloudcarbonreceiver/internal/metadata"
)

// NewFactory returns the factory of the cloudcarbon receiver, with every
// cloud the exporter supports.
func NewFactory() receiver.Factory {
	return newFactory(clouds.All())
}

// newFactory returns a factory for the clouds of plugins; tests choose
// them.
func newFactory(plugins []provider.Plugin) receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig(plugins) },
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig(plugins []provider.Plugin) *Config {
	return &Config{
		ControllerConfig:     scraperhelper.NewDefaultControllerConfig(),
		MetricsBuilderConfig: metadata.NewDefaultMetricsBuilderConfig(),
		HistoryMonths:        DefaultHistoryMonths,
		Sections:             Sections{plugins: plugins},
	}
}

var errConfigType = errors.New("the configuration is not the cloudcarbon receiver's")

// createMetrics runs the engine as a scraper: the engine refreshes on its
// own schedule, and every collection_interval the controller emits what it
// holds.
func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, errConfigType
	}
	r := newReceiver(c, set)
	s, err := scraper.NewMetrics(r.scrape, scraper.WithStart(r.start), scraper.WithShutdown(r.shutdown))
	if err != nil {
		return nil, err
	}
	return scraperhelper.NewMetricsController(&c.ControllerConfig, set, next, scraperhelper.AddMetricsScraper(metadata.Type, s))
}

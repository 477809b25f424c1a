// Package otlp pushes the exporter's metrics to an OpenTelemetry receiver
// over OTLP/gRPC. It reads the same registry as /metrics, so the pushed
// and the scraped series are the same, and it runs on its own goroutine,
// so a slow or failing receiver never delays refreshes or scrapes.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	prombridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Options configure the OTLP push. Anything left empty comes from the
// standard OTEL_EXPORTER_OTLP_* environment variables.
type Options struct {
	// Interval between pushes; zero: OTEL_METRIC_EXPORT_INTERVAL or 60s.
	Interval time.Duration
	// Endpoint is host:port or a URL; empty: OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	// Insecure disables TLS.
	Insecure bool
	// Headers are sent with every push (e.g. authentication).
	Headers map[string]string
	// Timeout bounds one push, retries included; zero:
	// OTEL_EXPORTER_OTLP_TIMEOUT or 10s.
	Timeout time.Duration
	// ServiceVersion and ServiceInstanceID describe this exporter in the
	// OTLP resource.
	ServiceVersion    string
	ServiceInstanceID string
}

// Pusher pushes what a gatherer collects, through the Prometheus bridge,
// so that there is one set of metric definitions.
type Pusher struct {
	provider *sdkmetric.MeterProvider
}

// otlpScope is empty on purpose: OTLP-to-Prometheus pipelines turn a scope
// name into an otel_scope_name label, which would give pushed series a
// label that scraped ones lack. The resource already says who sent them.
var otlpScope = instrumentation.Scope{}

// Start starts pushing what g gathers every o.Interval, until Shutdown.
func Start(ctx context.Context, g prometheus.Gatherer, o Options, m *Metrics, logger *slog.Logger) (*Pusher, error) {
	var opts []otlpmetricgrpc.Option
	if o.Endpoint != "" {
		if strings.Contains(o.Endpoint, "://") {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(o.Endpoint))
		} else {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(o.Endpoint))
		}
	}
	if o.Insecure {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	}
	if len(o.Headers) > 0 {
		opts = append(opts, otlpmetricgrpc.WithHeaders(o.Headers))
	}
	if o.Timeout > 0 {
		opts = append(opts, otlpmetricgrpc.WithTimeout(o.Timeout))
	}
	// Retries stop before the next push is due, so pushes never queue.
	retryFor := 30 * time.Second
	if o.Interval > 0 {
		retryFor = max(o.Interval/2, time.Second)
	}
	opts = append(opts, otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{
		Enabled: true, InitialInterval: time.Second, MaxInterval: 30 * time.Second, MaxElapsedTime: retryFor,
	}))
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithAttributes(
			semconv.ServiceName("cloudcarbon_exporter"),
			semconv.ServiceVersion(o.ServiceVersion),
			semconv.ServiceInstanceID(o.ServiceInstanceID),
		),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("otlp resource: %w", err)
	}
	readerOpts := []sdkmetric.PeriodicReaderOption{
		sdkmetric.WithProducer(&unitProducer{inner: prombridge.NewMetricProducer(prombridge.WithGatherer(g))}),
	}
	if o.Interval > 0 {
		readerOpts = append(readerOpts, sdkmetric.WithInterval(o.Interval))
	}
	reader := sdkmetric.NewPeriodicReader(&countingExporter{Exporter: exp, metrics: m, logger: logger}, readerOpts...)
	m.register()
	return &Pusher{provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))}, nil
}

// Shutdown pushes once more and stops.
func (p *Pusher) Shutdown(ctx context.Context) error {
	return p.provider.Shutdown(ctx)
}

// unitProducer gives every metric its UCUM unit, derived from the unit
// suffix its Prometheus name carries, so that an OTLP-to-Prometheus
// pipeline arrives at the names /metrics shows.
type unitProducer struct {
	inner sdkmetric.Producer
}

func (u *unitProducer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	sms, err := u.inner.Produce(ctx)
	for i := range sms {
		sms[i].Scope = otlpScope
		for j := range sms[i].Metrics {
			sms[i].Metrics[j].Unit = Unit(sms[i].Metrics[j].Name)
		}
	}
	return sms, err
}

// unitSuffixes map Prometheus base-unit suffixes to UCUM. UCUM has no
// currencies; "{USD}" is the annotation form OpenTelemetry uses for units
// outside it, and OTLP-to-Prometheus translators skip annotations, where a
// bare "USD" would come out as a second suffix (cloudcarbon_..._usd_USD).
// Cubic metres are UCUM "m3", but the translators know no name for it and
// would append "_m3" to a name that already ends in _cubic_meters, so they
// travel as the annotation "{m3}" too.
var unitSuffixes = []struct{ suffix, unit string }{
	{"_grams", "g"},
	{"_joules", "J"},
	{"_usd", "{USD}"},
	{"_cubic_meters", "{m3}"},
	{"_seconds", "s"},
	{"_bytes", "By"},
	{"_bytes_processed_total", "By"},
}

// Unit returns the UCUM unit of the metric named name, from its unit
// suffix; "" for a metric without one. Whatever else carries these metrics
// over OpenTelemetry (the Collector receiver) takes its units from here.
func Unit(name string) string {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s.suffix) {
			return s.unit
		}
	}
	return ""
}

// countingExporter counts and logs pushes. A failure is logged once per
// run of failures so that a receiver that is down does not flood the log.
type countingExporter struct {
	sdkmetric.Exporter
	metrics *Metrics
	logger  *slog.Logger

	mu      sync.Mutex
	failing bool
}

func (e *countingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := e.Exporter.Export(ctx, rm)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.metrics.pushes.WithLabelValues("failure").Inc()
		if !e.failing {
			e.logger.Warn("OTLP push failed; retrying at the next interval", "err", err)
		}
		e.failing = true
		return err
	}
	e.metrics.pushes.WithLabelValues("success").Inc()
	e.metrics.lastSuccess.SetToCurrentTime()
	if e.failing {
		e.logger.Info("OTLP push recovered")
	}
	e.failing = false
	return nil
}

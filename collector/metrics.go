package collector

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Metrics are the exporter's own counters. They live in the caller's
// registry, apart from the snapshot, because they count events rather than
// describe data.
type Metrics struct {
	refreshErrors *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec
	stateErrors   *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	restatements  *prometheus.CounterVec
	bytes         *prometheus.CounterVec

	otlpPushes      *prometheus.CounterVec
	otlpLastSuccess prometheus.Gauge

	reg prometheus.Registerer
}

// NewMetrics creates the self-metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		refreshErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refresh_errors_total",
			Help: "Failed refreshes by source and reason.",
		}, []string{"provider", "source", "reason"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "api_requests_total",
			Help: "HTTP requests to provider APIs, every attempt counted, by endpoint and status code (0: no response).",
		}, []string{"provider", "source", "endpoint", "code"}),
		stateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "state_file_errors_total",
			Help: "State file operations that failed: a load of a corrupt or foreign file (ignored), or a write.",
		}, []string{"operation"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refreshes_total",
			Help: "Refreshes run, successful or not.",
		}, []string{"provider", "source"}),
		restatements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "restatements_total",
			Help: "Months the provider published again under another model or data revision (GCP: carbon_model_version).",
		}, []string{"provider", "source"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bigquery_bytes_processed_total",
			Help: "Bytes processed by BigQuery queries, as reported by the jobs; BigQuery bills by this figure.",
		}, []string{"provider", "source"}),
		otlpPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "otlp_pushes_total",
			Help: "OTLP pushes by result (success, failure); retries within a push are not counted.",
		}, []string{"result"}),
		otlpLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "otlp_last_push_success_timestamp_seconds",
			Help: "When an OTLP push last succeeded, as a Unix timestamp.",
		}),
	}
	reg.MustRegister(m.refreshErrors, m.apiRequests, m.stateErrors, m.refreshes, m.restatements, m.bytes, m.otlpPushes)
	m.stateErrors.WithLabelValues("load")
	m.stateErrors.WithLabelValues("write")
	return m
}

// initSource makes a source's series visible at zero before anything
// happens, so that rate() and absence alerts work from the first scrape.
func (m *Metrics) initSource(prov, source string) {
	m.refreshes.WithLabelValues(prov, source)
	m.restatements.WithLabelValues(prov, source)
	for _, r := range provider.AllReasons() {
		m.refreshErrors.WithLabelValues(prov, source, string(r))
	}
}

func (m *Metrics) forgetSource(prov, source string) {
	labels := prometheus.Labels{"provider": prov, "source": source}
	m.refreshErrors.DeletePartialMatch(labels)
	m.apiRequests.DeletePartialMatch(labels)
	m.refreshes.DeletePartialMatch(labels)
	m.restatements.DeletePartialMatch(labels)
	m.bytes.DeletePartialMatch(labels)
}

// RequestObserver returns the observer a provider client reports its HTTP
// attempts to.
func (m *Metrics) RequestObserver(prov, source string) provider.RequestObserver {
	return func(endpoint string, code int) {
		m.apiRequests.WithLabelValues(prov, source, endpoint, strconv.Itoa(code)).Inc()
	}
}

// BytesObserver returns the observer a BigQuery client reports bytes
// processed to. Creating it shows the counter at zero.
func (m *Metrics) BytesObserver(prov, source string) provider.BytesObserver {
	c := m.bytes.WithLabelValues(prov, source)
	return func(n int64) { c.Add(float64(n)) }
}

// registerOTLP shows the OTLP series once a pusher exists, so that an
// exporter without OTLP does not expose a push timestamp that never moves.
func (m *Metrics) registerOTLP() {
	m.otlpPushes.WithLabelValues("success")
	m.otlpPushes.WithLabelValues("failure")
	if err := m.reg.Register(m.otlpLastSuccess); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err) // only a programming error gets here
		}
	}
}

package refresh

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

const namespace = "cloudcarbon"

// Metrics count what the refreshers do and what they cost at the
// providers. They live in the caller's registry, apart from the snapshot,
// because they count events rather than describe data.
type Metrics struct {
	refreshErrors *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	restatements  *prometheus.CounterVec
	bytes         *prometheus.CounterVec
}

// NewMetrics creates the refresh metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refreshErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refresh_errors_total",
			Help: "Failed refreshes by source and reason.",
		}, []string{"provider", "source", "reason"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "api_requests_total",
			Help: "HTTP requests to provider APIs, every attempt counted, by endpoint and status code (0: no response).",
		}, []string{"provider", "source", "endpoint", "code"}),
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
	}
	reg.MustRegister(m.refreshErrors, m.apiRequests, m.refreshes, m.restatements, m.bytes)
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
// processed to. Every source gets one, so the series appears only once a
// client reports, which a client that uses it does at construction (0).
func (m *Metrics) BytesObserver(prov, source string) provider.BytesObserver {
	return func(n int64) { m.bytes.WithLabelValues(prov, source).Add(float64(n)) }
}

package collector

import (
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
}

// NewMetrics creates the self-metrics and registers them with reg.
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
		stateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "state_file_errors_total",
			Help: "State file operations that failed: a load of a corrupt or foreign file (ignored), or a write.",
		}, []string{"operation"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refreshes_total",
			Help: "Refreshes run, successful or not.",
		}, []string{"provider", "source"}),
	}
	reg.MustRegister(m.refreshErrors, m.apiRequests, m.stateErrors, m.refreshes)
	m.stateErrors.WithLabelValues("load")
	m.stateErrors.WithLabelValues("write")
	return m
}

// initSource makes a source's series visible at zero before anything
// happens, so that rate() and absence alerts work from the first scrape.
func (m *Metrics) initSource(prov, source string) {
	m.refreshes.WithLabelValues(prov, source)
	for _, r := range provider.Reasons {
		m.refreshErrors.WithLabelValues(prov, source, string(r))
	}
}

func (m *Metrics) forgetSource(prov, source string) {
	labels := prometheus.Labels{"provider": prov, "source": source}
	m.refreshErrors.DeletePartialMatch(labels)
	m.apiRequests.DeletePartialMatch(labels)
	m.refreshes.DeletePartialMatch(labels)
}

// RequestObserver returns the observer a provider client reports its HTTP
// attempts to.
func (m *Metrics) RequestObserver(prov, source string) provider.RequestObserver {
	return func(endpoint string, code int) {
		m.apiRequests.WithLabelValues(prov, source, endpoint, strconv.Itoa(code)).Inc()
	}
}

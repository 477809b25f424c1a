package refresh

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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

// forgetSources deletes every series of the sources in gone, keyed by
// provider and source name. DeletePartialMatch scans a whole vector for
// each source, which made a reload that removes thousands of sources take
// minutes; one scan per vector finds the series of all of them.
func (m *Metrics) forgetSources(gone map[[2]string]bool) {
	if len(gone) == 0 {
		return
	}
	for _, v := range []*prometheus.CounterVec{m.refreshErrors, m.apiRequests, m.refreshes, m.restatements, m.bytes} {
		for _, labels := range seriesOf(v, gone) {
			v.Delete(labels)
		}
	}
}

// seriesOf returns the label sets of v's series whose provider and source
// are in gone.
func seriesOf(v *prometheus.CounterVec, gone map[[2]string]bool) []prometheus.Labels {
	ch := make(chan prometheus.Metric, 1024)
	go func() {
		v.Collect(ch)
		close(ch)
	}()
	var out []prometheus.Labels
	var pb dto.Metric
	for metric := range ch {
		pb.Reset()
		if metric.Write(&pb) != nil {
			continue
		}
		var key [2]string
		for _, l := range pb.GetLabel() {
			switch l.GetName() {
			case "provider":
				key[0] = l.GetValue()
			case "source":
				key[1] = l.GetValue()
			}
		}
		if !gone[key] {
			continue
		}
		labels := make(prometheus.Labels, len(pb.GetLabel()))
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out = append(out, labels)
	}
	return out
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

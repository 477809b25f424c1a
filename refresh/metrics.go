package refresh

import (
	"slices"
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
	rejected      *prometheus.CounterVec
	// plugins are the counters the plug-ins declare, by provider and
	// then by name.
	plugins map[string]map[string]*prometheus.CounterVec
}

// NewMetrics creates the refresh metrics and the counters plugins
// declare, and registers them with reg. Counters of the same name declared
// by several plug-ins share one family.
func NewMetrics(reg prometheus.Registerer, plugins []provider.Plugin) *Metrics {
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
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_rejected_total",
			Help: "Records a provider answered that were left out of the data, whole or in part, by reason: wrong_provider (the record names another provider), not_finite or negative (a value that is not a measurement; cost may be negative).",
		}, []string{"provider", "source", "reason"}),
		plugins: map[string]map[string]*prometheus.CounterVec{},
	}
	reg.MustRegister(m.refreshErrors, m.apiRequests, m.refreshes, m.restatements, m.rejected)
	shared := map[string]*prometheus.CounterVec{}
	for _, pl := range plugins {
		for _, c := range pl.Counters {
			vec := shared[c.Name]
			if vec == nil {
				vec = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: c.Name, Help: c.Help}, []string{"provider", "source"})
				reg.MustRegister(vec)
				shared[c.Name] = vec
			}
			if m.plugins[pl.Name] == nil {
				m.plugins[pl.Name] = map[string]*prometheus.CounterVec{}
			}
			m.plugins[pl.Name][c.Name] = vec
		}
	}
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
	for _, vec := range m.plugins[prov] {
		vec.WithLabelValues(prov, source)
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
	vecs := []*prometheus.CounterVec{m.refreshErrors, m.apiRequests, m.refreshes, m.restatements, m.rejected}
	for _, byName := range m.plugins {
		for _, v := range byName {
			if !slices.Contains(vecs, v) {
				vecs = append(vecs, v)
			}
		}
	}
	for _, v := range vecs {
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

// Counters returns the adders of the counters prov's plug-in declares,
// for a source's provider.Env.
func (m *Metrics) Counters(prov, source string) map[string]func(float64) {
	out := make(map[string]func(float64), len(m.plugins[prov]))
	for name, vec := range m.plugins[prov] {
		c := vec.WithLabelValues(prov, source)
		out[name] = c.Add
	}
	return out
}

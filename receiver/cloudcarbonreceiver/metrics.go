package cloudcarbonreceiver

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/otlp"
	"github.com/cloudcarbon/cloudcarbon_exporter/receiver/cloudcarbonreceiver/internal/metadata"
)

// schemaURL is the semantic conventions' version metadata.yaml names, for
// the cloud resource attributes.
const schemaURL = "https://opentelemetry.io/schemas/1.38.0"

// builder turns the engine's series into pmetric.Metrics. Names, help,
// attributes and values are those the exporter serves on /metrics and
// pushes over OTLP, units those of its OTLP push. Series are grouped into
// one resource per cloud, account and region their labels name, with the
// OpenTelemetry cloud attributes; the labels stay attributes of the
// points, so that the data reads the same with or without the resource.
//
// It applies the generated metrics and resource_attributes settings the
// way mdatagen's builders do: disabled metrics are left out, points of a
// metric with fewer attributes enabled are aggregated by its strategy,
// resources whose attributes fail metrics_include or match metrics_exclude
// are left out.
type builder struct {
	resources  metadata.ResourceAttributesConfig
	settings   map[string]metricSettings
	include    map[string]filter.Filter
	exclude    map[string]filter.Filter
	version    string
	start, now pcommon.Timestamp
	out        pmetric.Metrics
	byResource map[resourceKey]*scope
}

type resourceKey struct{ provider, account, region string }

// scope is one resource's metrics, by name; dropped resources keep none.
type scope struct {
	sm      pmetric.ScopeMetrics
	metrics map[string]*metric
	dropped bool
}

// metric is one metric of a resource, with what aggregation needs.
type metric struct {
	m        pmetric.Metric
	dps      pmetric.NumberDataPointSlice
	settings metricSettings
	// index and counts are kept only for a metric whose points are
	// aggregated: the point of each remaining attribute set, and how many
	// points it holds.
	index  map[string]int
	counts []float64
}

// metricSettings are one metric's settings from the generated metrics
// configuration.
type metricSettings struct {
	enabled bool
	// attributes are those enabled; nil: every one the series carries.
	attributes map[string]bool
	strategy   string
}

func newBuilder(cfg *Config, version string, start, now time.Time) *builder {
	b := &builder{
		resources:  cfg.ResourceAttributes,
		settings:   settingsOf(cfg.Metrics),
		include:    map[string]filter.Filter{},
		exclude:    map[string]filter.Filter{},
		version:    version,
		start:      pcommon.NewTimestampFromTime(start),
		now:        pcommon.NewTimestampFromTime(now),
		out:        pmetric.NewMetrics(),
		byResource: map[resourceKey]*scope{},
	}
	for name, rac := range map[string]metadata.ResourceAttributeConfig{
		"cloud.provider":   cfg.ResourceAttributes.CloudProvider,
		"cloud.account.id": cfg.ResourceAttributes.CloudAccountID,
		"cloud.region":     cfg.ResourceAttributes.CloudRegion,
	} {
		if rac.MetricsInclude != nil {
			b.include[name] = filter.CreateFilter(rac.MetricsInclude)
		}
		if rac.MetricsExclude != nil {
			b.exclude[name] = filter.CreateFilter(rac.MetricsExclude)
		}
	}
	return b
}

// addSeries adds one series of the data families as a gauge point whose
// start is the first instant of the month (or year) it describes and
// whose timestamp is the collection's time.
func (b *builder) addSeries(s exposition.Series) {
	var start pcommon.Timestamp
	if !s.Start.IsZero() {
		start = pcommon.NewTimestampFromTime(s.Start)
	}
	b.add(s.Name, s.Help, dto.MetricType_GAUGE, s.Labels, s.Values, start, s.Value)
}

// addFamilies adds the gathered self-metrics and freshness families:
// counters as cumulative monotonic sums since the receiver started,
// gauges as gauges.
func (b *builder) addFamilies(families []*dto.MetricFamily) {
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			names := make([]string, len(m.GetLabel()))
			values := make([]string, len(m.GetLabel()))
			for i, l := range m.GetLabel() {
				names[i], values[i] = l.GetName(), l.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				b.add(mf.GetName(), mf.GetHelp(), dto.MetricType_COUNTER, names, values, b.start, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				b.add(mf.GetName(), mf.GetHelp(), dto.MetricType_GAUGE, names, values, 0, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				b.add(mf.GetName(), mf.GetHelp(), dto.MetricType_GAUGE, names, values, 0, m.GetUntyped().GetValue())
			}
		}
	}
}

// add adds a point to the metric name of the resource its labels name.
func (b *builder) add(name, help string, typ dto.MetricType, labels, values []string, start pcommon.Timestamp, v float64) {
	set, declared := b.settings[name]
	if declared && !set.enabled {
		return
	}
	sc := b.scope(labels, values)
	if sc.dropped {
		return
	}
	m := sc.metric(name, help, typ, set)
	kept := labels
	if m.index != nil {
		kept = nil
		var key strings.Builder
		key.WriteString(strconv.FormatUint(uint64(start), 10))
		for i, l := range labels {
			if m.settings.attributes[l] {
				kept = append(kept, l)
				key.WriteString("\xff" + l + "=" + values[i])
			}
		}
		if i, ok := m.index[key.String()]; ok {
			m.aggregate(i, v)
			return
		}
		m.index[key.String()] = m.dps.Len()
		m.counts = append(m.counts, 1)
	}
	dp := m.dps.AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(b.now)
	dp.SetDoubleValue(v)
	attrs := dp.Attributes()
	attrs.EnsureCapacity(len(kept))
	for i, l := range labels {
		if m.index == nil || m.settings.attributes[l] {
			attrs.PutStr(l, values[i])
		}
	}
}

func (m *metric) aggregate(i int, v float64) {
	dp := m.dps.At(i)
	switch m.settings.strategy {
	case metadata.AggregationStrategyMin:
		dp.SetDoubleValue(min(dp.DoubleValue(), v))
	case metadata.AggregationStrategyMax:
		dp.SetDoubleValue(max(dp.DoubleValue(), v))
	default: // sum, and avg until emit divides
		dp.SetDoubleValue(dp.DoubleValue() + v)
		m.counts[i]++
	}
}

// metric returns the scope's metric name, creating it as needed.
func (sc *scope) metric(name, help string, typ dto.MetricType, set metricSettings) *metric {
	if m, ok := sc.metrics[name]; ok {
		return m
	}
	pm := sc.sm.Metrics().AppendEmpty()
	pm.SetName(name)
	pm.SetDescription(help)
	pm.SetUnit(otlp.Unit(name))
	m := &metric{m: pm, settings: set}
	if typ == dto.MetricType_COUNTER {
		sum := pm.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		m.dps = sum.DataPoints()
	} else {
		m.dps = pm.SetEmptyGauge().DataPoints()
	}
	if set.attributes != nil {
		m.index = map[string]int{}
	}
	sc.metrics[name] = m
	return m
}

// scope returns the scope of the resource the labels name.
func (b *builder) scope(labels, values []string) *scope {
	var prov, account, location string
	for i, l := range labels {
		switch l {
		case "provider":
			prov = values[i]
		case "account":
			account = values[i]
		case "location":
			location = values[i]
		}
	}
	var k resourceKey
	if prov != "" {
		conv := conventionOf(prov)
		if b.resources.CloudProvider.Enabled {
			k.provider = conv.provider
		}
		if id, ok := accountID(account); ok && b.resources.CloudAccountID.Enabled {
			k.account = id
		}
		if conv.region != nil && conv.region(location) && b.resources.CloudRegion.Enabled {
			k.region = location
		}
	}
	if sc, ok := b.byResource[k]; ok {
		return sc
	}
	sc := &scope{metrics: map[string]*metric{}}
	b.byResource[k] = sc
	attrs := map[string]string{"cloud.provider": k.provider, "cloud.account.id": k.account, "cloud.region": k.region}
	for name, f := range b.include {
		if v := attrs[name]; v != "" && !f.Matches(v) {
			sc.dropped = true
		}
	}
	for name, f := range b.exclude {
		if v := attrs[name]; v != "" && f.Matches(v) {
			sc.dropped = true
		}
	}
	if sc.dropped {
		return sc
	}
	rm := b.out.ResourceMetrics().AppendEmpty()
	rm.SetSchemaUrl(schemaURL)
	rb := metadata.NewResourceBuilder(b.resources)
	if k.provider != "" {
		rb.SetCloudProvider(k.provider)
	}
	if k.account != "" {
		rb.SetCloudAccountID(k.account)
	}
	if k.region != "" {
		rb.SetCloudRegion(k.region)
	}
	rb.Emit().MoveTo(rm.Resource())
	sc.sm = rm.ScopeMetrics().AppendEmpty()
	sc.sm.Scope().SetName(metadata.ScopeName)
	sc.sm.Scope().SetVersion(b.version)
	return sc
}

// emit finishes the averages and returns the metrics.
func (b *builder) emit() pmetric.Metrics {
	for _, sc := range b.byResource {
		for _, m := range sc.metrics {
			if m.index == nil || m.settings.strategy != metadata.AggregationStrategyAvg {
				continue
			}
			for i, n := range m.counts {
				m.dps.At(i).SetDoubleValue(m.dps.At(i).DoubleValue() / n)
			}
		}
	}
	return b.out
}

// settingsOf reads the generated metrics configuration, a struct of one
// field per metric tagged with its name, into settings by name: the
// series come from the exporter's families, whose names the code does not
// spell. A metric the configuration does not name, such as a counter a
// cloud's plug-in declares, is emitted with all its attributes.
func settingsOf(mc metadata.MetricsConfig) map[string]metricSettings {
	out := map[string]metricSettings{}
	defaults := reflect.ValueOf(metadata.DefaultMetricsConfig())
	v := reflect.ValueOf(mc)
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("mapstructure"), ",")
		f, all := v.Field(i), defaults.Field(i).FieldByName("EnabledAttributes")
		set := metricSettings{enabled: f.FieldByName("Enabled").Bool(), strategy: f.FieldByName("AggregationStrategy").String()}
		enabled := f.FieldByName("EnabledAttributes")
		attrs := make(map[string]bool, enabled.Len())
		for j := range enabled.Len() {
			attrs[enabled.Index(j).String()] = true
		}
		if len(attrs) < all.Len() {
			set.attributes = attrs
		}
		out[name] = set
	}
	return out
}

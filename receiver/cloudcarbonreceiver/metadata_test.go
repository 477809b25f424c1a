package cloudcarbonreceiver

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/otlp"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

var update = flag.Bool("update", false, "rewrite the attributes and metrics of metadata.yaml from the engine's families (then run go generate)")

// attributeDocs describe the labels of the exporter's families, which
// are the points' attributes.
var attributeDocs = map[string]string{
	"account":      "The account of the row: GCP project id, Azure subscription id, IBM account id, AWS usage account id, OCI compartment, Scaleway project id; none for rows the provider attributes to no account.",
	"basis":        "What a provisional month was estimated from: location, service, account or source, the finest grouping with enough published history.",
	"key":          "The tag or label key (allocate_by) the emissions are allocated by.",
	"value":        "The value of the allocation key the emissions are allocated to: (untagged) for cost without the tag, (other) for the values past allocate_top.",
	"method":       "The emissions accounting method the error is of: location (location-based) or market (market-based).",
	"months_ahead": "How many months after the provider's latest published month the provisional month is; 1 is the first.",
	"code":         "The HTTP status code of the answer; 0 when there was none.",
	"endpoint":     "The provider API endpoint a request went to.",
	"location":     "The provider's region or location, normalised per provider; global or unknown where the provider names none.",
	"month":        "The month the value describes, as YYYY-MM.",
	"months_ago":   "How many months before the provider's latest published month the value's month is; 0 is the latest.",
	"name":         "The account's name.",
	"operation":    "The state operation that failed: load or write.",
	"parent":       "The id of the account's parent (account group, enterprise, billing account, tenant).",
	"parent_name":  "The name of the account's parent.",
	"parent_type":  "What the account's parent is: account group, enterprise, billing account or tenant.",
	"provider":     "The cloud, as the exporter names it: gcp, azure, ibm, aws, oci or scaleway.",
	"reason":       "Why: a failed refresh's reason, a denied account's reason in the provider's words, or a rejected record's reason.",
	"scope":        "The greenhouse gas scope: 1, 2, 3, or unspecified where the provider reports no split.",
	"service":      "The provider's service name (Azure: the resource type).",
	"source":       "The configured source: the name of the cloud section's entry.",
	"year":         "The calendar year the value describes.",
}

// metricDoc is what metadata.yaml says of one metric.
type metricDoc struct {
	name, help, unit string
	counter          bool
	attributes       []string
	// period says what a point's start timestamp is, for the families
	// that describe a month or a year.
	period string
}

// TestMetadataDescribesEveryMetric: metadata.yaml, from which mdatagen
// writes documentation.md and the metrics settings, lists exactly the
// families the engine describes (the clouds' own counters aside), with
// the names, help, units, types and attributes the receiver emits. The
// families are the exporter's; -update writes them into metadata.yaml.
func TestMetadataDescribesEveryMetric(t *testing.T) {
	docs := describedFamilies(t)
	md := scrape(t, startDemo(t, demoConfig()))
	for name, o := range observed(md) {
		d, ok := docs[name]
		switch {
		case !ok:
			t.Errorf("the receiver emits %s, which the engine does not describe", name)
			continue
		case o.unit != d.unit || o.counter != d.counter || o.help != d.help:
			t.Errorf("%s is emitted as %+v, described as %+v", name, o, d)
		case !slices.Equal(slices.Sorted(slices.Values(o.attributes)), slices.Sorted(slices.Values(d.attributes))):
			t.Errorf("%s is emitted with attributes %v, described with %v", name, o.attributes, d.attributes)
		}
		d.period = o.period
		docs[name] = d
	}
	for _, pl := range clouds.All() {
		for _, c := range pl.Counters {
			delete(docs, "cloudcarbon_"+c.Name)
		}
	}
	raw, err := os.ReadFile("metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := bytes.Cut(raw, []byte("\nattributes:\n"))
	if !ok {
		t.Fatal("metadata.yaml has no attributes section")
	}
	want := append(append(head, '\n'), renderMetadata(t, docs)...)
	if *update {
		if err := os.WriteFile("metadata.yaml", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(raw, want) {
		t.Error("metadata.yaml does not list the engine's families: run go test -run TestMetadataDescribesEveryMetric -update, then go generate")
	}
}

// recorder is a Registerer that keeps what is registered.
type recorder struct{ collectors []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

var descPattern = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), unit: "[^"]*", constLabels: \{\}, variableLabels: \{([^}]*)\}\}$`)

// describedFamilies are the families of the collectors the engine
// registers, described by their Desc: families with no series yet (a
// record never rejected) count too.
func describedFamilies(t *testing.T) map[string]metricDoc {
	t.Helper()
	rec := &recorder{}
	store.New(store.Options{Registerer: rec})
	expo := exposition.New(1, nil, nil)
	rec.MustRegister(expo.Freshness(), expo.Data())
	refresh.NewMetrics(rec, clouds.All())
	docs := map[string]metricDoc{}
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		for d := range ch {
			m := descPattern.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read %s", d)
			}
			name, err1 := strconv.Unquote(m[1])
			help, err2 := strconv.Unquote(m[2])
			if err1 != nil || err2 != nil {
				t.Fatalf("cannot read %s", d)
			}
			var labels []string
			if m[3] != "" {
				labels = strings.Split(m[3], ",")
			}
			docs[name] = metricDoc{name: name, help: help, unit: otlp.Unit(name), counter: strings.HasSuffix(name, "_total"), attributes: labels}
		}
	}
	return docs
}

// observed describes the metrics md holds.
func observed(md pmetric.Metrics) map[string]metricDoc {
	out := map[string]metricDoc{}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				d := metricDoc{name: m.Name(), help: m.Description(), unit: m.Unit(), counter: m.Type() == pmetric.MetricTypeSum}
				var dps pmetric.NumberDataPointSlice
				if d.counter {
					dps = m.Sum().DataPoints()
				} else {
					dps = m.Gauge().DataPoints()
				}
				if dps.Len() == 0 {
					continue
				}
				dp := dps.At(0)
				for key := range dp.Attributes().All() {
					d.attributes = append(d.attributes, key)
				}
				if !d.counter && dp.StartTimestamp() != 0 {
					switch {
					case slices.Contains(d.attributes, "month"):
						d.period = "the month its month attribute names"
					case slices.Contains(d.attributes, "year"):
						d.period = "the year its year attribute names"
					default:
						d.period = "the latest month the provider has published (data_month_timestamp_seconds)"
					}
				}
				out[d.name] = d
			}
		}
	}
	return out
}

type attributeYAML struct {
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
}

type valueYAML struct {
	ValueType              string `yaml:"value_type"`
	Monotonic              *bool  `yaml:"monotonic,omitempty"`
	AggregationTemporality string `yaml:"aggregation_temporality,omitempty"`
}

type metricYAML struct {
	Description           string     `yaml:"description"`
	ExtendedDocumentation string     `yaml:"extended_documentation,omitempty"`
	Enabled               bool       `yaml:"enabled"`
	Unit                  string     `yaml:"unit"`
	Gauge                 *valueYAML `yaml:"gauge,omitempty"`
	Sum                   *valueYAML `yaml:"sum,omitempty"`
	Attributes            []string   `yaml:"attributes,flow"`
	Stability             string     `yaml:"stability"`
}

// renderMetadata writes the attributes and metrics sections of
// metadata.yaml.
func renderMetadata(t *testing.T, docs map[string]metricDoc) []byte {
	t.Helper()
	attrs := map[string]attributeYAML{}
	metrics := map[string]metricYAML{}
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		d := docs[name]
		m := metricYAML{Description: d.help, Enabled: true, Unit: d.unit, Attributes: d.attributes, Stability: "development"}
		if d.period != "" {
			m.ExtendedDocumentation = "Each point's start timestamp is the first instant (UTC) of " + d.period + "; its timestamp is the collection's time."
		}
		if d.counter {
			monotonic := true
			m.Sum = &valueYAML{ValueType: "double", Monotonic: &monotonic, AggregationTemporality: "cumulative"}
		} else {
			m.Gauge = &valueYAML{ValueType: "double"}
		}
		metrics[name] = m
		for _, a := range d.attributes {
			desc, ok := attributeDocs[a]
			if !ok {
				t.Errorf("the attribute %s of %s has no description in attributeDocs", a, name)
			}
			attrs[a] = attributeYAML{Description: desc, Type: "string"}
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Attributes map[string]attributeYAML `yaml:"attributes"`
		Metrics    map[string]metricYAML    `yaml:"metrics"`
	}{attrs, metrics}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

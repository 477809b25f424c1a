package cloudcarbonreceiver

import (
	"math"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/receiver/cloudcarbonreceiver/internal/metadata"
)

func attr(attrs pcommon.Map, key string) (string, bool) {
	v, ok := attrs.Get(key)
	return v.Str(), ok
}

// TestPointsCarryTheirPeriodAndCloud: a data point's start is the first
// instant of the month (or year) it describes and its timestamp the
// collection's; counters start with the receiver; every point sits in the
// resource of its cloud, account and region, named as the OpenTelemetry
// cloud conventions name them.
func TestPointsCarryTheirPeriodAndCloud(t *testing.T) {
	r := startDemo(t, demoConfig())
	before := pcommon.NewTimestampFromTime(time.Now())
	md := scrape(t, r)
	after := pcommon.NewTimestampFromTime(time.Now())

	latest := map[string]pcommon.Timestamp{} // by provider
	eachPoint(md, func(_ pmetric.ResourceMetrics, m pmetric.Metric, dp pmetric.NumberDataPoint) {
		if m.Name() == "cloudcarbon_data_month_timestamp_seconds" {
			prov, _ := attr(dp.Attributes(), "provider")
			latest[prov] = max(latest[prov], pcommon.Timestamp(dp.DoubleValue()*1e9))
		}
	})
	current := map[string]bool{}
	for _, qi := range provider.Quantities() {
		current["cloudcarbon_"+qi.Family] = true
	}

	seen := map[string]bool{}
	eachPoint(md, func(rm pmetric.ResourceMetrics, m pmetric.Metric, dp pmetric.NumberDataPoint) {
		attrs := dp.Attributes()
		if dp.Timestamp() < before || dp.Timestamp() > after {
			t.Errorf("%s: timestamp %v is not the collection's", m.Name(), dp.Timestamp())
		}
		var want pcommon.Timestamp
		month, hasMonth := attr(attrs, "month")
		year, hasYear := attr(attrs, "year")
		prov, hasProvider := attr(attrs, "provider")
		switch {
		case m.Type() == pmetric.MetricTypeSum:
			want = pcommon.NewTimestampFromTime(r.started)
		case hasMonth:
			mo, err := provider.ParseMonth(month)
			if err != nil {
				t.Fatal(err)
			}
			want = pcommon.NewTimestampFromTime(mo.Start())
		case hasYear:
			y, _ := strconv.Atoi(year)
			want = pcommon.NewTimestampFromTime(time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC))
		case current[m.Name()]:
			want = latest[prov]
		}
		if dp.StartTimestamp() != want {
			t.Errorf("%s%v starts %v, want %v", m.Name(), attrs.AsRaw(), dp.StartTimestamp().AsTime(), want.AsTime())
		}

		res := rm.Resource().Attributes()
		cloud, hasCloud := attr(res, "cloud.provider")
		if hasProvider != hasCloud || hasProvider && cloud != conventionOf(prov).provider {
			t.Errorf("%s%v in the resource %v", m.Name(), attrs.AsRaw(), res.AsRaw())
		}
		if account, ok := attr(attrs, "account"); ok {
			id, hasID := attr(res, "cloud.account.id")
			if wantID, want := accountID(account); hasID != want || hasID && id != wantID {
				t.Errorf("%s%v in the resource %v", m.Name(), attrs.AsRaw(), res.AsRaw())
			}
		}
		region, hasRegion := attr(res, "cloud.region")
		location, _ := attr(attrs, "location")
		isRegion := hasProvider && conventionOf(prov).region != nil && conventionOf(prov).region(location)
		if hasRegion != isRegion || hasRegion && region != location {
			t.Errorf("%s%v in the resource %v", m.Name(), attrs.AsRaw(), res.AsRaw())
		}
		if hasRegion {
			seen[cloud] = true
		}
	})
	// Every cloud but IBM Cloud, whose locations are cities, has regions.
	for _, cloud := range []string{"gcp", "azure", "aws", "oracle_cloud", "scaleway"} {
		if !seen[cloud] {
			t.Errorf("no %s resource has a cloud.region", cloud)
		}
	}
	if got := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Name(); got != metadata.ScopeName {
		t.Errorf("scope %q", got)
	}
}

func TestConventions(t *testing.T) {
	tests := []struct {
		provider, location, cloud string
		region                    bool
	}{
		{"gcp", "us-central1", "gcp", true},
		{"gcp", "us", "gcp", false},
		{"gcp", "nam4", "gcp", false},
		{"gcp", "global", "gcp", false},
		{"azure", "westeurope", "azure", true},
		{"azure", "unknown", "azure", false},
		{"ibm", "dallas", "ibm_cloud", false},
		{"aws", "eu-west-1", "aws", true},
		{"aws", "global", "aws", false},
		{"oci", "us-ashburn-1", "oracle_cloud", true},
		{"scaleway", "fr-par", "scaleway", true},
		{"newcloud", "somewhere-1", "newcloud", false},
	}
	for _, tt := range tests {
		c := conventionOf(tt.provider)
		if region := c.region != nil && c.region(tt.location); c.provider != tt.cloud || region != tt.region {
			t.Errorf("%s %s: cloud.provider %s, region %v; want %s, %v", tt.provider, tt.location, c.provider, region, tt.cloud, tt.region)
		}
	}
	if _, ok := accountID(provider.AccountPlaceholder); ok {
		t.Error("the account placeholder is a cloud.account.id")
	}
}

// TestMetricsSettings: the generated metrics and resource_attributes
// settings work as in mdatagen's builders.
func TestMetricsSettings(t *testing.T) {
	base := perProvider(scrape(t, startDemo(t, demoConfig())), "cloudcarbon_emissions_grams")
	tests := []struct {
		name  string
		set   func(cfg *Config)
		check func(t *testing.T, md pmetric.Metrics)
	}{
		{"a disabled metric is left out", func(cfg *Config) {
			cfg.Metrics.CloudcarbonHistoryEmissionsGrams.Enabled = false
		}, func(t *testing.T, md pmetric.Metrics) {
			eachPoint(md, func(_ pmetric.ResourceMetrics, m pmetric.Metric, _ pmetric.NumberDataPoint) {
				if m.Name() == "cloudcarbon_history_emissions_grams" {
					t.Fatal("a disabled metric is emitted")
				}
			})
		}},
		{"points of fewer attributes are aggregated", func(cfg *Config) {
			cfg.Metrics.CloudcarbonEmissionsGrams.EnabledAttributes = []metadata.CloudcarbonEmissionsGramsMetricAttributeKey{metadata.CloudcarbonEmissionsGramsMetricAttributeKeyProvider}
			cfg.Metrics.CloudcarbonEmissionsGrams.AggregationStrategy = metadata.AggregationStrategySum
			cfg.ResourceAttributes.CloudAccountID.Enabled = false
			cfg.ResourceAttributes.CloudRegion.Enabled = false
		}, func(t *testing.T, md pmetric.Metrics) {
			points := 0
			eachPoint(md, func(_ pmetric.ResourceMetrics, m pmetric.Metric, dp pmetric.NumberDataPoint) {
				if m.Name() != "cloudcarbon_emissions_grams" {
					return
				}
				points++
				prov, _ := attr(dp.Attributes(), "provider")
				if dp.Attributes().Len() != 1 || math.Abs(dp.DoubleValue()-base[prov]) > 1e-9*base[prov] {
					t.Errorf("%v = %v, want the sum %v", dp.Attributes().AsRaw(), dp.DoubleValue(), base[prov])
				}
			})
			if points != len(base) {
				t.Errorf("%d points, want one per cloud (%d)", points, len(base))
			}
		}},
		{"resources outside metrics_include are left out", func(cfg *Config) {
			cfg.ResourceAttributes.CloudProvider.MetricsInclude = []filter.Config{{Strict: "gcp"}}
		}, func(t *testing.T, md pmetric.Metrics) {
			n := 0
			for i := range md.ResourceMetrics().Len() {
				if cloud, ok := attr(md.ResourceMetrics().At(i).Resource().Attributes(), "cloud.provider"); ok {
					n++
					if cloud != "gcp" {
						t.Errorf("a %s resource is emitted", cloud)
					}
				}
			}
			if n == 0 {
				t.Error("no gcp resource")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := demoConfig()
			tt.set(cfg)
			tt.check(t, scrape(t, startDemo(t, cfg)))
		})
	}
}

// perProvider sums a metric's points by cloud.
func perProvider(md pmetric.Metrics, name string) map[string]float64 {
	out := map[string]float64{}
	eachPoint(md, func(_ pmetric.ResourceMetrics, m pmetric.Metric, dp pmetric.NumberDataPoint) {
		if m.Name() == name {
			prov, _ := attr(dp.Attributes(), "provider")
			out[prov] += dp.DoubleValue()
		}
	})
	return out
}

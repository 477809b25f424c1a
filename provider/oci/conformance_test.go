package oci_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest"
)

func TestConformance(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	providertest.Run(t, providertest.Cloud{Plugin: oci.Plugin(), Start: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		method := map[provider.Quantity]string{0: ocifake.PowerBased, provider.EmissionsMarketBased: ocifake.SpendBased}[s.Only]
		if method == "" {
			return nil // OCI reports emissions only; spend-based calculations give market-based figures only
		}
		last := ocifake.LatestPublished(now)
		ds := ocifake.Dataset{TenancyID: tenancy, TenancyName: "acme"}
		for i := range 6 {
			ds.Rows = append(ds.Rows, ocifake.Row{CompartmentPath: "acme/prod", Service: "COMPUTE", Region: []string{"us-ashburn-1", "eu-frankfurt-1"}[i%2],
				Month: last - provider.Month(i/2), PowerLocation: 0.5 + float64(i), PowerMarket: 0.2, SpendMarket: 0.3 * float64(i+1)})
		}
		if s.Negative {
			ds.Rows[0].PowerLocation = -5
		}
		fake := ocifake.NewServer(ds, fakeKey())
		fake.SetPageLimit(s.PageSize)
		configFile, _ := writeConfig(t, t.TempDir())
		expected := map[provider.Month]providertest.Totals{}
		for _, m := range ds.Months() {
			expected[m] = ds.Reported(m, method)
		}
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: canary, Expected: expected,
			Entry: func(url string) map[string]any {
				return map[string]any{"config_file": configFile, "private_key_passphrase": canary, "endpoint": url,
					"emission_calculation_method": strings.ToLower(method)}
			},
			Data:        func(r *http.Request) bool { return r.URL.Path == ocifake.CarbonPath },
			Error:       ocifake.StatusFault,
			Permission:  "to read usage-report in tenancy",
			EmptyPage:   ocifake.EmptyPage,
			ResponseCap: oci.MaxResponseBytes,
		}
	}, CostFeed: costFeed, TagFeed: tagFeed})
}

// costFeed serves the cost of a tenancy's emissions (costDataset) at the
// real clock (the source's).
func costFeed(t testing.TB, s providertest.Scenario) *providertest.Fake {
	if s.Only != 0 || s.Negative {
		return nil // the cost feed has one quantity, and cost may be negative
	}
	ds := costDataset(time.Now().UTC())
	expected := map[provider.Month]providertest.Totals{}
	// Every month the fake has cost for: the eight published months and
	// those after them, to date (none yet in the first instants of a
	// month).
	for _, m := range ds.CostMonths() {
		expected[m] = providertest.Totals{provider.Cost: ds.CostTotal(m)}
	}
	f := costFake(t, s, ds, map[string]any{"provisional": true})
	f.Expected = expected
	return f
}

// tagFeed serves costDataset's cost tagged by teams, a free-form tag
// (tagKey), and by cost centres, a defined one.
func tagFeed(t testing.TB, s providertest.Scenario) *providertest.Fake {
	if s.Only != 0 || s.Negative {
		return nil // the tag feed has one quantity, and cost may be negative
	}
	ds := costDataset(time.Now().UTC()).WithTags(teams, costCenters)
	f := costFake(t, s, ds, map[string]any{"allocate_by": []string{tagKey}})
	f.TagKey = tagKey
	f.TagExpected = ds.TagTotals(ocifake.FreeformNamespace, tagKey)
	return f
}

// tagKey is the free-form tag of the tag feed's dataset.
const tagKey = "team"

var (
	teams       = ocifake.TagPlan{Namespace: ocifake.FreeformNamespace, Key: tagKey, Values: []string{"web", "data", "platform", "ml"}, Untagged: 0.2}
	costCenters = ocifake.TagPlan{Namespace: "Operations", Key: "CostCenter", Values: []string{"cc-100", "cc-200"}, Untagged: 0.4}
)

// costDataset is a tenancy's emissions and their cost: three compartments,
// two of them below the entry's compartment depth, in two regions, eight
// published months and the months after them, to date.
func costDataset(now time.Time) ocifake.Dataset {
	last := ocifake.LatestPublished(now)
	ds := ocifake.Dataset{TenancyID: tenancy, TenancyName: "acme"}
	for i := range 8 {
		for j, k := range []struct{ path, service, region string }{
			{"acme/prod/web/a", "COMPUTE", "us-ashburn-1"}, {"acme/prod/web/b", "COMPUTE", "us-ashburn-1"},
			{"acme/prod", "BLOCK_STORAGE", "eu-frankfurt-1"}, {"acme", "API_GATEWAY", "us-ashburn-1"},
		} {
			r := ocifake.Row{CompartmentPath: k.path, Service: k.service, Region: k.region, Month: last - provider.Month(i),
				PowerLocation: 0.3 + 0.01*float64(i+j), PowerMarket: 0.1, SpendMarket: 0.2}
			if k.service == "API_GATEWAY" {
				r.PowerLocation, r.PowerMarket, r.SpendOnly = 0, 0, true
			}
			ds.Rows = append(ds.Rows, r)
		}
	}
	return ds.WithCosts(now)
}

// costFake serves ds to an entry at compartment depth 2 with extra
// keys, its cost requests selected.
func costFake(t testing.TB, s providertest.Scenario, ds ocifake.Dataset, extra map[string]any) *providertest.Fake {
	fake := ocifake.NewServer(ds, fakeKey())
	fake.SetPageLimit(s.PageSize)
	configFile, _ := writeConfig(t, t.TempDir())
	return &providertest.Fake{
		Handler: fake, Now: ds.Today, Secret: canary,
		Entry: func(url string) map[string]any {
			entry := map[string]any{"config_file": configFile, "private_key_passphrase": canary, "endpoint": url, "compartment_depth": 2}
			maps.Copy(entry, extra)
			return entry
		},
		Data:        ocifake.IsCost,
		Error:       ocifake.StatusFault,
		Permission:  "to read usage-report in tenancy",
		EmptyPage:   ocifake.CostEmptyPage,
		ResponseCap: oci.MaxResponseBytes,
	}
}

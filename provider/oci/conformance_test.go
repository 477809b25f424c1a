package oci_test

import (
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
	}, CostFeed: costFeed})
}

// costFeed serves the cost of a tenancy's emissions: three compartments,
// two of them below the entry's compartment depth, in two regions, eight
// published months and the months after them, to date, at the real clock
// (the source's).
func costFeed(t testing.TB, s providertest.Scenario) *providertest.Fake {
	if s.Only != 0 || s.Negative {
		return nil // the cost feed has one quantity, and cost may be negative
	}
	now := time.Now().UTC()
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
	ds = ds.WithCosts(now)
	fake := ocifake.NewServer(ds, fakeKey())
	fake.SetPageLimit(s.PageSize)
	configFile, _ := writeConfig(t, t.TempDir())
	expected := map[provider.Month]providertest.Totals{}
	// Every month the fake has cost for: the eight published months and
	// those after them, to date (none yet in the first instants of a
	// month).
	for _, m := range ds.CostMonths() {
		expected[m] = providertest.Totals{provider.Cost: ds.CostTotal(m)}
	}
	return &providertest.Fake{
		Handler: fake, Now: now, Secret: canary, Expected: expected,
		Entry: func(url string) map[string]any {
			return map[string]any{"config_file": configFile, "private_key_passphrase": canary, "endpoint": url,
				"compartment_depth": 2, "provisional": true}
		},
		Data:        ocifake.IsCost,
		Error:       ocifake.StatusFault,
		Permission:  "to read usage-report in tenancy",
		EmptyPage:   ocifake.CostEmptyPage,
		ResponseCap: oci.MaxResponseBytes,
	}
}

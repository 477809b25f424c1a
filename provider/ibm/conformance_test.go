package ibm_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest"
)

func TestConformance(t *testing.T) {
	quietSDKLog(t) // its debug dumps read every answer whole, the oversized one too
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	providertest.Run(t, providertest.Cloud{Plugin: ibm.Plugin(), Start: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		if s.Only != 0 {
			return nil // IBM reports emissions and energy together, and nothing else
		}
		last := ibmfake.LatestPublished(now)
		var ds ibmfake.Dataset
		for i, m := range []provider.Month{last - 2, last - 1, last, last} {
			ds.Rows = append(ds.Rows, ibmfake.Row{AccountID: acct, Service: "Code Engine", Location: []string{"Dallas", "London"}[i%2],
				ResourceGroupID: "rg", Month: m, CarbonEmission: 1000 + float64(i), EnergyConsumption: 2000 + float64(i)})
		}
		if s.Negative {
			ds.Rows[3].CarbonEmission = -5
		}
		fake := ibmfake.NewServer(ds, canary)
		fake.SetPageMax(s.PageSize)
		expected := map[provider.Month]providertest.Totals{}
		for _, m := range []provider.Month{last - 2, last - 1, last} {
			grams, joules := ds.TotalBase(m)
			expected[m] = providertest.Totals{provider.Emissions: grams, provider.Energy: joules}
		}
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: canary, Expected: expected,
			Entry: func(url string) map[string]any {
				return map[string]any{"api_key": canary, "api_url": url, "iam_url": url}
			},
			Data:        func(r *http.Request) bool { return r.URL.Path == ibmfake.CarbonPath },
			Error:       ibmfake.ErrorFault,
			Permission:  "Viewer role on Billing",
			EmptyPage:   ibmfake.EmptyPage,
			ResponseCap: ibm.MaxResponseBytes,
		}
	}, CostFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		// The demo enterprise, whose usage reports run past its
		// carbon to now: the Enterprise Usage Reports API, paged, its
		// account groups walked.
		ds := ibmfake.Demo(now)
		fake := ibmfake.NewServer(ds, canary)
		fake.SetPageMax(s.PageSize)
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: canary, Expected: costExpected(t, ds, now, ds.EnterpriseID),
			Entry: func(url string) map[string]any {
				return map[string]any{"api_key": canary, "api_url": url, "iam_url": url, "usage_reports_url": url,
					"enterprise_usage_reports_url": url, "enterprise_id": ds.EnterpriseID, "provisional": true}
			},
			Data:        func(r *http.Request) bool { return r.URL.Path == ibmfake.EnterpriseUsagePath },
			Error:       ibmfake.UsageErrorFault,
			Permission:  ibm.EnterpriseUsagePermission,
			EmptyPage:   ibmfake.EnterpriseUsageEmptyPage,
			ResponseCap: ibm.MaxResponseBytes,
		}
	}})
}

// TestConformanceAccountCostFeed runs the suite's cost-feed scenarios on
// the other API the cost feed reads: a standard account's summaries
// (Usage Reports API), which do not page. The suite's other scenarios ran
// in TestConformance: this run serves them no dataset.
func TestConformanceAccountCostFeed(t *testing.T) {
	quietSDKLog(t)
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	providertest.Run(t, providertest.Cloud{Plugin: ibm.Plugin(),
		Start: func(testing.TB, providertest.Scenario) *providertest.Fake { return nil },
		CostFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
			ds := ibmfake.Account(now, costMonths)
			return &providertest.Fake{
				Handler: ibmfake.NewServer(ds, canary), Now: now, Secret: canary, Expected: costExpected(t, ds, now, ""),
				Entry: func(url string) map[string]any {
					return map[string]any{"api_key": canary, "api_url": url, "iam_url": url, "usage_reports_url": url,
						"enterprise_usage_reports_url": url, "provisional": true}
				},
				Data:        ibmfake.AccountSummaryRequest,
				Error:       ibmfake.UsageErrorFault,
				Permission:  ibm.AccountSummaryPermission,
				ResponseCap: ibm.MaxResponseBytes,
			}
		}})
}

// costMonths is how many published months the cost feed is asked for,
// besides the unpublished ones: those an estimate and its backtest read.
const costMonths = 8

// costExpected is the fake's own cost of each month the feed is asked
// for, of the accounts under entity (all when ""): the costMonths latest
// published months and every month after them to now's, to date.
func costExpected(t testing.TB, ds ibmfake.Dataset, now time.Time, entity string) map[provider.Month]providertest.Totals {
	last := ibmfake.LatestPublished(now)
	out := map[provider.Month]providertest.Totals{}
	for m := last - costMonths + 1; m <= provider.MonthOf(now); m++ {
		if usd, ok := ds.CostTotal(m, entity); ok {
			out[m] = providertest.Totals{provider.Cost: usd}
		}
	}
	if len(out) != costMonths+int(provider.MonthOf(now)-last) {
		t.Fatalf("the fake has cost of %d months, want %d published and those after them", len(out), costMonths)
	}
	return out
}

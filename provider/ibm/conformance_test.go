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
	}})
}

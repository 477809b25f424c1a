package scaleway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

func TestConformance(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	providertest.Run(t, providertest.Cloud{Plugin: scaleway.Plugin(), Start: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		if s.Only != 0 {
			return nil // every impact Scaleway reports holds CO2e and water together
		}
		// The API does not page: an answer is a month, so the paging
		// scenario's pages are the dataset's three months.
		last := scalewayfake.LatestPublished(now)
		ds := scalewayfake.Sample(org, last-2, last-1, last)
		if s.Negative {
			ds.NegateEmissions(last)
		}
		expected := map[provider.Month]providertest.Totals{}
		for _, m := range ds.Months() {
			tot := ds.Total(m)
			expected[m] = providertest.Totals{provider.Emissions: tot.Grams, provider.Water: tot.CubicMeters}
		}
		fake := scalewayfake.NewServer(ds, canary)
		fake.SetNow(func() time.Time { return now })
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: canary, Expected: expected,
			Entry: func(url string) map[string]any {
				return map[string]any{"organization_id": org, "access_key": accessKey, "secret_key": canary, "api_url": url}
			},
			Data:        func(r *http.Request) bool { return r.URL.Path == scalewayfake.ImpactDataPath },
			Error:       scalewayfake.ErrorFault,
			Permission:  "EnvironmentalImpactReadOnly",
			ResponseCap: scaleway.MaxResponseBytes,
		}
	}, CostFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		return costFeedFake(now, s)
	}})
}

// costFeedFake serves eight published months and the month in progress,
// with the consumption billed for them: what the cost feed is asked for,
// the months an estimate is based on and the months it estimates. A
// month has seven lines, so that pages of two make every month four
// pages.
func costFeedFake(now time.Time, s providertest.Scenario) *providertest.Fake {
	last := scalewayfake.LatestPublished(now)
	months := provider.Range(last-7, provider.MonthOf(now))
	ds := scalewayfake.Sample(org, months...)
	ds.Available = provider.Range(last-7, last)
	fake := scalewayfake.NewServer(ds, canary)
	fake.SetNow(func() time.Time { return now })
	fake.SetPageMax(s.PageSize)
	expected := map[provider.Month]providertest.Totals{}
	for _, m := range months {
		expected[m] = providertest.Totals{provider.Cost: ds.CostTotal(m)}
	}
	return &providertest.Fake{
		Handler: fake, Now: now, Secret: canary, Expected: expected,
		Entry: func(url string) map[string]any {
			return map[string]any{"organization_id": org, "access_key": accessKey, "secret_key": canary, "api_url": url, "provisional": true}
		},
		Data:        func(r *http.Request) bool { return r.URL.Path == scalewayfake.ConsumptionsPath },
		Error:       scalewayfake.BillingErrorFault,
		Permission:  "BillingReadOnly",
		EmptyPage:   scalewayfake.ConsumptionsEmptyPage,
		ResponseCap: scaleway.MaxResponseBytes,
	}
}

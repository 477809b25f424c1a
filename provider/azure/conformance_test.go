package azure_test

import (
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest"
)

func TestConformance(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	providertest.Run(t, providertest.Cloud{Plugin: azure.Plugin(), Start: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		if s.Only != 0 {
			return nil // Azure reports location-based emissions only
		}
		last := azurefake.LatestMonth(now)
		ds := azurefake.Dataset{TenantID: tenant, Subscriptions: []azurefake.Subscription{{ID: sub1}, {ID: sub2}}}
		for m := last - 2; m <= last; m++ {
			for i, name := range []string{"vm1", "vm2", "st1", "aks1", "db1"} {
				sub, typ, loc := []string{sub1, sub2}[i/3], []string{vms, vms, stor, aks, sqld}[i], []string{"east us", "uk south"}[i/3]
				ds.Items = append(ds.Items, item(sub, "rg", name, typ, loc, m, 0.5+float64(i), 2+float64(m-last), 3))
			}
		}
		if s.Negative {
			ds.Items[len(ds.Items)-4].Scope2 = -1 // vm2, summed with vm1 into one record
		}
		fake := azurefake.NewServer(ds, clientID, canary)
		fake.SetPageMax(s.PageSize)
		expected := map[provider.Month]providertest.Totals{}
		for m := last - 2; m <= last; m++ {
			expected[m] = providertest.Totals{provider.Emissions: ds.MonthGrams(m)}
		}
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: canary, Derived: []string{fake.TokenMarker()}, Expected: expected,
			Entry: func(url string) map[string]any {
				return map[string]any{"credential": azure.CredentialClientSecret, "tenant_id": tenant, "client_id": clientID,
					"client_secret": canary, "authority_host": url, "resource_manager_endpoint": url, "subscriptions": ds.SubscriptionIDs()}
			},
			Data:        azurefake.IsReport,
			Error:       azurefake.ErrorFault,
			Permission:  "Carbon Optimization Reader",
			EmptyPage:   azurefake.EmptyPage,
			ResponseCap: azure.MaxResponseBytes,
		}
	}, CostFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		return costFeedFake(now, s)
	}})
}

// costFeedFake serves eight published months of two subscriptions and
// their cost, with the month in progress to date: what the cost feed is
// asked for, the months an estimate is based on and the months it
// estimates. Each subscription has three resource type and region pairs
// a month, so that pages of two rows make every query two pages.
func costFeedFake(now time.Time, s providertest.Scenario) *providertest.Fake {
	last := azurefake.LatestMonth(now)
	ds := azurefake.Dataset{TenantID: tenant, Subscriptions: []azurefake.Subscription{{ID: sub1}, {ID: sub2, Currency: "EUR"}}}
	for m := last - 7; m <= last; m++ {
		for i, r := range []struct{ sub, name, typ, loc string }{
			{sub1, "vm1", vms, "east us"}, {sub1, "st1", stor, "east us"}, {sub1, "vm2", vms, "west europe"},
			{sub2, "aks1", aks, "uk south"}, {sub2, "db1", sqld, "uk south"}, {sub2, "st2", stor, "north europe"},
		} {
			ds.Items = append(ds.Items, item(r.sub, "rg", r.name, r.typ, r.loc, m, 0.25*float64(i+1), 1.5+float64(m-last), 2))
		}
	}
	ds = ds.WithCosts(now)
	fake := azurefake.NewServer(ds, clientID, canary)
	fake.SetCostPageMax(s.PageSize)
	expected := map[provider.Month]providertest.Totals{}
	for m := last - 7; m <= provider.MonthOf(now); m++ {
		expected[m] = providertest.Totals{provider.Cost: ds.CostTotal(m)}
	}
	return &providertest.Fake{
		Handler: fake, Now: now, Secret: canary, Derived: []string{fake.TokenMarker()}, Expected: expected,
		Entry: func(url string) map[string]any {
			return map[string]any{"credential": azure.CredentialClientSecret, "tenant_id": tenant, "client_id": clientID,
				"client_secret": canary, "authority_host": url, "resource_manager_endpoint": url, "subscriptions": ds.SubscriptionIDs(),
				"provisional": true}
		},
		Data:        azurefake.IsCostQuery,
		Error:       azurefake.CostErrorFault,
		Permission:  "Cost Management Reader",
		EmptyPage:   azurefake.CostEmptyPage,
		ResponseCap: azure.MaxResponseBytes,
	}
}

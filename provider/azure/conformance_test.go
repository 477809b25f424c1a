package azure_test

import (
	"maps"
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
	}, TagFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		return tagFeedFake(now, s)
	}})
}

// feedDataset holds eight published months of two subscriptions and
// their cost, with the month in progress to date: what the cost feed is
// asked for, the months an estimate is based on and the months it
// estimates. Each subscription has three resource type and region pairs
// a month, so that pages of two rows make every query two pages. Their
// team tags (feedTagKey) have two values, web in three cells of both
// subscriptions, data on two resources that spell the key apart; one
// resource has another tag only, and so no team.
func feedDataset(now time.Time) azurefake.Dataset {
	last := azurefake.LatestMonth(now)
	ds := azurefake.Dataset{TenantID: tenant, Subscriptions: []azurefake.Subscription{{ID: sub1}, {ID: sub2, Currency: "EUR"}}}
	for m := last - 7; m <= last; m++ {
		for i, r := range []struct {
			sub, name, typ, loc string
			tags                map[string]string
		}{
			{sub1, "vm1", vms, "east us", map[string]string{feedTagKey: "web"}},
			{sub1, "st1", stor, "east us", map[string]string{feedTagKey: "web", "env": "prod"}},
			{sub1, "vm2", vms, "west europe", map[string]string{"env": "prod"}},
			{sub2, "aks1", aks, "uk south", map[string]string{feedTagKey: "data"}},
			{sub2, "db1", sqld, "uk south", map[string]string{"Team": "data"}},
			{sub2, "st2", stor, "north europe", map[string]string{feedTagKey: "web"}},
		} {
			it := item(r.sub, "rg", r.name, r.typ, r.loc, m, 0.25*float64(i+1), 1.5+float64(m-last), 2)
			it.Tags = r.tags
			ds.Items = append(ds.Items, it)
		}
	}
	return ds.WithCosts(now)
}

// feedTagKey is the tag key of feedDataset.
const feedTagKey = "team"

// feedFake serves ds to an entry that reads its cost, with extra keys.
func feedFake(now time.Time, s providertest.Scenario, ds azurefake.Dataset, extra map[string]any) *providertest.Fake {
	fake := azurefake.NewServer(ds, clientID, canary)
	fake.SetCostPageMax(s.PageSize)
	return &providertest.Fake{
		Handler: fake, Now: now, Secret: canary, Derived: []string{fake.TokenMarker()},
		Entry: func(url string) map[string]any {
			entry := map[string]any{"credential": azure.CredentialClientSecret, "tenant_id": tenant, "client_id": clientID,
				"client_secret": canary, "authority_host": url, "resource_manager_endpoint": url, "subscriptions": ds.SubscriptionIDs()}
			maps.Copy(entry, extra)
			return entry
		},
		Data:        azurefake.IsCostQuery,
		Error:       azurefake.CostErrorFault,
		Permission:  azure.CostPermission,
		EmptyPage:   azurefake.CostEmptyPage,
		ResponseCap: azure.MaxResponseBytes,
	}
}

// costFeedFake is feedDataset's cost for provisional months.
func costFeedFake(now time.Time, s providertest.Scenario) *providertest.Fake {
	ds := feedDataset(now)
	f := feedFake(now, s, ds, map[string]any{"provisional": true})
	f.Expected = map[provider.Month]providertest.Totals{}
	for m := azurefake.LatestMonth(now) - 7; m <= provider.MonthOf(now); m++ {
		f.Expected[m] = providertest.Totals{provider.Cost: ds.CostTotal(m)}
	}
	return f
}

// tagFeedFake is feedDataset's cost by team, for an entry that allocates
// by it, over the last three published months and the month in progress.
func tagFeedFake(now time.Time, s providertest.Scenario) *providertest.Fake {
	ds := feedDataset(now)
	f := feedFake(now, s, ds, map[string]any{"allocate_by": []string{feedTagKey}})
	f.TagKey = feedTagKey
	f.TagExpected = providertest.ValueTotals{}
	for m := azurefake.LatestMonth(now) - 2; m <= provider.MonthOf(now); m++ {
		f.TagExpected[m] = ds.TagTotals(m, feedTagKey)
	}
	return f
}

package gcp_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest"
)

func TestConformance(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	acct, err := gcpfake.NewServiceAccount(project)
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, providertest.Cloud{Plugin: gcp.Plugin(), Start: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		if s.Only != 0 && s.Only != provider.Cost {
			return nil // no water, and market-based figures only next to location-based ones
		}
		last := gcpfake.LatestPublished(now)
		ds := gcpfake.Dataset{Project: project, CarbonTable: carbonTable, BillingTable: billingTable, Location: "US"}
		for i, m := range []provider.Month{last - 2, last - 2, last - 1, last - 1, last, last} {
			loc, f := []string{"us-central1", "europe-west1"}[i%2], float64(i+1)
			if s.Only == 0 { // else a carbon export still empty next to a billing export
				ds.Carbon = append(ds.Carbon, gcpfake.CarbonRow{Month: m, ProjectID: "web", Service: "Cloud Run", Location: loc, Region: loc,
					ModelVersion: 1, Scope1: f, Scope2Location: 10 * f, Scope2Market: ptr(2 * f), Scope3: 3 * f})
			}
			ds.Billing = append(ds.Billing, gcpfake.BillingRow{InvoiceMonth: m, ProjectID: "web", Service: "Cloud Run", Location: loc,
				Region: loc, Currency: "EUR", ConversionRate: 0.9, CostMicros: 1_000_001 * int64(i+1), ExportTime: m.Start().Add(48 * time.Hour)})
		}
		if s.Negative {
			ds.Carbon[5].Scope2Location = -5
		}
		fake := gcpfake.NewServer(ds)
		fake.SetPageSize(s.PageSize)
		fake.RequireServiceAccount(acct)
		expected := map[provider.Month]providertest.Totals{}
		for _, m := range ds.Months() {
			expected[m] = ds.Served(m)
		}
		key := filepath.Join(t.TempDir(), "key.json")
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: acct.PrivateKey, Derived: acct.Leaks(), Expected: expected,
			Entry: func(url string) map[string]any {
				if err := os.WriteFile(key, acct.KeyFile(url+gcpfake.TokenPath), 0o600); err != nil {
					t.Fatal(err)
				}
				return map[string]any{"project": project, "carbon_table": carbonTable, "billing_table": billingTable,
					"location": "US", "endpoint": url + gcpfake.BasePath, "credentials_file": key}
			},
			Data: gcpfake.RowRequests(gcpfake.KindCarbon), Error: gcpfake.ErrorFault, EmptyPage: gcpfake.EmptyPage,
			Permission:  "roles/bigquery.jobUser on project test-project and roles/bigquery.dataViewer on dataset test-project.carbon_export",
			ResponseCap: gcp.MaxResponseBytes, Restate: fake.Restate,
		}
	}, CostFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		// The demo's generator: carbon and billing from one seeded
		// footprint, billing past the carbon to now.
		ds := gcpfake.Sample(now, costMonths)
		ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
		fake := gcpfake.NewServer(ds)
		fake.SetPageSize(s.PageSize)
		fake.RequireServiceAccount(acct)
		key := filepath.Join(t.TempDir(), "key.json")
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: acct.PrivateKey, Derived: acct.Leaks(), Expected: costExpected(t, ds, now),
			Entry: func(url string) map[string]any {
				if err := os.WriteFile(key, acct.KeyFile(url+gcpfake.TokenPath), 0o600); err != nil {
					t.Fatal(err)
				}
				return map[string]any{"project": project, "carbon_table": carbonTable, "billing_table": billingTable,
					"location": "US", "endpoint": url + gcpfake.BasePath, "credentials_file": key, "provisional": true}
			},
			Data: gcpfake.RowRequests(gcpfake.KindBilling), Error: gcpfake.ErrorFault, EmptyPage: gcpfake.EmptyPage,
			Permission:  "roles/bigquery.jobUser on project test-project and roles/bigquery.dataViewer on dataset test-project.billing_export",
			ResponseCap: gcp.MaxResponseBytes,
		}
	}, TagFeed: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		return tagFeed(t, s, now, acct)
	}})
}

// tagFeed starts the fake for a scenario of the tag feed: the cost feed's
// dataset, whose line items carry a team label of several values, shared
// by several series, and cost without it; the entry allocates by team
// alone, without provisional months.
func tagFeed(t testing.TB, s providertest.Scenario, now time.Time, acct *gcpfake.ServiceAccount) *providertest.Fake {
	ds := gcpfake.Sample(now, costMonths)
	ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
	fake := gcpfake.NewServer(ds)
	fake.SetPageSize(s.PageSize)
	fake.RequireServiceAccount(acct)
	expected := providertest.ValueTotals{}
	for m := range costExpected(t, ds, now) {
		expected[m] = ds.TagTotals(m, tagKey)
	}
	key := filepath.Join(t.TempDir(), "key.json")
	return &providertest.Fake{
		Handler: fake, Now: now, Secret: acct.PrivateKey, Derived: acct.Leaks(), TagKey: tagKey, TagExpected: expected,
		Entry: func(url string) map[string]any {
			if err := os.WriteFile(key, acct.KeyFile(url+gcpfake.TokenPath), 0o600); err != nil {
				t.Fatal(err)
			}
			return map[string]any{"project": project, "carbon_table": carbonTable, "billing_table": billingTable,
				"location": "US", "endpoint": url + gcpfake.BasePath, "credentials_file": key, "allocate_by": []string{tagKey}}
		},
		Data: gcpfake.RowRequests(gcpfake.KindTags), Error: gcpfake.ErrorFault, EmptyPage: gcpfake.EmptyPage,
		Permission:  "roles/bigquery.jobUser on project test-project and roles/bigquery.dataViewer on dataset test-project.billing_export",
		ResponseCap: gcp.MaxResponseBytes,
	}
}

// tagKey is the label the tag feed's scenarios allocate by.
const tagKey = "team"

// costMonths is how many published months the cost feed is asked for,
// besides the unpublished ones: those an estimate and its backtest read.
const costMonths = 8

// costExpected is the fake's own cost of each month the feed is asked
// for: the costMonths latest published months and every month after them
// to now's, to date.
func costExpected(t testing.TB, ds gcpfake.Dataset, now time.Time) map[provider.Month]providertest.Totals {
	last := gcpfake.LatestPublished(now)
	out := map[provider.Month]providertest.Totals{}
	for m := last - costMonths + 1; m <= provider.MonthOf(now); m++ {
		if usd, ok := ds.Served(m)[provider.Cost]; ok {
			out[m] = providertest.Totals{provider.Cost: usd}
		}
	}
	if len(out) != costMonths+int(provider.MonthOf(now)-last) {
		t.Fatalf("the fake has cost of %d months, want %d published and those after them", len(out), costMonths)
	}
	return out
}

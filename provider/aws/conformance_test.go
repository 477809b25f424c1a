package aws_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	awsp "github.com/cloudcarbon/cloudcarbon_exporter/provider/aws"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Cloud{Plugin: awsp.Plugin(), Start: func(t testing.TB, s providertest.Scenario) *providertest.Fake {
		if s.Only != 0 {
			return nil // AWS reports both methods of emissions together, and water by calendar year only
		}
		last := awsfake.LatestPublished(now)
		ds := awsfake.Dataset{Water: []awsfake.WaterRow{{Account: mgmt, Region: "us-east-1", Service: "AmazonEC2", Year: last.Year() - 1, Withdrawals: 12.5}}}
		for i := range 6 {
			ds.Rows = append(ds.Rows, awsfake.Row{Account: mgmt, Region: []string{"us-east-1", "eu-west-1"}[i%2], Service: "AmazonEC2",
				Month: last - provider.Month(i/2), Scope1: 0.001 * float64(i+1), Scope2LBM: 0.5, Scope2MBM: 0.05, Scope3LBM: 0.2, Scope3MBM: 0.21})
		}
		if s.Negative {
			ds.Rows[0].Scope2LBM = -5
		}
		fake := awsfake.NewServer(ds, awsfake.Credentials{AccessKeyID: keyID, SecretAccessKey: canary})
		fake.SetPageLimit(s.PageSize)
		expected := map[provider.Month]providertest.Totals{}
		for _, m := range ds.Months() {
			expected[m] = ds.Reported(m)
		}
		return &providertest.Fake{
			Handler: fake, Now: now, Secret: canary, Expected: expected, Yearly: map[int]float64{last.Year() - 1: ds.WaterTotal(last.Year() - 1)},
			Entry: func(url string) map[string]any {
				return map[string]any{"access_key_id": keyID, "secret_access_key": canary, "endpoint": url}
			},
			Data:        func(r *http.Request) bool { return r.URL.Path == awsfake.CarbonPath },
			Error:       awsfake.StatusFault,
			Permission:  "sustainability:GetEstimatedCarbonEmissions",
			EmptyPage:   awsfake.EmptyPage,
			ResponseCap: awsp.MaxResponseBytes,
			Restate:     func() { ds.ModelVersion = "v9.0.0"; fake.SetDataset(ds) },
		}
	}, CostFeed: costFeed, TagFeed: tagFeed})
}

// costFeed serves Cost Explorer with the cost of an organization's
// emissions: two accounts in three regions, eight published months and
// the months after them, to date. The clock is the real one: Cost
// Explorer's window (the current month and the 13 before) follows it, and
// the source's clock is the real one too.
func costFeed(t testing.TB, s providertest.Scenario) *providertest.Fake {
	if s.Only != 0 || s.Negative {
		return nil // the cost feed has one quantity, and cost may be negative
	}
	now := time.Now().UTC()
	ds := costDataset(now)
	f := costExplorer(ds, s, now, "provisional", true)
	f.Expected = map[provider.Month]providertest.Totals{}
	// Every month the fake has cost for: the eight published months and
	// those after them, to date (none yet in the first instants of a
	// month).
	for _, m := range ds.CostMonths() {
		f.Expected[m] = providertest.Totals{provider.Cost: ds.CostTotal(m)}
	}
	return f
}

// tagFeed serves the cost feed's organization with its cost tagged by
// team (awsfake.Teams): the management account's untagged, the other's
// split among teams and none; the suite asks for the team key and for one
// nothing carries.
func tagFeed(t testing.TB, s providertest.Scenario) *providertest.Fake {
	if s.Only != 0 || s.Negative {
		return nil // the tag feed has one quantity, and cost may be negative
	}
	now := time.Now().UTC()
	ds := costDataset(now).WithTags(awsfake.TeamKey, awsfake.Teams(mgmt))
	f := costExplorer(ds, s, now, "allocate_by", []string{awsfake.TeamKey})
	f.TagKey, f.TagExpected = awsfake.TeamKey, providertest.ValueTotals{}
	for _, m := range ds.CostMonths() {
		f.TagExpected[m] = ds.TagTotals(m, awsfake.TeamKey)
	}
	return f
}

// costDataset is the organization of the cost and tag feeds: two accounts
// in three regions, eight published months and their cost, through the
// month of now.
func costDataset(now time.Time) awsfake.Dataset {
	last := awsfake.LatestPublished(now)
	var ds awsfake.Dataset
	for i := range 8 {
		for j, k := range []struct{ account, region, service string }{
			{mgmt, "us-east-1", "AmazonEC2"}, {mgmt, "global", "AmazonCloudFront"},
			{prod, "eu-west-1", "AmazonS3"}, {prod, "eu-west-1", "AmazonEC2"}, {prod, "us-west-2", "AWSLambda"},
			{prod, "global", "AmazonCloudFront"},
		} {
			ds.Rows = append(ds.Rows, awsfake.Row{Account: k.account, Region: k.region, Service: k.service, Month: last - provider.Month(i),
				Scope1: 0.001 * float64(j+1), Scope2LBM: 0.4 + 0.01*float64(i), Scope2MBM: 0.05, Scope3LBM: 0.2, Scope3MBM: 0.21})
		}
	}
	return ds.WithCosts(now)
}

// costExplorer serves ds, with Cost Explorer's errors and paging, to an
// entry that sets key to value, which asks for a feed of Cost Explorer.
func costExplorer(ds awsfake.Dataset, s providertest.Scenario, now time.Time, key string, value any) *providertest.Fake {
	fake := awsfake.NewServer(ds, awsfake.Credentials{AccessKeyID: keyID, SecretAccessKey: canary})
	fake.SetPageLimit(s.PageSize)
	return &providertest.Fake{
		Handler: fake, Now: now, Secret: canary,
		Entry: func(url string) map[string]any {
			return map[string]any{"access_key_id": keyID, "secret_access_key": canary, "endpoint": url,
				key: value, "cost_explorer_endpoint": url}
		},
		Data:        awsfake.IsCostAndUsage,
		Error:       awsfake.CostFault,
		Permission:  "ce:GetCostAndUsage",
		EmptyPage:   awsfake.CostEmptyPage,
		ResponseCap: awsp.MaxResponseBytes,
	}
}

package azure_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// costNow is the fake's clock in the cost tests: April 2025 is in
// progress, March is Azure's latest published month.
var costNow = time.Date(2025, time.April, 25, 12, 0, 0, 0, time.UTC)

// costDataset is smallDataset with its cost through April to date, the
// second subscription billed in euros.
func costDataset() azurefake.Dataset {
	ds := smallDataset()
	ds.Items = slices.DeleteFunc(ds.Items, func(it azurefake.Item) bool { return it.Month == apr })
	ds.Subscriptions[1].Currency = "EUR"
	return ds.WithCosts(costNow)
}

// costs reads the cost of months, which must succeed.
func costs(t *testing.T, p *azure.Provider, months ...provider.Month) []provider.Record {
	t.Helper()
	recs, err := costsWithin(t, p, months)
	if err != nil {
		t.Fatalf("Costs: %v", err)
	}
	return recs
}

// costsErr reads the cost of months, which must fail with a
// *provider.Error that holds neither the client secret nor a token.
func costsErr(t *testing.T, p *azure.Provider, months ...provider.Month) *provider.Error {
	t.Helper()
	_, err := costsWithin(t, p, months)
	perr, ok := errors.AsType[*provider.Error](err)
	switch {
	case err == nil:
		t.Fatal("Costs succeeded, want an error")
	case !ok:
		t.Fatalf("Costs error %T (%v) is not a *provider.Error", err, err)
	case strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), jwtMarker):
		t.Fatalf("error leaks the client secret or a token: %v", err)
	case strings.Contains(err.Error(), "\n"):
		t.Errorf("error spans lines: %q", err)
	}
	return perr
}

func costsWithin(t *testing.T, p *azure.Provider, months []provider.Month) ([]provider.Record, error) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return p.Costs(ctx, months)
}

// TestCostQueryShape: one query per subscription and month, at
// subscription scope, of the month's ActualCost summed in the billing
// currency and in dollars, grouped by resource type and location, with no
// date granularity.
func TestCostQueryShape(t *testing.T) {
	e := newEnv(t, costDataset())
	p := e.provider(t)
	costs(t, p, mar, feb, apr, mar)

	qs := e.fake.CostQueries()
	if len(qs) != 6 {
		t.Fatalf("cost queries = %d, want 2 subscriptions × 3 months", len(qs))
	}
	var periods []string
	for _, q := range qs {
		ds := q.Dataset
		if q.Type != "ActualCost" || q.Timeframe != "Custom" || q.TimePeriod == nil || ds == nil ||
			ds.Granularity != "None" || len(ds.Filter) != 0 || len(ds.Aggregation) != 2 ||
			ds.Aggregation["totalCost"] != (azurefake.CostAggregation{Name: "Cost", Function: "Sum"}) ||
			ds.Aggregation["totalCostUSD"] != (azurefake.CostAggregation{Name: "CostUSD", Function: "Sum"}) ||
			!slices.Equal(ds.Grouping, []azurefake.CostGrouping{{Type: "Dimension", Name: "ResourceType"}, {Type: "Dimension", Name: "ResourceLocation"}}) {
			t.Errorf("query %+v", q)
			continue
		}
		periods = append(periods, q.TimePeriod.From+".."+q.TimePeriod.To)
	}
	slices.Sort(periods)
	periods = slices.Compact(periods)
	want := []string{
		"2025-02-01T00:00:00Z..2025-02-28T23:59:59Z",
		"2025-03-01T00:00:00Z..2025-03-31T23:59:59Z",
		"2025-04-01T00:00:00Z..2025-04-30T23:59:59Z",
	}
	if !slices.Equal(periods, want) {
		t.Errorf("time periods = %q, want %q", periods, want)
	}
	// Every query was observed under its own endpoint name, and the
	// requests went to each subscription's scope.
	if got := e.obs.count(azure.EndpointCostQuery, http.StatusOK); got != 6 || e.fake.Requests(azurefake.OpCostQuery) != 6 {
		t.Errorf("cost queries observed %d, fake saw %d, want 6", got, e.fake.Requests(azurefake.OpCostQuery))
	}
	if n := e.fake.Requests(azurefake.OpReports) + e.fake.Requests(azurefake.OpDateRange); n != 0 {
		t.Errorf("%d carbon requests to read cost", n)
	}
}

// TestCostLabelsMatchCarbon: cost records carry the labels of the
// emission records of the same resources (subscription id, ARM resource
// type in lower case, ARM region name), cost only, in dollars whatever the
// billing currency, each key's cost what the fake charged for it.
func TestCostLabelsMatchCarbon(t *testing.T) {
	ds := costDataset()
	e := newEnv(t, ds)
	p := e.provider(t)
	recs := costs(t, p, mar)
	res := fetch(t, p, mar)

	carbon := map[string]bool{}
	for _, r := range res.Records {
		carbon[r.Account+"|"+r.Service+"|"+r.Location] = true
	}
	want := map[string]float64{}
	for k, v := range ds.CostTotals(mar) {
		want[k.SubscriptionID+"|"+k.ResourceType+"|"+k.Location] += v
	}
	got := map[string]float64{}
	for _, r := range recs {
		if r.Provider != azure.Name || r.Known != provider.Cost || r.Month != mar || r.Scope != provider.ScopeNone ||
			r.EmissionsGrams != 0 {
			t.Errorf("record %+v", r)
		}
		key := r.Account + "|" + r.Service + "|" + r.Location
		if !carbon[key] {
			t.Errorf("cost key %s has no emissions record with the same labels (emissions: %v)", key, slices.Sorted(maps.Keys(carbon)))
		}
		got[key] += r.CostUSD
	}
	if len(got) != len(want) {
		t.Errorf("cost keys %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for k, w := range want {
		if g := got[k]; math.Abs(g-w) > 1e-9*w {
			t.Errorf("%s: cost %v, want %v (the CostUSD column, not the euros of Cost)", k, g, w)
		}
	}
}

// TestCostMonths: the month in progress is read to date, the months
// after it not at all, and a month without cost gives no record.
func TestCostMonths(t *testing.T) {
	ds := costDataset()
	e := newEnv(t, ds)
	p := e.provider(t)
	future := provider.MonthOf(time.Now()) + 2
	recs := costs(t, p, apr, future, provider.NewMonth(2024, time.June))
	total := map[provider.Month]float64{}
	for _, r := range recs {
		total[r.Month] += r.CostUSD
	}
	if len(total) != 1 || math.Abs(total[apr]-ds.CostTotal(apr)) > 1e-9*ds.CostTotal(apr) || ds.CostTotal(apr) == 0 {
		t.Errorf("cost per month %v, want April's %v only", total, ds.CostTotal(apr))
	}
	if n := e.fake.Requests(azurefake.OpCostQuery); n != 4 {
		t.Errorf("cost queries = %d, want 2 subscriptions × 2 months begun", n)
	}
	if recs := costs(t, p, future); recs != nil {
		t.Errorf("records of a month not begun: %+v", recs)
	}
	if n := e.fake.Requests(azurefake.OpCostQuery); n != 4 {
		t.Errorf("a month not begun was asked for")
	}
}

// TestCostPaging: pages of one row; each further page is the same query
// posted to the nextLink.
func TestCostPaging(t *testing.T) {
	ds := costDataset()
	e := newEnv(t, ds)
	e.fake.SetCostPageMax(1)
	recs := costs(t, e.provider(t), mar)
	rows := len(ds.CostTotals(mar))
	if n := e.fake.Requests(azurefake.OpCostQuery); n != rows {
		t.Errorf("cost queries = %d, want one per row (%d)", n, rows)
	}
	if len(recs) != rows {
		t.Errorf("records = %d, want %d", len(recs), rows)
	}
	bodies := e.fake.Bodies(azurefake.OpCostQuery)
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("a page's query differs from the first's:\n%s\n%s", b, bodies[0])
		}
	}
}

// TestCostRequestBudget: a read that needs more queries than the budget
// fails before its first one.
func TestCostRequestBudget(t *testing.T) {
	e := newEnv(t, costDataset())
	perr := costsErr(t, e.provider(t, func(o *azure.Options) { o.RequestBudget = 5 }), feb, mar, apr)
	if perr.Reason != provider.ReasonOther || !strings.Contains(perr.Error(), "needs at least 6 ARM requests") {
		t.Errorf("error %v", perr)
	}
	if n := e.fake.Requests(azurefake.OpCostQuery); n != 0 {
		t.Errorf("%d cost queries past the budget", n)
	}
}

// TestCostThrottling: Cost Management's throttling headers are waited
// out when short, and end the read at once when longer than the longest
// retry delay, with their delay.
func TestCostThrottling(t *testing.T) {
	t.Run("short", func(t *testing.T) {
		e := newEnv(t, costDataset())
		e.fake.Inject(azurefake.OpCostQuery, azurefake.CostErrorFault(http.StatusTooManyRequests))
		p := e.provider(t, func(o *azure.Options) { o.MaxRetryDelay = 5 * time.Second })
		start := time.Now()
		costs(t, p, mar)
		if d := time.Since(start); d < time.Second-50*time.Millisecond {
			t.Errorf("read done %s after a 429 whose Cost Management headers ask for 1s", d)
		}
	})
	t.Run("long", func(t *testing.T) {
		e := newEnv(t, costDataset())
		e.fake.Inject(azurefake.OpCostQuery, azurefake.Fault{Status: http.StatusTooManyRequests, Body: armErr("429", "Too many requests. Please retry."),
			Header: http.Header{"x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": {"600"},
				"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": {"30"}}})
		perr := costsErr(t, e.provider(t, func(o *azure.Options) { o.Concurrency = 1 }), mar)
		if perr.Reason != provider.ReasonThrottled || perr.RetryAfter != 10*time.Minute ||
			!strings.Contains(perr.Error(), "Cost Management throttled") {
			t.Errorf("error %v (retry after %s)", perr, perr.RetryAfter)
		}
		if n := e.fake.Requests(azurefake.OpCostQuery); n != 1 {
			t.Errorf("cost queries = %d, want 1: a wait past the longest retry delay is not waited", n)
		}
	})
}

// TestCostFailures: Cost Management's error answers and malformed
// answers, with their reasons and hints.
func TestCostFailures(t *testing.T) {
	usdRow := `[1.5,1.5,"microsoft.compute/virtualmachines","eastus","USD"]`
	page := func(columns, rows, next string) string {
		return `{"id":"x","name":"x","type":"Microsoft.CostManagement/query","properties":{"nextLink":` + next + `,"columns":` + columns + `,"rows":[` + rows + `]}}`
	}
	cols := `[{"name":"Cost","type":"Number"},{"name":"CostUSD","type":"Number"},{"name":"ResourceType","type":"String"},{"name":"ResourceLocation","type":"String"},{"name":"Currency","type":"String"}]`
	for _, tt := range []struct {
		name   string
		fault  azurefake.Fault
		deny   bool
		reason provider.Reason
		want   []string
	}{
		{name: "denied", deny: true, reason: provider.ReasonPermission,
			want: []string{"403", "Cost Management Reader", "Microsoft.CostManagement/query", sub2, "[AuthorizationFailed]"}},
		{name: "offer type", reason: provider.ReasonBadRequest,
			fault: azurefake.Fault{Status: 422, Body: armErr("422", "Cost Management supports only Enterprise Agreement, Web direct and Microsoft Customer Agreement offer types.")},
			want:  []string{"422", "offer type", "provisional off"}},
		{name: "nextLink elsewhere", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: page(cols, usdRow, `"https://elsewhere.invalid/subscriptions/`+sub1+`/providers/Microsoft.CostManagement/query?$skiptoken=x"`)},
			want:  []string{"nextLink leaves the Cost Management query"}},
		{name: "nextLink to another operation", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: page(cols, usdRow, `"https://127.0.0.1/providers/Microsoft.Carbon/carbonEmissionReports"`)},
			want:  []string{"nextLink leaves the Cost Management query"}},
		{name: "no properties", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: `{"id":"x"}`}, want: []string{"no properties"}},
		{name: "cost not a number", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: page(cols, `["1.5","1.5","t","eastus","USD"]`, "null")}, want: []string{"row 1", "not a number"}},
		{name: "short row", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: page(cols, `[1.5,"t"]`, "null")}, want: []string{"row 1 has 2 values for 5 columns"}},
		{name: "no grouping columns", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: page(`[{"name":"CostUSD","type":"Number"}]`, `[1]`, "null")}, want: []string{"no ResourceType or ResourceLocation column"}},
		{name: "euros only", reason: provider.ReasonMalformed,
			fault: azurefake.Fault{Status: 200, Body: page(`[{"name":"Cost","type":"Number"},{"name":"ResourceType","type":"String"},{"name":"ResourceLocation","type":"String"},{"name":"Currency","type":"String"}]`,
				`[1.5,"t","eastus","EUR"]`, "null")},
			want: []string{"cost in EUR and no CostUSD column"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ds := costDataset()
			ds.Subscriptions[1].CostDenied = tt.deny
			e := newEnv(t, ds)
			if tt.fault.Status != 0 {
				e.fake.Inject(azurefake.OpCostQuery, tt.fault)
			}
			perr := costsErr(t, e.provider(t, func(o *azure.Options) { o.Concurrency = 1 }), mar)
			t.Logf("error: %v", perr)
			if perr.Reason != tt.reason {
				t.Errorf("reason %s, want %s", perr.Reason, tt.reason)
			}
			for _, w := range tt.want {
				if !strings.Contains(perr.Error(), w) {
					t.Errorf("error %q does not say %q", perr, w)
				}
			}
		})
	}
}

// TestCostInDollarsWithoutCostUSD: an answer without CostUSD serves when
// its Cost is in dollars; aliases name columns as well as the columns
// they sum.
func TestCostInDollarsWithoutCostUSD(t *testing.T) {
	e := newEnv(t, costDataset())
	body := `{"properties":{"nextLink":null,"columns":[{"name":"totalCost","type":"Number"},{"name":"resourceType","type":"String"},` +
		`{"name":"ResourceLocation","type":"String"},{"name":"Currency","type":"String"}],"rows":[[2.5,"Microsoft.Compute/virtualMachines","East US","USD"],[0.5,null,"","usd"]]}}`
	e.fake.Inject(azurefake.OpCostQuery, azurefake.Fault{Status: 200, Body: body, Times: 2})
	recs := costs(t, e.provider(t, func(o *azure.Options) { o.Concurrency = 1 }), mar)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s|%s|%s|%v", r.Account, r.Service, r.Location, r.CostUSD))
	}
	want := []string{sub1 + "|" + vms + "|eastus|2.5", sub1 + "|unknown|unknown|0.5", sub2 + "|" + vms + "|eastus|2.5", sub2 + "|unknown|unknown|0.5"}
	if !slices.Equal(got, want) {
		t.Errorf("records:\n got %q\nwant %q", got, want)
	}
}

// TestCostDemo: the demo tenant's cost, the subscription the carbon API
// denies included, equals the fake's for every month it has cost; the
// month in progress is a part of a month.
func TestCostDemo(t *testing.T) {
	now := time.Date(2025, time.June, 10, 0, 0, 0, 0, time.UTC)
	ds := azurefake.Demo(now)
	ds.TenantID = tenant
	e := newEnv(t, ds)
	p := e.provider(t, func(o *azure.Options) { o.Subscriptions = nil; o.ListSubscriptions = true })
	last := azurefake.LatestMonth(now)
	months := provider.Range(last-3, provider.MonthOf(now))
	recs := costs(t, p, months...)
	got := map[provider.Month]float64{}
	accounts := map[string]bool{}
	for _, r := range recs {
		got[r.Month] += r.CostUSD
		accounts[r.Account] = true
	}
	for _, m := range months {
		if w := ds.CostTotal(m); w == 0 || math.Abs(got[m]-w) > 1e-9*w {
			t.Errorf("%s: cost %v, want %v", m, got[m], w)
		}
	}
	if len(accounts) != len(ds.Subscriptions) {
		t.Errorf("cost of %d subscriptions, want all %d", len(accounts), len(ds.Subscriptions))
	}
	if cur, prev := got[provider.MonthOf(now)], got[last]; cur > prev/2 {
		t.Errorf("the month in progress costs %v, more than half of the last month's %v on its 10th day", cur, prev)
	}
}

// TestProvisionalOption: the entry's provisional key reaches the
// provider, which reads cost either way.
func TestProvisionalOption(t *testing.T) {
	e := newEnv(t, costDataset())
	for _, on := range []bool{false, true} {
		p := e.provider(t, func(o *azure.Options) { o.Provisional = on })
		if p.Provisional() != on {
			t.Errorf("Provisional() = %v, want %v", p.Provisional(), on)
		}
		if len(costs(t, p, mar)) == 0 {
			t.Errorf("no cost read with provisional %v", on)
		}
	}
}

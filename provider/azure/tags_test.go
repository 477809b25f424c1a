package azure_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/allocation"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// tagDataset is costDataset's subscriptions with tagged resources in
// March, and their cost through April to date: team has the values web
// (in two cells), api (spelled Team, on a type that spans two regions)
// and data; one resource has another tag only, one none.
func tagDataset() azurefake.Dataset {
	ds := azurefake.Dataset{TenantID: tenant, Subscriptions: []azurefake.Subscription{{ID: sub1}, {ID: sub2, Currency: "EUR"}}}
	for _, r := range []struct {
		sub, name, typ, loc string
		tags                map[string]string
	}{
		{sub1, "vm1", vms, "east us", map[string]string{"team": "web"}},
		{sub1, "vm2", vms, "west europe", map[string]string{"Team": "api"}},
		{sub1, "st1", stor, "west europe", map[string]string{"team": "web"}},
		{sub1, "vm3", vms, "east us", map[string]string{"env": "prod"}},
		{sub2, "aks1", aks, "west us 2", map[string]string{"team": "data", "env": "prod"}},
		{sub2, "db1", sqld, "uk south", nil},
	} {
		it := item(r.sub, "rg", r.name, r.typ, r.loc, mar, 0.5, 2.25, 4)
		it.Tags = r.tags
		ds.Items = append(ds.Items, it)
	}
	return ds.WithCosts(costNow)
}

// tagCosts reads the cost of months by key, which must succeed.
func tagCosts(t *testing.T, p *azure.Provider, key string, months ...provider.Month) []provider.TagCost {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	recs, err := p.TagCosts(ctx, months, key)
	if err != nil {
		t.Fatalf("TagCosts: %v", err)
	}
	return recs
}

// TestTagQueryShape: one query per subscription and month, Costs' query
// but grouped by resource type and the key as a TagKey grouping, the
// key sent as configured; counted as cost_management_tag_query.
func TestTagQueryShape(t *testing.T) {
	for _, key := range []string{"team", "kubernetes.io-created-for-pvc-namespace", "Cost Center"} {
		t.Run(key, func(t *testing.T) {
			e := newEnv(t, tagDataset())
			p := e.provider(t, func(o *azure.Options) { o.Observe = e.obs.observe })
			tagCosts(t, p, key, apr, mar)
			qs := e.fake.CostQueries()
			if len(qs) != 4 {
				t.Fatalf("queries = %d, want 2 subscriptions × 2 months", len(qs))
			}
			want := []azurefake.CostGrouping{{Type: "Dimension", Name: "ResourceType"}, {Type: "TagKey", Name: key}}
			for _, q := range qs {
				ds := q.Dataset
				if q.Type != "ActualCost" || q.Timeframe != "Custom" || ds == nil || ds.Granularity != "None" || len(ds.Filter) != 0 ||
					ds.Aggregation["totalCostUSD"] != (azurefake.CostAggregation{Name: "CostUSD", Function: "Sum"}) ||
					!slices.Equal(ds.Grouping, want) {
					t.Errorf("query %+v", q)
				}
			}
			if got := e.obs.count(azure.EndpointCostTagQuery, http.StatusOK); got != 4 || e.obs.total(azure.EndpointCostQuery) != 0 {
				t.Errorf("tag queries observed %d, cost queries %d; want 4 and 0", got, e.obs.total(azure.EndpointCostQuery))
			}
		})
	}
}

// TestTagCostsMatchFake: each subscription, resource type and value has
// the cost the fake charged it, the location "" in every record (Cost
// Management groups by two columns at most); per subscription and type
// the values add up to the cost feed's cost, so the shares split it.
func TestTagCostsMatchFake(t *testing.T) {
	ds := tagDataset()
	e := newEnv(t, ds)
	p := e.provider(t)
	for _, m := range []provider.Month{mar, apr} {
		got := map[azurefake.TagCostKey]float64{}
		perCell := map[string]float64{}
		for _, r := range tagCosts(t, p, "team", m) {
			if r.Provider != azure.Name || r.Known != provider.Cost || r.Month != m || r.Scope != provider.ScopeNone || r.Location != "" {
				t.Errorf("record %+v", r)
			}
			got[azurefake.TagCostKey{SubscriptionID: r.Account, ResourceType: r.Service, Value: r.Value}] += r.CostUSD
			perCell[r.Account+"|"+r.Service] += r.CostUSD
		}
		want := ds.TagCostTotals(m, "team")
		if len(got) != len(want) || len(want) != 6 {
			t.Errorf("%s: cells %v, want %v", m, got, want)
		}
		for k, w := range want {
			if g := got[k]; math.Abs(g-w) > 1e-9*w {
				t.Errorf("%s %v: %v dollars, want %v", m, k, g, w)
			}
		}
		for _, r := range costs(t, p, m) {
			perCell[r.Account+"|"+r.Service] -= r.CostUSD
		}
		for cell, d := range perCell {
			if math.Abs(d) > 1e-9 {
				t.Errorf("%s %s: the values add up to %v more than the cell's cost", m, cell, d)
			}
		}
	}
}

// TestTagValues: what each spelling of a row's TagKey and TagValue
// becomes, and the rows that fail the read.
func TestTagValues(t *testing.T) {
	cols := `[{"name":"Cost","type":"Number"},{"name":"CostUSD","type":"Number"},{"name":"ResourceType","type":"String"},` +
		`{"name":"TagKey","type":"String"},{"name":"TagValue","type":"String"},{"name":"Currency","type":"String"}]`
	page := func(cols, tagKey, tagValue string) string {
		return `{"properties":{"nextLink":null,"columns":` + cols + `,"rows":[[1.5,1.5,"Microsoft.Compute/virtualMachines",` + tagKey + `,` + tagValue + `,"USD"]]}}`
	}
	long := strings.Repeat("x", 2000)
	for _, tt := range []struct {
		name     string
		body     string
		want     string
		reason   provider.Reason
		errorSay string
	}{
		{name: "null is untagged", body: page(cols, "null", "null"), want: ""},
		{name: "empty is untagged", body: page(cols, `""`, `""`), want: ""},
		{name: "no key, a stray value", body: page(cols, `""`, `"web"`), want: ""},
		{name: "the key in another case", body: page(cols, `"TEAM"`, `"web"`), want: "web"},
		{name: "the key without a value", body: page(cols, `"team"`, "null"), want: ""},
		{name: "case and spaces of a value kept", body: page(cols, `"team"`, `" Web "`), want: " Web "},
		{name: "a value past the bound cut", body: page(cols, `"team"`, `"`+long+`"`), want: long[:1024] + "…"},
		{name: "another key", body: page(cols, `"env"`, `"prod"`), reason: provider.ReasonMalformed, errorSay: "TagKey env is not the tag asked for"},
		{name: "a value not a string", body: page(cols, `"team"`, "5"), reason: provider.ReasonMalformed, errorSay: "TagKey or TagValue is not a string"},
		{name: "no TagValue column", body: `{"properties":{"nextLink":null,"columns":[{"name":"CostUSD","type":"Number"},{"name":"ResourceType","type":"String"},` +
			`{"name":"TagKey","type":"String"}],"rows":[[1,"t","team"]]}}`, reason: provider.ReasonMalformed, errorSay: "no ResourceType, TagKey or TagValue column"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tagDataset())
			e.fake.Inject(azurefake.OpCostQuery, azurefake.Fault{Status: 200, Body: tt.body, Times: 2})
			p := e.provider(t, func(o *azure.Options) { o.Concurrency = 1 })
			recs, err := p.TagCosts(t.Context(), []provider.Month{mar}, "team")
			if tt.reason != "" {
				perr, ok := errors.AsType[*provider.Error](err)
				if !ok || perr.Reason != tt.reason || !strings.Contains(err.Error(), tt.errorSay) {
					t.Errorf("error %v, want %s saying %q", err, tt.reason, tt.errorSay)
				}
				return
			}
			if err != nil {
				t.Fatalf("TagCosts: %v", err)
			}
			if len(recs) != 2 {
				t.Fatalf("records %+v, want one per subscription", recs)
			}
			for _, r := range recs {
				if r.Value != tt.want || r.Service != vms || r.CostUSD != 1.5 {
					t.Errorf("record %q %s %v, want value %q", r.Value, r.Service, r.CostUSD, tt.want)
				}
			}
		})
	}
}

// TestTagCostsUntaggedKey: a key nothing carries is no error: every
// record is untagged, and they add up to the month's cost.
func TestTagCostsUntaggedKey(t *testing.T) {
	ds := tagDataset()
	e := newEnv(t, ds)
	recs := tagCosts(t, e.provider(t), "cost-center", mar, apr)
	got := map[provider.Month]float64{}
	for _, r := range recs {
		if r.Value != "" {
			t.Errorf("value %q of a key nothing carries", r.Value)
		}
		got[r.Month] += r.CostUSD
	}
	for _, m := range []provider.Month{mar, apr} {
		if w := ds.CostTotal(m); w == 0 || math.Abs(got[m]-w) > 1e-9*w {
			t.Errorf("%s: %v dollars untagged, want the month's %v", m, got[m], w)
		}
	}
}

// TestTagCostsManyValues: 150 values in one cell come back each with its
// own cost, over pages, for the exporter to fold past its top N.
func TestTagCostsManyValues(t *testing.T) {
	ds := tagDataset().WithManyTagValues("team", 150)
	e := newEnv(t, ds)
	e.fake.SetCostPageMax(50)
	got := map[azurefake.TagCostKey]float64{}
	for _, r := range tagCosts(t, e.provider(t), "team", mar) {
		got[azurefake.TagCostKey{SubscriptionID: r.Account, ResourceType: r.Service, Value: r.Value}] += r.CostUSD
	}
	want := ds.TagCostTotals(mar, "team")
	if len(want) < 150 || len(got) != len(want) {
		t.Fatalf("%d cells, want %d", len(got), len(want))
	}
	for k, w := range want {
		if math.Abs(got[k]-w) > 1e-9*w {
			t.Errorf("%v: %v, want %v", k, got[k], w)
		}
	}
}

// TestTagCostsKeyBounds: a key the configuration would refuse is refused
// before any request.
func TestTagCostsKeyBounds(t *testing.T) {
	e := newEnv(t, tagDataset())
	p := e.provider(t)
	for _, key := range []string{"", strings.Repeat("k", 513)} {
		_, err := p.TagCosts(t.Context(), []provider.Month{mar}, key)
		if perr, ok := errors.AsType[*provider.Error](err); !ok || perr.Reason != provider.ReasonOther {
			t.Errorf("key of %d bytes: %v", len(key), err)
		}
	}
	if n := e.fake.Requests(azurefake.OpCostQuery); n != 0 {
		t.Errorf("%d queries", n)
	}
}

// TestTagCostsDenied: a 403 names the role, as for provisional months.
func TestTagCostsDenied(t *testing.T) {
	ds := tagDataset()
	ds.Subscriptions[1].CostDenied = true
	e := newEnv(t, ds)
	_, err := e.provider(t).TagCosts(t.Context(), []provider.Month{mar}, "team")
	if perr, ok := errors.AsType[*provider.Error](err); !ok || perr.Reason != provider.ReasonPermission ||
		!strings.Contains(err.Error(), azure.CostPermission) || !strings.Contains(err.Error(), "allocate_by") ||
		!strings.Contains(err.Error(), `tag "team"`) || strings.Contains(err.Error(), canary) {
		t.Errorf("error %v", err)
	}
}

// TestTagAllocation: the records Fetch reads, split by what TagCosts
// reads (allocation.Fold and Split, as the exporter does), give each value
// what the fake's own reference gives it, top-N folding included; the
// values of a month add up to its unallocated emissions.
func TestTagAllocation(t *testing.T) {
	for _, tt := range []struct {
		name string
		ds   azurefake.Dataset
		top  int
	}{
		{"every value kept", tagDataset(), 100},
		{"two kept, the rest folded", tagDataset(), 2},
		{"150 values in one cell, 100 kept", tagDataset().WithManyTagValues("team", 150), 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.ds)
			p := e.provider(t)
			recs := fetch(t, p, mar).Records
			tags, folded := allocation.Fold(tagCosts(t, p, "team", mar), tt.top)
			got := map[string]float64{}
			var sum float64
			for _, part := range allocation.Split(recs, tags) {
				got[part.Value] += part.EmissionsGrams
				sum += part.EmissionsGrams
			}
			want := tt.ds.ReferenceAllocation(mar, "team", tt.top)
			if len(got) != len(want) || folded.Kept > tt.top {
				t.Errorf("values %v, want %+v; %+v", got, want, folded)
			}
			for _, w := range want {
				if math.Abs(got[w.Value]-w.Grams) > 1e-9*math.Abs(w.Grams) {
					t.Errorf("%s: %v g, want %v", w.Value, got[w.Value], w.Grams)
				}
			}
			if total := tt.ds.MonthGrams(mar); total == 0 || math.Abs(sum-total) > 1e-9*total {
				t.Errorf("the values add up to %v g, the month's emissions are %v", sum, total)
			}
		})
	}
}

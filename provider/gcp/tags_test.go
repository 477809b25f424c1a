package gcp_test

import (
	"context"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/cloudcarbon/cloudcarbon_exporter/allocation"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

func readTags(t *testing.T, p *gcp.Provider, key string, months ...provider.Month) []provider.TagCost {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	recs, err := p.ReadTagCosts(ctx, months, key)
	if err != nil {
		t.Fatalf("ReadTagCosts(%q): %v", key, err)
	}
	return recs
}

// cellValue is a tag record's series labels and value.
type cellValue struct {
	labelKey
	value string
}

func byCellValue(recs []provider.TagCost, m provider.Month) map[cellValue]float64 {
	out := map[cellValue]float64{}
	for _, r := range recs {
		if r.Month == m {
			out[cellValue{keyOf(r.Record), r.Value}] += r.CostUSD
		}
	}
	return out
}

// handTagged is handDataset with labels: January's web line items are
// the web team's (one in namespace checkout), the data team's, a tax row
// without labels and an adjustment whose team label is empty; the row
// exported past the window is the web team's; web's project is labelled
// env=prod.
func handTagged() gcpfake.Dataset {
	ds := handDataset()
	ds.Billing = slices.Clone(ds.Billing)
	labels := [][]gcpfake.Label{
		{{Key: "team", Value: "web"}, {Key: "k8s-namespace", Value: "checkout"}},
		{{Key: "team", Value: "data"}},
		nil,
		{{Key: "team", Value: ""}},
		{{Key: "team", Value: "web"}},
		nil,
		{{Key: "team", Value: "web"}},
	}
	for i := range ds.Billing {
		ds.Billing[i].Labels = labels[i]
		if ds.Billing[i].ProjectID == "web" {
			ds.Billing[i].ProjectLabels = []gcpfake.Label{{Key: "env", Value: "prod"}}
		}
	}
	return ds
}

// TestTagValues: the cost of each value of a key, per series, worked out
// by hand from handTagged: NULL and empty values are one untagged value,
// and a key nothing carries leaves everything untagged.
func TestTagValues(t *testing.T) {
	web := labelKey{"web", "Compute Engine", "us-central1"}
	support := labelKey{"none", "Cloud Support", "global"}
	all := 4.8/0.9 - 0.4/0.8
	for _, tt := range []struct {
		key  string
		want map[cellValue]float64
	}{
		{"team", map[cellValue]float64{
			{web, "web"}: 0.8 / 0.9, {web, "data"}: 3.333333 / 0.9, {web, ""}: 0.666667/0.9 - 0.4/0.8, {support, ""}: 29 / 0.9}},
		{"k8s-namespace", map[cellValue]float64{{web, "checkout"}: 0.8 / 0.9, {web, ""}: all - 0.8/0.9, {support, ""}: 29 / 0.9}},
		{"project:env", map[cellValue]float64{{web, "prod"}: all, {support, ""}: 29 / 0.9}},
		{"no-such-key", map[cellValue]float64{{web, ""}: all, {support, ""}: 29 / 0.9}},
	} {
		t.Run(tt.key, func(t *testing.T) {
			p := newEnv(t, handTagged()).provider(t, nil)
			recs := readTags(t, p, tt.key, jan24)
			got := byCellValue(recs, jan24)
			if len(got) != len(tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
			for k, usd := range tt.want {
				if !near(got[k], usd) {
					t.Errorf("%v: %v, want %v", k, got[k], usd)
				}
			}
			for _, r := range recs {
				if r.Known != provider.Cost || r.Provider != "gcp" || r.Scope != provider.ScopeNone || r.Month != jan24 {
					t.Errorf("not a cost record of January: %+v", r)
				}
			}
		})
	}
}

// TestTagValueNormalisation: how the export's spellings of a value become
// the tag feed's.
func TestTagValueNormalisation(t *testing.T) {
	long := strings.Repeat("é", 200)
	for _, tt := range []struct {
		name string
		in   bigquery.NullString
		want string
	}{
		{"null: no such label", bigquery.NullString{}, ""},
		{"empty value", bigquery.NullString{Valid: true}, ""},
		{"value", bigquery.NullString{StringVal: "web", Valid: true}, "web"},
		{"GKE's own value", bigquery.NullString{StringVal: "kube:unallocated", Valid: true}, "kube:unallocated"},
		{"case and dots kept", bigquery.NullString{StringVal: "Checkout.v2", Valid: true}, "Checkout.v2"},
		{"invalid UTF-8", bigquery.NullString{StringVal: "a\xffb", Valid: true}, "a\uFFFDb"},
		{"bounded", bigquery.NullString{StringVal: long, Valid: true}, long[:256] + "…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcp.TagValue(tt.in); got != tt.want {
				t.Errorf("TagValue(%+v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestTagQueryShape: the query a read sends: one per contiguous run of
// months, every allocate_by key and the one asked for in @tag_keys, only
// the label columns those keys need, the billing query's bounds and its
// own job label.
func TestTagQueryShape(t *testing.T) {
	lag := gcp.BillingExportLag
	for _, tt := range []struct {
		name        string
		allocate    []string
		key         string
		wantKeys    []string
		wantColumns []string
	}{
		{"one key", []string{"team"}, "team", []string{"team"}, []string{"labels"}},
		{"every key in one query", []string{"team", "k8s-namespace", "k8s-label/app"}, "team",
			[]string{"k8s-label/app", "k8s-namespace", "team"}, []string{"labels"}},
		{"a project label", []string{"project:env"}, "project:env", []string{"project:env"}, []string{"project.labels"}},
		{"both kinds", []string{"team", "project:env"}, "project:env", []string{"project:env", "team"}, []string{"labels", "project.labels"}},
		{"a key not configured", nil, "team", []string{"team"}, []string{"labels"}},
		{"a key besides the configured", []string{"team"}, "env", []string{"env", "team"}, []string{"labels"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, handTagged())
			p := e.provider(t, func(o *gcp.Options) { o.TagKeys = tt.allocate })
			readTags(t, p, tt.key, feb24, dec22, jan24)
			want := []gcpfake.QueryInfo{
				{Kind: gcpfake.KindTags, Months: []provider.Month{dec22}, PartitionStart: dec22.Start(), PartitionEnd: dec22.End().Add(lag),
					TagKeys: tt.wantKeys, TagColumns: tt.wantColumns},
				{Kind: gcpfake.KindTags, Months: []provider.Month{jan24, feb24}, PartitionStart: jan24.Start(), PartitionEnd: feb24.End().Add(lag),
					TagKeys: tt.wantKeys, TagColumns: tt.wantColumns},
			}
			if got := feedQueries(t, e, "tags"); !reflect.DeepEqual(got, want) {
				t.Errorf("queries:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestTagReadServesEveryKey: one query reads every allocate_by key; the
// reads of the other keys for the same months take their records without
// a request, once each; other months, or a key read again, query anew.
func TestTagReadServesEveryKey(t *testing.T) {
	e := newEnv(t, handTagged())
	p := e.provider(t, func(o *gcp.Options) { o.TagKeys = []string{"team", "k8s-namespace", "project:env"} })
	queries := func() int { return e.fake.Queries(gcpfake.KindTags) }
	reads := []struct {
		key    string
		months []provider.Month
		want   int // queries so far
	}{
		{"team", []provider.Month{jan24}, 1},
		{"k8s-namespace", []provider.Month{jan24}, 1},
		{"project:env", []provider.Month{jan24}, 1},
		{"team", []provider.Month{jan24}, 2},
		{"k8s-namespace", []provider.Month{jan24, feb24}, 3},
		{"team", []provider.Month{feb24, jan24, jan24}, 3},
	}
	for _, r := range reads {
		got := readTags(t, p, r.key, r.months...)
		if n := queries(); n != r.want {
			t.Errorf("after reading %s of %v: %d queries, want %d", r.key, r.months, n, r.want)
		}
		// A kept read serves what a fresh one would.
		fresh := readTags(t, newEnv(t, handTagged()).provider(t, nil), r.key, r.months...)
		if !reflect.DeepEqual(got, fresh) {
			t.Errorf("%s of %v:\n got %+v\nwant %+v", r.key, r.months, got, fresh)
		}
	}
}

// TestTagCostsAddUpToCosts: on the demo's generator, every key's records
// have the cost feed's series, and per series their values add up to its
// cost; the values are the fake's own.
func TestTagCostsAddUpToCosts(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := gcpfake.Sample(now, 3)
	ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
	p := newEnv(t, ds).provider(t, func(o *gcp.Options) { o.TagKeys = []string{"team", "project:env"} })
	last := gcpfake.LatestPublished(now)
	months := provider.Range(last-1, provider.MonthOf(now))
	costs := map[provider.Month]map[labelKey]float64{}
	for _, r := range readCosts(t, p, months...) {
		if costs[r.Month] == nil {
			costs[r.Month] = map[labelKey]float64{}
		}
		costs[r.Month][keyOf(r)] += r.CostUSD
	}
	for _, key := range []string{"team", "project:env", "k8s-namespace"} {
		recs := readTags(t, p, key, months...)
		for _, m := range months {
			cells := map[labelKey]float64{}
			values := map[string]float64{}
			for _, r := range recs {
				if r.Month == m {
					cells[keyOf(r.Record)] += r.CostUSD
					values[r.Value] += r.CostUSD
				}
			}
			if !maps.EqualFunc(cells, costs[m], near) {
				t.Errorf("%s, %s: series %v, the cost feed's %v", key, m, cells, costs[m])
			}
			if want := ds.TagTotals(m, key); !maps.EqualFunc(values, want, near) {
				t.Errorf("%s, %s: values %v, the fake's %v", key, m, values, want)
			}
		}
	}
	if got := ds.TagTotals(last, "team"); len(got) < 4 || got[""] <= 0 {
		t.Errorf("the sample's team values %v: want several and untagged cost", got)
	}
}

// TestTagHighCardinality: a key of 150 values in one series comes back
// whole; folding them is the core's.
func TestTagHighCardinality(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := gcpfake.Sample(now, 1).WithValues("customer", 150)
	ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
	last := gcpfake.LatestPublished(now)
	recs := readTags(t, newEnv(t, ds).provider(t, nil), "customer", last)
	cells := map[labelKey]map[string]bool{}
	values := map[string]float64{}
	for _, r := range recs {
		if cells[keyOf(r.Record)] == nil {
			cells[keyOf(r.Record)] = map[string]bool{}
		}
		cells[keyOf(r.Record)][r.Value] = true
		values[r.Value] += r.CostUSD
	}
	most := 0
	for _, vs := range cells {
		most = max(most, len(vs))
	}
	if most != 151 || len(values) != 151 {
		t.Errorf("%d values in the busiest series, %d in all; want 150 and the untagged", most, len(values))
	}
	if want := ds.TagTotals(last, "customer"); !maps.EqualFunc(values, want, near) {
		t.Errorf("values differ from the fake's")
	}
}

// TestTagKeyRefused: a project label's prefix without a key is no key.
func TestTagKeyRefused(t *testing.T) {
	_, err := newEnv(t, handTagged()).provider(t, nil).ReadTagCosts(t.Context(), []provider.Month{jan24}, "project:")
	if provider.ReasonOf(err) != provider.ReasonBadRequest || !strings.Contains(err.Error(), "key of a project label") {
		t.Errorf("ReadTagCosts(project:) = %v, want a bad request that says why", err)
	}
	if _, err := gcp.New(t.Context(), gcp.Options{Project: project, CarbonTable: carbonTable, TagKeys: []string{"project:a:b"}}); err == nil {
		t.Error("New took a project label key with a colon")
	}
}

// TestTagAllocation: the records Fetch reads, split by what the tag feed
// reads (allocation.Fold and Split, as the exporter does), give each
// value what the fake's own reference gives it by both methods, top-N
// folding as the case predicts; the values of a month add up to its
// unallocated emissions by both methods.
func TestTagAllocation(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	last := gcpfake.LatestPublished(now)
	ours := func(ds gcpfake.Dataset) gcpfake.Dataset {
		ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
		return ds
	}
	// A zone of the web series without a market-based figure: the
	// series has none, the data team's BigQuery still has its own.
	partMarket := handTagged()
	partMarket.Carbon = append(slices.Clone(partMarket.Carbon), gcpfake.CarbonRow{Month: jan24, BillingAccountID: billingAcct,
		ProjectID: "web", Service: "Compute Engine", Location: "us-central1-c", Region: "us-central1", Scope1: 1, Scope2Location: 2, Scope3: 3})
	for _, tt := range []struct {
		name  string
		ds    gcpfake.Dataset
		month provider.Month
		key   string
		// top is the values kept, values how many the key has.
		top, values int
	}{
		{"by hand, every value kept", handTagged(), jan24, "team", 100, 2},
		{"a series partly without market-based", partMarket, jan24, "team", 100, 2},
		{"before 2023: no market-based, no cost", handTagged(), dec22, "team", 100, 0},
		{"every value kept", ours(gcpfake.Sample(now, 1)), last, "team", 100, 3},
		{"two kept, the rest folded", ours(gcpfake.Sample(now, 1)), last, "team", 2, 3},
		{"a project label", ours(gcpfake.Sample(now, 1)), last, "project:env", 100, 1},
		{"GKE namespaces, two kept", ours(gcpfake.Demo(now)), last, "k8s-namespace", 2, 4},
		{"150 values in one series, 100 kept", ours(gcpfake.Sample(now, 1).WithValues("customer", 150)), last, "customer", 100, 150},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newEnv(t, tt.ds).provider(t, nil)
			recs := fetch(t, p, tt.month).Records
			tags, folded := allocation.Fold(readTags(t, p, tt.key, tt.month), tt.top)
			if folded.Values != tt.values || folded.Kept != min(tt.top, tt.values) {
				t.Errorf("folded %+v, want %d values, %d kept", folded, tt.values, min(tt.top, tt.values))
			}
			got := allocatedByValue(allocation.Split(recs, tags))
			if _, other := got[allocation.Other]; other != (tt.values > tt.top) {
				t.Errorf("values %v: %s present %v, want %v", slices.Sorted(maps.Keys(got)), allocation.Other, other, tt.values > tt.top)
			}
			want := tt.ds.ReferenceAllocation(tt.month, tt.key, tt.top)
			if len(got) != len(want) {
				t.Errorf("values %v, want %+v", slices.Sorted(maps.Keys(got)), want)
			}
			var sum fakehttp.Allocated
			for _, w := range want {
				g := got[w.Value]
				if !near(g.Grams, w.Grams) || !sameMarket(g.Market, w.Market) {
					t.Errorf("%s: %v g, %v g market-based; want %v and %v", w.Value, g.Grams, g.Market, w.Grams, w.Market)
				}
				sum.Grams += g.Grams
				sum.Market += g.Market
			}
			total := tt.ds.Totals(tt.month)
			if !total.MarketKnown {
				total.MarketGrams = math.NaN()
			}
			if total.LocationGrams == 0 || !near(sum.Grams, total.LocationGrams) || !sameMarket(sum.Market, total.MarketGrams) {
				t.Errorf("the values add up to %v g, %v g market-based; the month's emissions are %v and %v",
					sum.Grams, sum.Market, total.LocationGrams, total.MarketGrams)
			}
		})
	}
}

// allocatedByValue sums the emissions parts per value, by each method the
// part's record has (NaN for a method none of the value's parts has);
// parts of cost records, which carry none, are not values' emissions.
func allocatedByValue(parts []allocation.Part) map[string]fakehttp.Allocated {
	out := map[string]fakehttp.Allocated{}
	for _, part := range parts {
		if !part.Has(provider.Emissions) {
			continue
		}
		a, ok := out[part.Value]
		if !ok {
			a = fakehttp.Allocated{Value: part.Value, Market: math.NaN()}
		}
		a.Grams += part.EmissionsGrams
		if part.Has(provider.EmissionsMarketBased) {
			a.Market = nanAdd(a.Market, part.MarketBasedGrams)
		}
		out[part.Value] = a
	}
	return out
}

func nanAdd(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return a + b
}

// sameMarket: both figures are absent (NaN), or near.
func sameMarket(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return near(a, b)
}

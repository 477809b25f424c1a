package oci_test

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/allocation"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

// tagEnv starts the fake with dataset()'s cost as of costNow, tagged by
// teams and cost centres.
func tagEnv(t *testing.T) (*env, oci.Options) {
	t.Helper()
	e, opts := costEnv(t, dataset())
	e.fake.SetDataset(e.fake.Dataset().WithTags(teams, costCenters))
	return e, opts
}

func tagCosts(t *testing.T, p *oci.Provider, key string, months ...provider.Month) ([]provider.TagCost, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.TagCosts(ctx, months, key)
}

// byValue sums tag records per month and value.
func byValue(t *testing.T, recs []provider.TagCost) map[provider.Month]map[string]float64 {
	t.Helper()
	got := map[provider.Month]map[string]float64{}
	for _, r := range recs {
		if r.Provider != "oci" || r.Known != provider.Cost {
			t.Errorf("not a cost record: %+v", r)
		}
		if got[r.Month] == nil {
			got[r.Month] = map[string]float64{}
		}
		got[r.Month][r.Value] += r.CostUSD
	}
	return got
}

type tagBody struct {
	costBody
	GroupByTag []map[string]any `json:"groupByTag"`
}

// TestTagQueries checks what the tag feed asks for and what it makes of
// the answers, for each spelling of a key: the cost feed's query, grouped
// by the one tag too, and the fake's own totals per value.
func TestTagQueries(t *testing.T) {
	for _, tt := range []struct {
		name, key     string
		tag           map[string]any
		namespace, tk string // the fake's
		values        []string
	}{
		{name: "a free-form tag", key: "team", tag: map[string]any{"namespace": "None", "key": "team"},
			namespace: ocifake.FreeformNamespace, tk: "team", values: teams.Values},
		{name: "a defined tag", key: "Operations.CostCenter", tag: map[string]any{"namespace": "Operations", "key": "CostCenter"},
			namespace: "Operations", tk: "CostCenter", values: costCenters.Values},
		{name: "a defined tag in another case", key: "operations.costcenter", tag: map[string]any{"namespace": "operations", "key": "costcenter"},
			namespace: "Operations", tk: "CostCenter", values: costCenters.Values},
		{name: "a key nothing carries", key: "Operations.Nothing", tag: map[string]any{"namespace": "Operations", "key": "Nothing"},
			namespace: "Operations", tk: "Nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, opts := tagEnv(t)
			p := newProvider(t, opts)
			recs, err := tagCosts(t, p, tt.key, jan26, feb26, mar26)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range e.fake.CostBodies() {
				var q tagBody
				if err := json.Unmarshal(raw, &q); err != nil {
					t.Fatal(err)
				}
				if q.QueryType != "COST" || q.Granularity != "MONTHLY" || !slices.Equal(q.GroupBy, []string{"service", "region", "compartmentPath"}) ||
					len(q.GroupByTag) != 1 || !maps.Equal(q.GroupByTag[0], tt.tag) {
					t.Errorf("query %s", raw)
				}
			}
			want := e.fake.Dataset().TagTotals(tt.namespace, tt.tk)
			got := byValue(t, recs)
			values := map[string]bool{}
			for _, m := range []provider.Month{jan26, feb26, mar26} {
				// Whole 64ths of a dollar: exact through the SDK's float32.
				if !maps.Equal(got[m], want[m]) {
					t.Errorf("%s: %v, want %v", m, got[m], want[m])
				}
				for v := range got[m] {
					values[v] = true
				}
			}
			// Cost without the tag is "", and the tag's values are
			// served as they are.
			if got, want := slices.Sorted(maps.Keys(values)), append([]string{""}, tt.values...); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("values %q, want %q", got, want)
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if n := e.fake.Requests(ocifake.OpCost); n != 1 || !maps.Equal(e.requests, map[string]int{"summarized_usages_by_tag": 1}) {
				t.Errorf("%d requests, observed %v; want one summarized_usages_by_tag", n, e.requests)
			}
		})
	}
}

// TestTagCells checks that the tag feed splits each cell of the cost
// feed, keyed alike: the values of a cell add up to its cost.
func TestTagCells(t *testing.T) {
	e, opts := tagEnv(t)
	opts.CompartmentDepth = 1
	p := newProvider(t, opts)
	recs, err := tagCosts(t, p, "team", jan26, feb26, mar26)
	if err != nil {
		t.Fatal(err)
	}
	cells := map[costLabels]float64{}
	cellsOf := map[string]map[costLabels]bool{}
	for _, r := range recs {
		k := costLabels{r.Account, r.Service, r.Location, r.Month}
		cells[k] += r.CostUSD
		if cellsOf[r.Value] == nil {
			cellsOf[r.Value] = map[costLabels]bool{}
		}
		cellsOf[r.Value][k] = true
	}
	compareCosts(t, cells, wantCosts(e.fake.Dataset(), 1, jan26, feb26, mar26))
	// A value spans several cells, and cost without the tag is a value.
	if len(cellsOf["web"]) < 2 || len(cellsOf[""]) == 0 {
		t.Errorf("cells per value: %v", cellsOf)
	}
}

// tagItem is a cost item of January grouped by a tag, tags being the
// item's tags member.
func tagItem(amount, tags string) string {
	return costItem(amount, "USD", `,"tags":`+tags)
}

// TestTagValues checks the reading of the tags of an answer's items:
// the value of the tag grouped by, "" for an item that carries none, and
// an item that carries another tag refused.
func TestTagValues(t *testing.T) {
	for _, tt := range []struct {
		name, key, tags string
		want            map[string]float64
		wantErr         string
	}{
		{name: "a value", key: "team", tags: `[{"namespace":"None","key":"team","value":"web"}]`, want: map[string]float64{"web": 2}},
		{name: "a null value", key: "team", tags: `[{"namespace":"None","key":"team","value":null}]`, want: map[string]float64{"": 2}},
		{name: "an empty value", key: "team", tags: `[{"namespace":"None","key":"team","value":""}]`, want: map[string]float64{"": 2}},
		{name: "a blank value", key: "team", tags: `[{"namespace":"None","key":"team","value":"  "}]`, want: map[string]float64{"": 2}},
		{name: "spaces around", key: "team", tags: `[{"namespace":"None","key":"team","value":" web "}]`, want: map[string]float64{"web": 2}},
		{name: "no tags", key: "team", tags: `[]`, want: map[string]float64{"": 2}},
		{name: "null tags", key: "team", tags: `null`, want: map[string]float64{"": 2}},
		{name: "no namespace or key", key: "team", tags: `[{"value":"web"}]`, want: map[string]float64{"web": 2}},
		{name: "another case", key: "Operations.CostCenter", tags: `[{"namespace":"OPERATIONS","key":"costcenter","value":"cc-1"}]`,
			want: map[string]float64{"cc-1": 2}},
		{name: "a long value", key: "team", tags: `[{"namespace":"None","key":"team","value":"` + strings.Repeat("x", 300) + `"}]`,
			want: map[string]float64{strings.Repeat("x", 256) + "…": 2}},
		{name: "another tag", key: "team", tags: `[{"namespace":"None","key":"owner","value":"bob"}]`,
			wantErr: `RequestSummarizedUsages by tag: malformed response: an item carries the tag "None.owner", which the query did not group by`},
		{name: "the tag twice", key: "team", tags: `[{"namespace":"None","key":"team","value":"a"},{"namespace":"None","key":"team","value":"b"}]`,
			wantErr: "an item carries the tag it is grouped by twice"},
		{name: "tags of another shape", key: "team", tags: `{"team":"web"}`, wantErr: "RequestSummarizedUsages by tag: malformed response"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, opts := tagEnv(t)
			p := newProvider(t, opts)
			e.fake.Inject(ocifake.OpCost, costPage(tagItem("1.5", tt.tags), tagItem("0.5", tt.tags)))
			recs, err := tagCosts(t, p, tt.key, jan26)
			if tt.wantErr != "" {
				if err == nil || provider.ReasonOf(err) != provider.ReasonMalformed || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want malformed_response saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := byValue(t, recs)[jan26]; !maps.Equal(got, tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTagErrors checks the tag feed's failures: they say what allocate_by
// needs, and a key that cannot be an OCI tag is refused before any
// request.
func TestTagErrors(t *testing.T) {
	for _, tt := range []struct {
		name, key    string
		setup        func(*ocifake.Server)
		reason       provider.Reason
		wantIn       []string
		wantRequests int
	}{
		{name: "denied", key: "team", setup: func(f *ocifake.Server) { f.Deny() }, reason: provider.ReasonPermission, wantRequests: 1,
			wantIn: []string{"RequestSummarizedUsages by tag: 404 NotAuthorizedOrNotFound", "read usage-report in tenancy", "or remove allocate_by"}},
		{name: "a tag OCI rejects", key: "Nope.team", reason: provider.ReasonBadRequest, wantRequests: 1, setup: func(f *ocifake.Server) {
			f.Inject(ocifake.OpCost, ocifake.ErrorFault(http.StatusBadRequest, "InvalidParameter", "Tag namespace Nope does not exist."))
		}, wantIn: []string{"400 InvalidParameter: Tag namespace Nope does not exist.", "check that allocate_by names a tag of the tenancy"}},
		{name: "not an OCI tag", key: "a.b.c", reason: provider.ReasonBadRequest,
			wantIn: []string{`oci: allocate_by key "a.b.c": an OCI tag is Namespace.key for a defined tag or key for a free-form tag`}},
		{name: "an empty key", key: "", reason: provider.ReasonBadRequest, wantIn: []string{`allocate_by key ""`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, opts := tagEnv(t)
			if tt.setup != nil {
				tt.setup(e.fake)
			}
			_, err := tagCosts(t, newProvider(t, opts), tt.key, jan26)
			if got := provider.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason %s (%v), want %s", got, err, tt.reason)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := e.fake.Requests(ocifake.OpCost); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
		})
	}
}

// TestFeedsConfig checks that a source's Provider has the feeds its
// entry asks for and no other: cost for provisional months, tags for
// allocate_by.
func TestFeedsConfig(t *testing.T) {
	dir := t.TempDir()
	configFile, _ := writeConfig(t, dir)
	for _, tt := range []struct {
		extra      string
		cost, tags bool
	}{
		{"", false, false},
		{"    provisional: false\n", false, false},
		{"    provisional: true\n", true, false},
		{"    allocate_by: [team]\n", false, true},
		{"    provisional: true\n    allocate_by: [team]\n", true, true},
		{"    allocate_by: []\n", false, false},
	} {
		cfg, p := newSource(t, []byte("oci:\n  - config_file: "+configFile+"\n"+tt.extra))
		_, cost := p.(provider.CostFeed)
		_, tags := p.(provider.TagFeed)
		if cost != tt.cost || tags != tt.tags || p.Name() != "oci" {
			t.Errorf("%q: cost feed %v, tag feed %v, name %q; want %v, %v", tt.extra, cost, tags, p.Name(), tt.cost, tt.tags)
		}
		if a := cfg.(provider.AllocatingSource).Allocation(); a.Top != provider.DefaultAllocationTop {
			t.Errorf("%q: allocation %+v", tt.extra, a)
		}
	}
}

// newSource parses the configuration text, whose one source is an oci
// entry, and builds that source's Provider.
func newSource(t *testing.T, text []byte) (provider.SourceConfig, provider.Provider) {
	t.Helper()
	c, err := config.Parse(text, "c.yml", func(string) string { return "" }, []provider.Plugin{oci.Plugin()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Sources[0].Config.New(context.Background(), provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return c.Sources[0].Config, p
}

// TestTagAllocation: the records Fetch reads, split by what TagCosts
// reads (allocation.Fold and Split, as the exporter does), give each value
// what the fake's own reference gives it, location- and market-based,
// top-N folding included; the values of a month add up to its
// unallocated emissions in each method.
func TestTagAllocation(t *testing.T) {
	tagged := dataset().WithCosts(costNow).WithTags(teams, costCenters)
	// costDataset's compartments are deeper than depth 2, so both feeds
	// merge them; its largest cell of February carries 150 values. The
	// spend-only service goes, as its cell would be the largest and
	// power-based figures leave it out: the values would fold with no
	// emissions to split.
	many := costDataset(costNow)
	many.Rows = slices.DeleteFunc(many.Rows, func(r ocifake.Row) bool { return r.SpendOnly })
	many = many.WithCosts(costNow).WithTags(teams, costCenters).WithManyValues(ocifake.FreeformNamespace, tagKey, 150)
	for _, tt := range []struct {
		name   string
		ds     ocifake.Dataset
		month  provider.Month
		key    string
		a      ocifake.Allocation
		method string
	}{
		{"every value kept", tagged, jan26, tagKey, ocifake.Allocation{Top: 100}, oci.MethodPowerBased},
		{"every value kept, spend-based", tagged, jan26, tagKey, ocifake.Allocation{Top: 100}, oci.MethodSpendBased},
		{"two kept, the rest folded", tagged, jan26, tagKey, ocifake.Allocation{Top: 2}, oci.MethodPowerBased},
		{"a defined tag, one kept, at depth 1", tagged, jan26, "Operations.CostCenter",
			ocifake.Allocation{Namespace: "Operations", Key: "CostCenter", Depth: 1, Top: 1}, oci.MethodPowerBased},
		{"150 values in one cell, 100 kept", many, feb26, tagKey, ocifake.Allocation{Depth: 2, Top: 100}, oci.MethodPowerBased},
		{"150 values in one cell, 100 kept, spend-based", many, feb26, tagKey, ocifake.Allocation{Depth: 2, Top: 100}, oci.MethodSpendBased},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A case's Allocation leaves out what is the free-form team
			// tag at the entry's default depth; its method is the
			// case's, in the fake's spelling.
			a := tt.a
			a.Namespace, a.Key = cmp.Or(a.Namespace, ocifake.FreeformNamespace), cmp.Or(a.Key, tagKey)
			a.Depth = cmp.Or(a.Depth, oci.DefaultCompartmentDepth)
			a.Method = map[string]string{oci.MethodPowerBased: ocifake.PowerBased, oci.MethodSpendBased: ocifake.SpendBased}[tt.method]
			e := newEnv(t, tt.ds)
			opts := e.options()
			opts.Now = func() time.Time { return costNow }
			opts.Method, opts.CompartmentDepth = tt.method, a.Depth
			p := newProvider(t, opts)
			res, err := fetch(t, p, tt.month)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := tagCosts(t, p, tt.key, tt.month)
			if err != nil {
				t.Fatal(err)
			}
			tags, folded := allocation.Fold(recs, a.Top)
			got := allocate(res.Records, tags)
			want := tt.ds.ReferenceAllocation(tt.month, a)
			if len(got) != len(want) || folded.Kept > a.Top {
				t.Errorf("values %v, want %+v; %+v", got, want, folded)
			}
			for _, w := range want {
				g := got[w.Value]
				for _, q := range []struct {
					name          string
					got, want     float64
					known, wanted bool
				}{
					{"location-based", g.location, w.Grams, g.known&provider.Emissions != 0, !math.IsNaN(w.Grams)},
					{"market-based", g.market, w.Market, g.known&provider.EmissionsMarketBased != 0, !math.IsNaN(w.Market)},
				} {
					if q.known != q.wanted || q.wanted && math.Abs(q.got-q.want) > 1e-9*math.Abs(q.want) {
						t.Errorf("%s: %v g %s (known %v), want %v", w.Value, q.got, q.name, q.known, q.want)
					}
				}
			}
			location, market := tt.ds.TotalBase(tt.month, a.Method)
			var sum allocated
			for _, g := range got {
				sum.location += g.location
				sum.market += g.market
			}
			if market == 0 || math.Abs(sum.location-location) > 1e-9*location || math.Abs(sum.market-market) > 1e-9*market {
				t.Errorf("the values add up to %v g location-based and %v market-based, the month's emissions are %v and %v",
					sum.location, sum.market, location, market)
			}
		})
	}
}

// allocated is what a value of a tag was allocated of a month.
type allocated struct {
	location, market float64
	known            provider.Quantity
}

// allocate splits records by tags as the exporter does, summed per value.
func allocate(records []provider.Record, tags []provider.TagCost) map[string]allocated {
	got := map[string]allocated{}
	for _, part := range allocation.Split(records, tags) {
		g := got[part.Value]
		g.location += part.EmissionsGrams
		g.market += part.MarketBasedGrams
		g.known |= part.Known
		got[part.Value] = g
	}
	return got
}

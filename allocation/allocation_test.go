package allocation

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

const jan = provider.Month(2026*12 + 0)

func item(account, service, location string, grams, market float64) provider.Record {
	known := provider.Emissions
	if market != 0 {
		known |= provider.EmissionsMarketBased
	}
	return provider.Record{Account: account, Service: service, Location: location, Scope: provider.Scope2, Month: jan,
		EmissionsGrams: grams, MarketBasedGrams: market, Known: known}
}

func tag(account, service, location, value string, usd float64) provider.TagCost {
	return provider.TagCost{Record: provider.Record{Month: jan, Account: account, Service: service, Location: location,
		Known: provider.Cost, CostUSD: usd}, Value: value}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// byValue sums the location-based grams per value.
func byValue(ps []Part) map[string]float64 {
	out := map[string]float64{}
	for _, p := range ps {
		out[p.Value] += p.EmissionsGrams
	}
	return out
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		items []provider.Record
		tags  []provider.TagCost
		want  map[string]float64
	}{
		{"cost share in the cell",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 3), tag("a", "compute", "eu", "data", 1), tag("a", "compute", "us", "data", 100)},
			map[string]float64{"web": 75, "data": 25}},
		{"cost without the tag is untagged",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 1), tag("a", "compute", "eu", "", 3)},
			map[string]float64{"web": 25, Untagged: 75}},
		{"a cell without cost takes its service's shares in the account",
			[]provider.Record{item("a", "compute", "ap", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 1), tag("a", "compute", "us", "data", 1), tag("a", "storage", "eu", "ops", 8)},
			map[string]float64{"web": 50, "data": 50}},
		{"a service without cost takes its account's shares",
			[]provider.Record{item("a", "network", "eu", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 1), tag("a", "storage", "eu", "ops", 3), tag("b", "network", "eu", "x", 9)},
			map[string]float64{"web": 25, "ops": 75}},
		{"an account without cost is untagged, not split by another's",
			[]provider.Record{item("c", "compute", "eu", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 1)},
			map[string]float64{Untagged: 100}},
		{"tags the provider cannot group by account apply to every account",
			[]provider.Record{item("c", "compute", "eu", 100, 0)},
			[]provider.TagCost{tag("", "compute", "", "web", 1), tag("", "compute", "", "data", 4)},
			map[string]float64{"web": 20, "data": 80}},
		{"tags without location apply to each location of the service",
			[]provider.Record{item("a", "compute", "eu", 100, 0), item("a", "compute", "us", 50, 0)},
			[]provider.TagCost{tag("a", "compute", "", "web", 1), tag("a", "compute", "", "", 1)},
			map[string]float64{"web": 75, Untagged: 75}},
		{"credits take no share",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 2), tag("a", "compute", "eu", "promo", -5)},
			map[string]float64{"web": 100}},
		{"a cell whose cost is all credit falls back to a coarser one",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "promo", -5), tag("a", "storage", "us", "ops", 1)},
			map[string]float64{"ops": 100}},
		{"no tags at all",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			nil,
			map[string]float64{Untagged: 100}},
		{"an estimate matched per account (service and location all)",
			[]provider.Record{item("a", "all", "all", 100, 0)},
			[]provider.TagCost{tag("a", "compute", "eu", "web", 1), tag("a", "storage", "us", "ops", 1)},
			map[string]float64{"web": 50, "ops": 50}},
		{"emissions as the weight",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			[]provider.TagCost{
				{Record: provider.Record{Month: jan, Account: "a", Service: "compute", Location: "eu", Known: provider.Emissions, EmissionsGrams: 30}, Value: "rg-1"},
				{Record: provider.Record{Month: jan, Account: "a", Service: "compute", Location: "eu", Known: provider.Emissions, EmissionsGrams: 10}, Value: "rg-2"},
			},
			map[string]float64{"rg-1": 75, "rg-2": 25}},
		{"another month's tags do not apply",
			[]provider.Record{item("a", "compute", "eu", 100, 0)},
			[]provider.TagCost{{Record: provider.Record{Month: jan + 1, Account: "a", Service: "compute", Location: "eu", Known: provider.Cost, CostUSD: 1}, Value: "web"}},
			map[string]float64{Untagged: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := byValue(Split(tt.items, tt.tags))
			if len(got) != len(tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
			for v, w := range tt.want {
				if !near(got[v], w) {
					t.Errorf("%s: %v, want %v (all: %v)", v, got[v], w, got)
				}
			}
		})
	}
}

func TestSplitKeepsMethodsAndScopes(t *testing.T) {
	items := []provider.Record{item("a", "compute", "eu", 100, 40), item("a", "compute", "eu", 10, 0)}
	items[1].Scope = provider.Scope3
	got := Split(items, []provider.TagCost{tag("a", "compute", "eu", "web", 1), tag("a", "compute", "eu", "data", 3)})
	want := map[string][3]float64{ // grams, market-based, known
		"2/web": {25, 10, float64(provider.Emissions | provider.EmissionsMarketBased)}, "2/data": {75, 30, float64(provider.Emissions | provider.EmissionsMarketBased)},
		"3/web": {2.5, 0, float64(provider.Emissions)}, "3/data": {7.5, 0, float64(provider.Emissions)},
	}
	if len(got) != len(want) {
		t.Fatalf("%d parts, want %d: %+v", len(got), len(want), got)
	}
	for _, a := range got {
		w, ok := want[string(a.Scope)+"/"+a.Value]
		if !ok || !near(a.EmissionsGrams, w[0]) || !near(a.MarketBasedGrams, w[1]) || float64(a.Known) != w[2] {
			t.Errorf("%+v, want %v", a, w)
		}
	}
}

// TestSplitConserves: on a random estate with partial, coarse, negative
// and missing cost, every item's parts add up to it, per method.
func TestSplitConserves(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	accounts, services, locations := []string{"a", "b", "c", ""}, []string{"compute", "storage", "net", ""}, []string{"eu", "us", "ap", ""}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	var items []provider.Record
	for range 500 {
		it := item(pick(accounts[:3]), pick(services[:3]), pick(locations[:3]), rng.Float64()*1e6, rng.Float64()*1e6)
		it.EnergyJoules, it.Known = rng.Float64()*1e9, it.Known|provider.Energy
		it.Month = jan + provider.Month(rng.IntN(3))
		it.Scope = []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3}[rng.IntN(3)]
		items = append(items, it)
	}
	var tags []provider.TagCost
	for range 2000 {
		tc := tag(pick(accounts), pick(services), pick(locations), fmt.Sprintf("v%d", rng.IntN(40)), rng.Float64()*100-5)
		if rng.IntN(5) == 0 {
			tc.Value = ""
		}
		tc.Month = jan + provider.Month(rng.IntN(4))
		tags = append(tags, tc)
	}
	folded, _ := Fold(tags, 10)
	for _, tg := range [][]provider.TagCost{tags, folded} {
		want, got := map[provider.Record][3]float64{}, map[provider.Record][3]float64{}
		strip := func(r provider.Record) provider.Record {
			return provider.Record{Account: r.Account, Service: r.Service, Location: r.Location, Scope: r.Scope, Month: r.Month}
		}
		for _, r := range items {
			w := want[strip(r)]
			want[strip(r)] = [3]float64{w[0] + r.EmissionsGrams, w[1] + r.MarketBasedGrams, w[2] + r.EnergyJoules}
		}
		for _, p := range Split(items, tg) {
			g := got[strip(p.Record)]
			got[strip(p.Record)] = [3]float64{g[0] + p.EmissionsGrams, g[1] + p.MarketBasedGrams, g[2] + p.EnergyJoules}
		}
		if len(got) != len(want) {
			t.Fatalf("%d cells allocated, %d given", len(got), len(want))
		}
		for k, w := range want {
			if g := got[k]; !near(g[0], w[0]) || !near(g[1], w[1]) || !near(g[2], w[2]) {
				t.Errorf("%+v: parts add up to %v, want %v", k, g, w)
			}
		}
	}
}

func TestFold(t *testing.T) {
	var tags []provider.TagCost
	for i := range 150 {
		// v000 has the most cost, v149 the least; v148 and v149 tie.
		tags = append(tags, tag("a", "compute", "eu", fmt.Sprintf("v%03d", i), float64(1000-min(i, 148))))
	}
	tags = append(tags, tag("a", "compute", "eu", "", 77))
	folded, f := Fold(tags, 100)
	if f.Values != 150 || f.Kept != 100 {
		t.Errorf("values %d, kept %d; want 150, 100", f.Values, f.Kept)
	}
	var wantFolded, total float64
	for i := 100; i < 150; i++ {
		wantFolded += float64(1000 - min(i, 148))
	}
	for i := range 150 {
		total += float64(1000 - min(i, 148))
	}
	if !near(f.Folded, wantFolded) || !near(f.Tagged, total) || !near(f.Weight, total+77) {
		t.Errorf("folded %v, tagged %v, weight %v; want %v, %v, %v", f.Folded, f.Tagged, f.Weight, wantFolded, total, total+77)
	}
	values := map[string]float64{}
	for _, tc := range folded {
		values[tc.Value] += tc.CostUSD
	}
	if len(values) != 102 || !near(values[Other], wantFolded) || values["v099"] == 0 || values["v100"] != 0 || values[""] != 77 {
		t.Errorf("%d values after folding (want 100 + other + untagged), other %v, v099 %v, v100 %v", len(values), values[Other], values["v099"], values["v100"])
	}
	if tags[120].Value != "v120" {
		t.Error("Fold changed its input")
	}
	if same, f := Fold(tags[:10], 100); len(same) != 10 || f.Kept != 10 || f.Folded != 0 {
		t.Errorf("below top: kept %d, folded %v", f.Kept, f.Folded)
	}
}

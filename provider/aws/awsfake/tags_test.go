package awsfake_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
)

// TestCostAndUsageByTag checks grouping by a tag, "key$value" and "key$"
// for cost without it, and filters on its values.
func TestCostAndUsageByTag(t *testing.T) {
	c := newClient(t)
	ds := dataset().WithCosts(costNow).WithTags(awsfake.TeamKey, awsfake.Teams("111111111111"))
	c.fake.SetDataset(ds)
	const period = `"TimePeriod":{"Start":"2025-01-01","End":"2025-04-01"},"Granularity":"MONTHLY","Metrics":["AmortizedCost"]`
	usage := `{"Not":{"Dimensions":{"Key":"RECORD_TYPE","Values":["Credit","Refund","Tax"]}}}`
	for _, tt := range []struct {
		name, body string
		keep       func(awsfake.CostRow) bool
		key        func(awsfake.CostRow) string
	}{
		{"by account and tag", `{` + period + `,"GroupBy":[{"Type":"DIMENSION","Key":"LINKED_ACCOUNT"},{"Type":"TAG","Key":"team"}],"Filter":` + usage + `}`,
			func(awsfake.CostRow) bool { return true }, func(r awsfake.CostRow) string { return r.Account + ",team$" + r.Tags["team"] }},
		{"one value", `{` + period + `,"GroupBy":[{"Type":"DIMENSION","Key":"SERVICE"}],"Filter":{"And":[{"Tags":{"Key":"team","Values":["platform"]}},` + usage + `]}}`,
			func(r awsfake.CostRow) bool { return r.Tags["team"] == awsfake.PlatformTeam }, func(r awsfake.CostRow) string { return r.Service }},
		{"none of the values", `{` + period + `,"GroupBy":[{"Type":"TAG","Key":"team"}],"Filter":{"And":[{"Not":{"Tags":{"Key":"team","Values":["platform","web"]}}},` + usage + `]}}`,
			func(r awsfake.CostRow) bool { return r.Tags["team"] != awsfake.PlatformTeam && r.Tags["team"] != "web" },
			func(r awsfake.CostRow) string { return "team$" + r.Tags["team"] }},
		{"a key nothing carries", `{` + period + `,"GroupBy":[{"Type":"TAG","Key":"aws:eks:namespace"}],"Filter":` + usage + `}`,
			func(awsfake.CostRow) bool { return true }, func(awsfake.CostRow) string { return "aws:eks:namespace$" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p costPage
			if code, _, b := c.costAndUsage(tt.body, &p); code != 200 {
				t.Fatalf("%d %s", code, b)
			}
			got := map[string]float64{}
			p.sum(t, "AmortizedCost", got)
			want := map[string]float64{}
			for _, r := range ds.Costs {
				if r.RecordType == awsfake.RecordUsage && tt.keep(r) {
					want[r.Month.Start().Format("2006-01-02")+" "+tt.key(r)] += r.Amortized
				}
			}
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("groups %v, want %v", got, want)
			}
			for k, w := range want {
				if math.Abs(got[k]-w) > 1e-9 {
					t.Errorf("%s: %v, want %v", k, got[k], w)
				}
			}
		})
	}
}

// TestTeams checks the demo's team tag: a few values, one of them in
// several accounts, an account without the tag and untagged cost in the
// others, and the cost of every line what it was before the tags.
func TestTeams(t *testing.T) {
	ds := awsfake.Demo(costNow)
	values := map[string]bool{}
	platform := map[string]bool{}
	untaggedIn := map[string]bool{}
	for _, c := range ds.Costs {
		if c.RecordType != awsfake.RecordUsage {
			if len(c.Tags) != 0 {
				t.Errorf("a %s line has tags: %v", c.RecordType, c)
			}
			continue
		}
		v := c.Tags[awsfake.TeamKey]
		values[v] = true
		if v == awsfake.PlatformTeam {
			platform[c.Account] = true
		}
		if v == "" {
			untaggedIn[c.Account] = true
		}
	}
	if want := []string{"", "data", "ml", "platform", "web"}; !slices.Equal(sortedKeys(values), want) {
		t.Errorf("values %v, want %v", sortedKeys(values), want)
	}
	if len(platform) < 2 || len(untaggedIn) < 2 {
		t.Errorf("platform in %v, untagged cost in %v; want several accounts each", platform, untaggedIn)
	}
	for _, c := range ds.Costs {
		if c.Account == "173205080756" && c.Tags[awsfake.TeamKey] != "" {
			t.Errorf("the sandbox account's line is tagged: %v", c)
		}
	}
	var plain awsfake.Dataset
	plain.Costs = slices.Clone(ds.Costs)
	for i := range plain.Costs {
		plain.Costs[i].Tags = nil
	}
	retagged := plain.WithTags(awsfake.TeamKey, awsfake.Teams())
	for i, c := range retagged.Costs {
		if c.Amortized != plain.Costs[i].Amortized || c.Unblended != plain.Costs[i].Unblended {
			t.Fatalf("tagging changed the cost of %v", c)
		}
	}
}

// TestWithManyValues checks the high-cardinality case: one cell's cost
// over 150 values in every month it has cost, the totals unchanged.
func TestWithManyValues(t *testing.T) {
	base := dataset().WithCosts(costNow).WithTags(awsfake.TeamKey, awsfake.Teams())
	ds := base.WithManyValues(awsfake.TeamKey, 150)
	months := 0
	for _, m := range ds.CostMonths() {
		totals := ds.TagTotals(m, awsfake.TeamKey)
		many := 0
		var sum float64
		for v, usd := range totals {
			if strings.HasPrefix(v, "value-") {
				many++
			}
			sum += usd
		}
		switch many {
		case 150:
			months++
		case 0:
		default:
			t.Errorf("%s: %d values of the many, want 150 or none", m, many)
		}
		if want := base.CostTotal(m); math.Abs(sum-want) > 1e-9*want {
			t.Errorf("%s: values add up to %v, the cost is %v", m, sum, want)
		}
	}
	if months == 0 {
		t.Error("no month has the many values")
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

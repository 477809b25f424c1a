package azurefake_test

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// tagQuery is validCostQuery grouped by resource type and tag key.
func (e *env) tagQuery(key string) map[string]any {
	q := e.validCostQuery()
	q["dataset"].(map[string]any)["grouping"] = []map[string]string{{"type": "Dimension", "name": "ResourceType"}, {"type": "TagKey", "name": key}}
	return q
}

// tagRows posts q to the subscription's query, following nextLink, and
// returns the answer's column names and rows.
func (e *env) tagRows(t *testing.T, sub string, q map[string]any) ([]string, [][]any) {
	t.Helper()
	tok := e.token(t, true)
	var names []string
	var rows [][]any
	for path := "/subscriptions/" + sub + costPath; path != ""; {
		code, out := e.costQuery(t, tok, path, q)
		if code != 200 {
			t.Fatalf("%d %v", code, out)
		}
		props := out["properties"].(map[string]any)
		names = names[:0]
		for _, c := range props["columns"].([]any) {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		for _, r := range props["rows"].([]any) {
			rows = append(rows, r.([]any))
		}
		path = ""
		if next, ok := props["nextLink"].(string); ok {
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			path = u.RequestURI()
		}
	}
	return names, rows
}

// TestTagQueryAnswer: a grouping by tag key answers TagKey and TagValue
// in its place, null in both for cost without the tag, paged as any
// query; the values sum to the fake's own totals, per value and resource
// type; a key nothing carries answers every row null.
func TestTagQueryAnswer(t *testing.T) {
	e := newEnv(t)
	may := provider.NewMonth(2025, time.May)
	e.fake.SetCostPageMax(3)
	for _, key := range []string{azurefake.DemoTagKey, "TEAM", azurefake.PVCNamespaceTag, "no-such-key"} {
		want := map[azurefake.TagCostKey]float64{}
		for k, v := range e.ds.TagCostTotals(may, key) {
			if k.SubscriptionID == e.ds.Subscriptions[0].ID {
				want[k] += v
			}
		}
		names, rows := e.tagRows(t, e.ds.Subscriptions[0].ID, e.tagQuery(key))
		if got := strings.Join(names, ","); got != "Cost,CostUSD,ResourceType,TagKey,TagValue,Currency" {
			t.Fatalf("%s: columns %s", key, got)
		}
		got := map[azurefake.TagCostKey]float64{}
		for _, row := range rows {
			switch {
			case row[3] == nil && row[4] == nil:
			case !strings.EqualFold(fmt.Sprint(row[3]), key) || row[4] == nil:
				t.Errorf("%s: row %v", key, row)
			}
			v, _ := row[4].(string)
			got[azurefake.TagCostKey{SubscriptionID: e.ds.Subscriptions[0].ID, ResourceType: row[2].(string), Value: v}] += row[1].(float64)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d cells, want %d", key, len(got), len(want))
		}
		for k, w := range want {
			if math.Abs(got[k]-w) > 1e-9*w {
				t.Errorf("%s %v: %v dollars, want %v", key, k, got[k], w)
			}
		}
		if key == "no-such-key" && (len(want) == 0 || slices.ContainsFunc(rows, func(r []any) bool { return r[3] != nil })) {
			t.Errorf("a key nothing carries: %d cells, rows %v", len(want), rows)
		}
	}
}

// TestDemoTags: the demo's team tag has five values and some untagged
// cost in every month, one value in several cells; the disks of the AKS
// clusters' volumes carry a namespace, nothing else does.
func TestDemoTags(t *testing.T) {
	now := time.Date(2025, 6, 20, 12, 0, 0, 0, time.UTC)
	ds := azurefake.Demo(now)
	for _, m := range ds.CostMonths() {
		teams := ds.TagTotals(m, azurefake.DemoTagKey)
		var total float64
		for _, v := range teams {
			total += v
		}
		if len(teams) != 6 || teams[""] < 0.03*total || teams[""] > 0.4*total {
			t.Errorf("%s: team costs %v: want five teams and some untagged cost", m, teams)
		}
		cells := map[string]int{}
		for k := range ds.TagCostTotals(m, azurefake.DemoTagKey) {
			cells[k.Value]++
		}
		if cells["web"] < 3 {
			t.Errorf("%s: web in %d cells", m, cells["web"])
		}
		if ns := ds.TagTotals(m, azurefake.PVCNamespaceTag); len(ns) < 3 || ns[""] < total/2 {
			t.Errorf("%s: namespaces %v", m, ns)
		}
	}
	for _, c := range ds.Costs {
		if _, ok := c.Tags[azurefake.PVCNamespaceTag]; ok && c.ResourceType != "microsoft.compute/disks" {
			t.Errorf("a namespace on %s", c.ResourceID)
		}
	}
}

// TestWithManyTagValues: n values in one cell, each in every month with
// cost, the first the dearest; the rest of the dataset as it was.
func TestWithManyTagValues(t *testing.T) {
	now := time.Date(2025, 6, 20, 12, 0, 0, 0, time.UTC)
	ds := azurefake.Demo(now)
	many := ds.WithManyTagValues("owner", 150)
	for _, m := range ds.CostMonths() {
		byCell := map[azurefake.TagCostKey]float64{}
		cells := map[string]bool{}
		for k, v := range many.TagCostTotals(m, "owner") {
			byCell[k] = v
			if k.Value != "" {
				cells[k.SubscriptionID+"|"+k.ResourceType] = true
			}
		}
		values := many.TagTotals(m, "owner")
		if len(values) != 151 || len(cells) != 1 || values["value-001"] <= values["value-150"] {
			t.Errorf("%s: %d values in %d cells", m, len(values), len(cells))
		}
		if d := many.CostTotal(m) - ds.CostTotal(m) - (values["value-001"]+values["value-150"])*75; math.Abs(d) > 1e-6 {
			t.Errorf("%s: the values add %v more than their own cost", m, d)
		}
	}
	if len(ds.Costs) == len(many.Costs) {
		t.Error("WithManyTagValues changed its receiver's costs or added none")
	}
}

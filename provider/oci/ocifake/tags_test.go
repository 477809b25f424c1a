package ocifake_test

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

var (
	teams = ocifake.TagPlan{Namespace: ocifake.FreeformNamespace, Key: "team", Values: []string{"web", "data", "ml"}, Untagged: 0.2}
	// Only compute carries a namespace.
	namespaces = ocifake.TagPlan{Namespace: "Kubernetes", Key: "namespace", Values: []string{"shop", "batch"},
		Where: func(c ocifake.CostRow) bool { return c.Service == "COMPUTE" }}
)

type tagItems struct {
	Items []struct {
		TimeUsageStarted string  `json:"timeUsageStarted"`
		ComputedAmount   float64 `json:"computedAmount"`
		CompartmentPath  *string `json:"compartmentPath"`
		Service          *string `json:"service"`
		Region           *string `json:"region"`
		Tags             []struct {
			Namespace string  `json:"namespace"`
			Key       string  `json:"key"`
			Value     *string `json:"value"`
		} `json:"tags"`
	} `json:"items"`
}

// TestTagQuery checks COST queries grouped by a tag: each item carries
// the tag asked for (namespace and key as asked, regardless of case) and
// its value, null for cost without it, and the values add up to the
// dataset's own totals, pages or not.
func TestTagQuery(t *testing.T) {
	c := newClient(t)
	ds := dataset().WithCosts(costNow).WithTags(teams, namespaces)
	c.fake.SetDataset(ds)
	for _, tag := range []string{`{"namespace":"None","key":"team"}`, `{"namespace":"NONE","key":"Team"}`, `{"namespace":"Kubernetes","key":"namespace"}`} {
		body := costQuery("2025-01-01", "2025-04-01", `,"groupBy":["service","region","compartmentPath"],"groupByTag":[`+tag+`]`)
		for _, limit := range []int{0, 1} {
			c.fake.SetPageLimit(limit)
			got := map[provider.Month]map[string]float64{}
			for _, p := range costPages[tagItems](c, body) {
				for _, it := range p.Items {
					if len(it.Tags) != 1 || !strings.Contains(tag, `"`+it.Tags[0].Namespace+`"`) || !strings.Contains(tag, `"`+it.Tags[0].Key+`"`) ||
						it.Tags[0].Value != nil && *it.Tags[0].Value == "" || it.Service == nil || it.CompartmentPath == nil {
						t.Fatalf("%s: item %+v", tag, it)
					}
					m, _ := provider.ParseMonth(it.TimeUsageStarted[:7])
					if got[m] == nil {
						got[m] = map[string]float64{}
					}
					value := ""
					if it.Tags[0].Value != nil {
						value = *it.Tags[0].Value
					}
					got[m][value] += it.ComputedAmount
				}
			}
			ns, key, _ := strings.Cut(strings.NewReplacer(`{"namespace":"`, "", `","key":"`, ".", `"}`, "").Replace(tag), ".")
			want := ds.TagTotals(ns, key)
			for m, w := range want {
				if !maps.EqualFunc(got[m], w, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
					t.Errorf("%s, pages of %d: %s: %v, want %v", tag, limit, m, got[m], w)
				}
			}
		}
	}
}

func TestTagValidation(t *testing.T) {
	c := newClient(t)
	c.fake.SetDataset(dataset().WithCosts(costNow).WithTags(teams))
	for _, tags := range []string{
		`[{"namespace":"None","key":"team"},{"namespace":"Ops","key":"cc"}]`,
		`[{"namespace":"None"}]`,
		`[{"key":"team"}]`,
		`[{"namespace":"None","key":"team","value":"web"}]`,
		`[{"namespace":"None","key":"team","colour":"red"}]`,
		`{"namespace":"None","key":"team"}`,
	} {
		code, _, b := c.do(c.costRequest("", costQuery("2025-01-01", "2025-03-01", `,"groupByTag":`+tags)), nil)
		if code != 400 || !strings.Contains(b, "InvalidParameter") {
			t.Errorf("%s: %d %s", tags, code, b)
		}
	}
}

// TestWithTags checks the tagged dataset: exact parts that add up to no
// more than their row, values that recur across cells, several values
// in a cell, cost without each key, the same split every time.
func TestWithTags(t *testing.T) {
	ds := ocifake.Demo(costNow).WithTags(teams, namespaces)
	if again := ocifake.Demo(costNow).WithTags(teams, namespaces); !slices.EqualFunc(ds.Costs, again.Costs, func(a, b ocifake.CostRow) bool {
		return a.Cost == b.Cost && slices.EqualFunc(a.Tagged, b.Tagged, func(x, y ocifake.TaggedCost) bool { return x.Cost == y.Cost && slices.Equal(x.Tags, y.Tags) })
	}) {
		t.Error("the split differs from one call to the next")
	}
	cells := map[string]map[string]bool{}
	several := 0
	for _, c := range ds.Costs {
		var sum float64
		values := map[string]bool{}
		for _, part := range c.Tagged {
			if part.Cost <= 0 || part.Cost*64 != math.Round(part.Cost*64) {
				t.Fatalf("part %+v of %+v", part, c)
			}
			sum += part.Cost
			for _, tag := range part.Tags {
				if tag.Key == "namespace" && c.Service != "COMPUTE" {
					t.Errorf("a namespace on %s", c.Service)
				}
				if tag.Key == "team" {
					values[tag.Value] = true
					if cells[tag.Value] == nil {
						cells[tag.Value] = map[string]bool{}
					}
					cells[tag.Value][c.CompartmentPath+"|"+c.Service+"|"+c.Region] = true
				}
			}
		}
		if sum >= c.Cost {
			t.Errorf("row %+v: tagged %v of %v, none left without tags", c, sum, c.Cost)
		}
		if len(values) > 1 {
			several++
		}
	}
	for _, v := range teams.Values {
		if len(cells[v]) < 2 {
			t.Errorf("team %s in %d cells", v, len(cells[v]))
		}
	}
	if several == 0 {
		t.Error("no cell has several teams")
	}
	if got := ds.TagValues(ocifake.FreeformNamespace, "team"); !slices.Equal(got, []string{"data", "ml", "web"}) {
		t.Errorf("values %v", got)
	}
	for m, byValue := range ds.TagTotals("Nobody", "nothing") {
		if len(byValue) != 1 || byValue[""] != ds.CostTotal(m) {
			t.Errorf("%s: an unknown tag's totals %v, cost %v", m, byValue, ds.CostTotal(m))
		}
	}
}

// TestWithManyValues checks the high-cardinality cell: n values in one
// cell of the latest month before the current one, cost left without
// them, totals that still add up.
func TestWithManyValues(t *testing.T) {
	ds := ocifake.Demo(costNow).WithTags(teams).WithManyValues(ocifake.FreeformNamespace, "team", 150)
	latest := provider.MonthOf(costNow) - 1
	totals := ds.TagTotals(ocifake.FreeformNamespace, "team")
	if n := len(totals[latest]); n < 151 {
		t.Errorf("%d values in %s", n, latest)
	}
	cells := 0
	for _, c := range ds.Costs {
		if len(c.Tagged) == 150 {
			cells++
			var tagged float64
			for _, part := range c.Tagged {
				tagged += part.Cost
			}
			if c.Month != latest || tagged <= 0 || tagged >= c.Cost {
				t.Errorf("the cell %+v: %v of %v tagged", c, tagged, c.Cost)
			}
		}
	}
	if cells != 1 {
		t.Errorf("%d cells with 150 values", cells)
	}
	for m, byValue := range totals {
		var sum float64
		for _, v := range byValue {
			sum += v
		}
		if math.Abs(sum-ds.CostTotal(m)) > 1e-6 {
			t.Errorf("%s: values add up to %v, cost %v", m, sum, ds.CostTotal(m))
		}
	}
}

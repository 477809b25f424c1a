package azurefake_test

import (
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// TestDemoCosts: the demo's cost covers every subscription from its first
// month to the month in progress, that month in part; its grams per
// dollar are plausible, differ between resource types and regions, and
// drift from month to month; a month's cost does not depend on the clock
// once the month is over.
func TestDemoCosts(t *testing.T) {
	now := time.Date(2025, 6, 20, 12, 0, 0, 0, time.UTC)
	ds := azurefake.Demo(now)
	last, current := azurefake.LatestMonth(now), provider.MonthOf(now)
	months := ds.CostMonths()
	if len(months) == 0 || months[0] != last-11 || months[len(months)-1] != current {
		t.Fatalf("cost months %v, want %s to %s", months, last-11, current)
	}
	subs := map[string]bool{}
	for _, c := range ds.Costs {
		subs[c.SubscriptionID] = true
		if c.USD <= 0 || c.Location != strings.ToLower(c.Location) || strings.Contains(c.Location, " ") || c.ResourceType != strings.ToLower(c.ResourceType) ||
			c.ResourceLocation == "" {
			t.Fatalf("cost %+v", c)
		}
	}
	if len(subs) != len(ds.Subscriptions) {
		t.Errorf("cost of %d subscriptions, want all %d, the one denied to the carbon API included", len(subs), len(ds.Subscriptions))
	}

	// Grams per dollar per resource type and region, per month.
	type key struct{ typ, loc string }
	grams := map[provider.Month]map[key]float64{}
	for _, it := range ds.Items {
		if grams[it.Month] == nil {
			grams[it.Month] = map[key]float64{}
		}
		grams[it.Month][key{it.ResourceType, strings.ReplaceAll(it.Location, " ", "")}] += (it.Scope1 + it.Scope2 + it.Scope3) * 1000
	}
	dollars := map[provider.Month]map[key]float64{}
	for _, c := range ds.Costs {
		if dollars[c.Month] == nil {
			dollars[c.Month] = map[key]float64{}
		}
		dollars[c.Month][key{c.ResourceType, c.Location}] += c.USD
	}
	intensities := map[float64]bool{}
	for m := last - 11; m <= last; m++ {
		for k, g := range grams[m] {
			d := dollars[m][k]
			if d == 0 {
				t.Fatalf("%s %v: emissions without cost", m, k)
			}
			gpd := g / d
			if gpd < 20 || gpd > 500 {
				t.Errorf("%s %v: %v grams per dollar", m, k, gpd)
			}
			intensities[math.Round(gpd*1e6)] = true
			if prev, ok := dollars[m-1][k]; ok && grams[m-1][k] > 0 && math.Abs(grams[m-1][k]/prev-gpd) < 1e-9*gpd {
				t.Errorf("%s %v: the same grams per dollar as the month before", m, k)
			}
		}
	}
	if len(intensities) < 50 {
		t.Errorf("%d distinct intensities: too constant", len(intensities))
	}
	// After the latest published month: no emissions, cost carried on,
	// the month in progress in part.
	for m := last + 1; m <= current; m++ {
		if len(grams[m]) != 0 {
			t.Errorf("%s: emissions of a month not published", m)
		}
	}
	if cur, prev := ds.CostTotal(current), ds.CostTotal(last); cur <= 0 || cur > prev*0.8 {
		t.Errorf("month in progress costs %v against %v for the last full month, on the 20th", cur, prev)
	}
	later := azurefake.Demo(now.AddDate(0, 1, 0))
	if a, b := ds.CostTotal(last), later.CostTotal(last); a != b {
		t.Errorf("cost of %s: %v, a month later %v", last, a, b)
	}
}

const costPath = "/providers/Microsoft.CostManagement/query?api-version=2022-10-01"

func (e *env) validCostQuery() map[string]any {
	return map[string]any{
		"type":       "ActualCost",
		"timeframe":  "Custom",
		"timePeriod": map[string]string{"from": "2025-05-01T00:00:00Z", "to": "2025-05-31T23:59:59Z"},
		"dataset": map[string]any{
			"granularity": "None",
			"aggregation": map[string]any{
				"totalCost":    map[string]string{"name": "Cost", "function": "Sum"},
				"totalCostUSD": map[string]string{"name": "CostUSD", "function": "Sum"},
			},
			"grouping": []map[string]string{{"type": "Dimension", "name": "ResourceType"}, {"type": "Dimension", "name": "ResourceLocation"}},
		},
	}
}

func (e *env) costQuery(t *testing.T, tok, path string, q map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(q)
	code, _, out := e.do(t, "POST", path, tok, strings.NewReader(string(b)), nil)
	return code, out
}

func TestCostQueryValidation(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, true)
	sub := "/subscriptions/" + e.ds.Subscriptions[0].ID
	edit := func(f func(q map[string]any)) map[string]any {
		q := e.validCostQuery()
		f(q)
		return q
	}
	dataset := func(q map[string]any) map[string]any { return q["dataset"].(map[string]any) }
	for _, tt := range []struct {
		name string
		path string
		q    map[string]any
		code int
		want string
	}{
		{"ok", sub + costPath, e.validCostQuery(), 200, ""},
		{"wrong api version", sub + "/providers/Microsoft.CostManagement/query?api-version=2019-11-01", e.validCostQuery(), 400, "InvalidApiVersionParameter"},
		{"unknown subscription", "/subscriptions/99999999-9999-9999-9999-999999999999" + costPath, e.validCostQuery(), 404, "SubscriptionNotFound"},
		{"daily", sub + costPath, edit(func(q map[string]any) { dataset(q)["granularity"] = "Daily" }), 400, "Granularity"},
		{"three groupings", sub + costPath, edit(func(q map[string]any) {
			dataset(q)["grouping"] = []map[string]string{{"type": "Dimension", "name": "ResourceType"}, {"type": "Dimension", "name": "ResourceLocation"}, {"type": "Dimension", "name": "SubscriptionId"}}
		}), 400, "up to 2 group by"},
		{"not a month", sub + costPath, edit(func(q map[string]any) {
			q["timePeriod"] = map[string]string{"from": "2025-05-02T00:00:00Z", "to": "2025-05-31T23:59:59Z"}
		}), 400, "first instant of a month"},
		{"unknown field", sub + costPath, edit(func(q map[string]any) { q["timeframes"] = "Custom" }), 400, "deserialized"},
		{"tag key without a name", sub + costPath, edit(func(q map[string]any) {
			dataset(q)["grouping"] = []map[string]string{{"type": "Dimension", "name": "ResourceType"}, {"type": "TagKey", "name": ""}}
		}), 400, "name of a tag"},
		{"grouping type Tag", sub + costPath, edit(func(q map[string]any) {
			dataset(q)["grouping"] = []map[string]string{{"type": "Tag", "name": "team"}}
		}), 400, "grouping type"},
		{"three groupings with a tag", sub + costPath, edit(func(q map[string]any) {
			dataset(q)["grouping"] = []map[string]string{{"type": "Dimension", "name": "ResourceType"}, {"type": "Dimension", "name": "ResourceLocation"}, {"type": "TagKey", "name": "team"}}
		}), 400, "up to 2 group by"},
		{"average", sub + costPath, edit(func(q map[string]any) {
			dataset(q)["aggregation"] = map[string]any{"x": map[string]string{"name": "Cost", "function": "Avg"}}
		}), 400, "function"},
	} {
		code, out := e.costQuery(t, tok, tt.path, tt.q)
		if code != tt.code || (tt.want != "" && !strings.Contains(errCode(out)+" "+errMessage(out), tt.want)) {
			t.Errorf("%s: %d %v", tt.name, code, out)
		}
	}
	if code, out := e.costQuery(t, "", sub+costPath, e.validCostQuery()); code != 401 {
		t.Errorf("no token: %d %v", code, out)
	}
}

// TestCostQueryAnswer: columns named by what they sum, then the groups,
// then the currency; Cost in the billing currency and CostUSD in dollars;
// rows paged by nextLink with the same body; a skiptoken of another
// query refused.
func TestCostQueryAnswer(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, true)
	var eur azurefake.Subscription
	for _, s := range e.ds.Subscriptions {
		if s.Currency == "EUR" {
			eur = s
		}
	}
	if eur.ID == "" {
		t.Fatal("the demo has no subscription billed in euros")
	}
	e.fake.SetCostPageMax(2)
	path := "/subscriptions/" + eur.ID + costPath
	q := e.validCostQuery()
	var rows []any
	var cols []any
	for page := 0; path != ""; page++ {
		code, out := e.costQuery(t, tok, path, q)
		if code != 200 {
			t.Fatalf("page %d: %d %v", page, code, out)
		}
		props := out["properties"].(map[string]any)
		cols = props["columns"].([]any)
		rows = append(rows, props["rows"].([]any)...)
		path = ""
		if next, ok := props["nextLink"].(string); ok {
			u, err := url.Parse(next)
			if err != nil || !strings.HasPrefix(next, e.ts.URL+"/subscriptions/"+eur.ID) || u.Query().Get("$skiptoken") == "" {
				t.Fatalf("nextLink %q", next)
			}
			path = u.RequestURI()
		}
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "Cost,CostUSD,ResourceType,ResourceLocation,Currency" {
		t.Errorf("columns %v", names)
	}
	var usd float64
	spelled := map[string]bool{}
	for _, r := range rows {
		row := r.([]any)
		spelled[row[3].(string)] = true
		if row[4] != "EUR" || math.Abs(row[0].(float64)-0.92*row[1].(float64)) > 1e-9*row[1].(float64) {
			t.Errorf("row %v", row)
		}
		usd += row[1].(float64)
	}
	var want float64
	for k, v := range e.ds.CostTotals(provider.NewMonth(2025, time.May)) {
		if k.SubscriptionID == eur.ID {
			want += v
		}
	}
	if !spelled["US East"] {
		t.Errorf("locations %v: Cost Management spells East US as US East", spelled)
	}
	if len(rows) < 3 || math.Abs(usd-want) > 1e-9*want {
		t.Errorf("%d rows summing to %v dollars, want %v", len(rows), usd, want)
	}

	// The token of one query does not page another.
	other := e.validCostQuery()
	other["type"] = "AmortizedCost"
	e.fake.SetCostPageMax(1)
	_, out := e.costQuery(t, tok, "/subscriptions/"+eur.ID+costPath, q)
	next := out["properties"].(map[string]any)["nextLink"].(string)
	u, _ := url.Parse(next)
	if code, out := e.costQuery(t, tok, u.RequestURI(), other); code != 400 || !strings.Contains(errMessage(out), "skiptoken") {
		t.Errorf("foreign skiptoken: %d %v", code, out)
	}
}

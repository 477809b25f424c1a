package scalewayfake_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	billing "github.com/scaleway/scaleway-sdk-go/api/billing/v2beta1"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

// TestConsumptions decodes the fake's pages with the SDK's own types:
// every line of the period once across pages, in euros, the total count
// on each page; the lines sum to CostTotal at the fixed rate.
func TestConsumptions(t *testing.T) {
	fake, ts := serve(t)
	fake.SetPageMax(3)
	ds := fake.Dataset()
	m := provider.NewMonth(2025, time.March)
	seen := map[string]bool{}
	var eur float64
	var total uint64
	for page := 1; ; page++ {
		resp, body := get(t, ts, scalewayfake.ConsumptionsPath, url.Values{"organization_id": {ds.OrganizationID},
			"billing_period": {"2025-03"}, "page": {strconv.Itoa(page)}, "page_size": {"100"}, "order_by": {"category_name_asc"}}, key)
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %s", page, resp.StatusCode, body)
		}
		var out billing.ListConsumptionsResponse
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		total = out.TotalCount
		if len(out.Consumptions) > 3 {
			t.Errorf("page %d holds %d lines", page, len(out.Consumptions))
		}
		for _, c := range out.Consumptions {
			k := c.ProjectID + c.Sku
			if seen[k] || c.Value == nil || c.Value.CurrencyCode != "EUR" || c.CategoryName == "" || c.ProductName == "" ||
				c.ConsumerID != ds.OrganizationID {
				t.Errorf("line %+v (seen %v)", c, seen[k])
			}
			seen[k] = true
			eur += float64(c.Value.Units) + float64(c.Value.Nanos)/1e9
		}
		if len(out.Consumptions) == 0 {
			break
		}
	}
	if uint64(len(seen)) != total || total < 10 {
		t.Errorf("%d lines read, total count %d", len(seen), total)
	}
	if want := ds.CostTotal(m); math.Abs(eur*1.08-want) > 1e-9*want {
		t.Errorf("%v euros, %v dollars; want %v dollars", eur, eur*1.08, want)
	}
}

// TestConsumptionQuery: the fake refuses what the API refuses, and
// answers a key without BillingReadOnly as Scaleway does; the footprint's
// permission does not stand for it.
func TestConsumptionQuery(t *testing.T) {
	fake, ts := serve(t)
	org := fake.Dataset().OrganizationID
	for _, tt := range []struct {
		name string
		q    url.Values
		code int
	}{
		{"ok", url.Values{"organization_id": {org}}, 200},
		{"neither organization nor project", url.Values{}, 400},
		{"both", url.Values{"organization_id": {org}, "project_id": {scalewayfake.DemoProjectWeb}}, 400},
		{"project", url.Values{"project_id": {scalewayfake.DemoProjectWeb}}, 200},
		{"other organization", url.Values{"organization_id": {"99999999-9999-4999-8999-999999999999"}}, 403},
		{"bad period", url.Values{"organization_id": {org}, "billing_period": {"2025-13"}}, 400},
		{"large page", url.Values{"organization_id": {org}, "page_size": {"101"}}, 400},
		{"bad order", url.Values{"organization_id": {org}, "order_by": {"cost_desc"}}, 400},
	} {
		if resp, body := get(t, ts, scalewayfake.ConsumptionsPath, tt.q, key); resp.StatusCode != tt.code {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
		}
	}
	fake.Deny(true)
	if resp, body := get(t, ts, scalewayfake.ConsumptionsPath, url.Values{"organization_id": {org}}, key); resp.StatusCode != 200 {
		t.Errorf("footprint denied: %d %s", resp.StatusCode, body)
	}
	fake.DenyBilling(true)
	resp, body := get(t, ts, scalewayfake.ConsumptionsPath, url.Values{"organization_id": {org}}, key)
	var e map[string]any
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusForbidden || e["type"] != "permissions_denied" {
		t.Errorf("billing denied: %d %s", resp.StatusCode, body)
	}
}

// TestDemoConsumptions: the demo's consumption covers every month with
// SKUs, the month in progress in part; its grams per euro are plausible,
// differ between products and drift; a month's cost does not depend on
// the clock once over.
func TestDemoConsumptions(t *testing.T) {
	ds := scalewayfake.Demo(now)
	current := provider.MonthOf(now)
	gramsPerEUR := map[provider.Month]map[string][2]float64{}
	for m := scalewayfake.FirstMonth; m <= current; m++ {
		if ds.CostTotal(m) <= 0 {
			t.Fatalf("%s has no cost", m)
		}
		gramsPerEUR[m] = map[string][2]float64{}
	}
	for _, s := range ds.SKUs {
		v := gramsPerEUR[s.Month][s.ProductCategory]
		v[0] += s.KgCO2e * 1000
		gramsPerEUR[s.Month][s.ProductCategory] = v
	}
	for _, c := range ds.Consumptions {
		if c.Service == "cockpit" {
			continue
		}
		v := gramsPerEUR[c.Month][c.Service]
		v[1] += c.EUR
		gramsPerEUR[c.Month][c.Service] = v
	}
	distinct := map[float64]bool{}
	for m, byProduct := range gramsPerEUR {
		for product, v := range byProduct {
			g := v[0] / v[1]
			if g < 20 || g > 1000 {
				t.Errorf("%s %s: %v grams per euro", m, product, g)
			}
			distinct[math.Round(g*1e6)] = true
		}
	}
	if len(distinct) < 50 {
		t.Errorf("%d distinct intensities: too constant", len(distinct))
	}
	if cur, prev := ds.CostTotal(current), ds.CostTotal(current-1); cur > prev/5 {
		t.Errorf("the month in progress costs %v on its 2nd day, against %v for the month before", cur, prev)
	}
	later := scalewayfake.Demo(now.AddDate(0, 1, 0))
	if a, b := ds.CostTotal(current-1), later.CostTotal(current-1); a != b {
		t.Errorf("cost of %s: %v, a month later %v", current-1, a, b)
	}
}

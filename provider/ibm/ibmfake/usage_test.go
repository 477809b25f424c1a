package ibmfake_test

import (
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// getJSON sends an authorized GET of path and decodes the answer.
func (c *client) getJSON(path string, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.ts.URL+path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

func costDataset() ibmfake.Dataset {
	ds := dataset()
	ds.Costs = []ibmfake.CostRow{
		{AccountID: acc1.ID, Service: "Cloud Object Storage", Location: "Dallas", Month: jan, BillableUSD: 10, NonBillableUSD: 1},
		{AccountID: acc1.ID, Service: "Cloud Object Storage", Location: "London", Month: jan, BillableUSD: 5},
		{AccountID: acc1.ID, Service: "Kubernetes Service", Location: "Dallas", Month: jan, BillableUSD: 20},
		{AccountID: acc2.ID, Service: "Code Engine", Location: "Frankfurt", Month: jan, BillableUSD: 2.5},
		{AccountID: acc2.ID, Service: "Code Engine", Location: "Frankfurt", Month: jan + 1, BillableUSD: 3},
	}
	return ds
}

type summary struct {
	AccountID        string `json:"account_id"`
	Month            string `json:"month"`
	Currency         string `json:"billing_currency_code"`
	AccountResources []struct {
		ResourceID   string  `json:"resource_id"`
		ResourceName string  `json:"resource_name"`
		BillableCost float64 `json:"billable_cost"`
		NonBillable  float64 `json:"non_billable_cost"`
	} `json:"account_resources"`
	Resources struct {
		BillableCost float64 `json:"billable_cost"`
		NonBillable  float64 `json:"non_billable_cost"`
	} `json:"resources"`
	Support []struct {
		Cost float64 `json:"cost"`
	} `json:"support"`
	Errors []struct{ Code, Message string } `json:"errors"`
}

func TestAccountSummary(t *testing.T) {
	c := newClient(t, costDataset())
	var s summary
	if code := c.getJSON("/v4/accounts/"+acc1.ID+"/summary/2023-01", &s); code != 200 {
		t.Fatalf("status %d: %+v", code, s)
	}
	if s.AccountID != acc1.ID || s.Month != "2023-01" || s.Currency != "USD" || len(s.AccountResources) != 2 ||
		s.AccountResources[0].ResourceName != "Cloud Object Storage" || s.AccountResources[0].BillableCost != 15 ||
		s.AccountResources[0].NonBillable != 1 || s.AccountResources[1].BillableCost != 20 || s.AccountResources[0].ResourceID == "" ||
		s.Resources.BillableCost != 35 || s.Resources.NonBillable != 1 || len(s.Support) != 1 || s.Support[0].Cost <= 0 {
		t.Errorf("summary %+v", s)
	}
	// A month without usage: no resources, no support.
	s = summary{}
	if code := c.getJSON("/v4/accounts/"+acc1.ID+"/summary/2023-03", &s); code != 200 || len(s.AccountResources) != 0 || len(s.Support) != 0 {
		t.Errorf("empty month: %d %+v", code, s)
	}
	for path, want := range map[string]int{
		"/v4/accounts/" + acc1.ID + "/summary/2023-13":                 http.StatusBadRequest,
		"/v4/accounts/" + strings.Repeat("9", 32) + "/summary/2023-01": http.StatusForbidden,
	} {
		s = summary{}
		if code := c.getJSON(path, &s); code != want || len(s.Errors) != 1 || s.Errors[0].Code == "" || s.Errors[0].Message == "" {
			t.Errorf("%s: %d %+v, want %d and a platform error", path, code, s, want)
		}
	}
	c.token = ""
	s = summary{}
	if code := c.getJSON("/v4/accounts/"+acc1.ID+"/summary/2023-01", &s); code != http.StatusUnauthorized || len(s.Errors) != 1 {
		t.Errorf("without a token: %d %+v", code, s)
	}
	if n := c.fake.Requests(ibmfake.AccountSummaryPath); n != 5 {
		t.Errorf("%d summary requests counted, want 5", n)
	}
}

type reports struct {
	Limit   int
	Next    *struct{ Href string }
	Reports []struct {
		EntityID     string  `json:"entity_id"`
		EntityType   string  `json:"entity_type"`
		EntityCRN    string  `json:"entity_crn"`
		Month        string  `json:"month"`
		BillableCost float64 `json:"billable_cost"`
		Resources    []struct {
			ResourceID   string  `json:"resource_id"`
			BillableCost float64 `json:"billable_cost"`
		} `json:"resources"`
	}
	Errors []struct{ Code, Message string } `json:"errors"`
}

func TestEnterpriseUsageReports(t *testing.T) {
	c := newClient(t, costDataset())
	var r reports
	if code := c.getJSON(ibmfake.EnterpriseUsagePath+"?enterprise_id="+ent.ID+"&month=2023-01", &r); code != 200 ||
		len(r.Reports) != 1 || r.Reports[0].EntityType != "enterprise" || r.Reports[0].BillableCost != 37.5 {
		t.Errorf("the enterprise's own report: %d %+v", code, r)
	}
	// Its immediate children: the group (acc1's cost) and acc2, in pages
	// of one linked by an opaque offset.
	c.fake.SetPageMax(1)
	got := map[string]float64{}
	path := ibmfake.EnterpriseUsagePath + "?enterprise_id=" + ent.ID + "&children=true&month=2023-01&limit=100"
	for pages := 0; path != ""; pages++ {
		r = reports{}
		if code := c.getJSON(path, &r); code != 200 || len(r.Reports) != 1 || pages > 2 {
			t.Fatalf("%s: %d %+v", path, code, r)
		}
		rep := r.Reports[0]
		got[rep.EntityType+" "+rep.EntityID] += rep.BillableCost
		if rep.Month != "2023-01" || !strings.HasPrefix(rep.EntityCRN, "crn:v1:") || len(rep.Resources) == 0 {
			t.Errorf("report %+v", rep)
		}
		path = ""
		if r.Next != nil {
			i := strings.Index(r.Next.Href, ibmfake.EnterpriseUsagePath)
			path = r.Next.Href[i:]
			if strings.Contains(path, "offset=1&") || strings.HasSuffix(path, "offset=1") {
				t.Errorf("the offset is a plain index: %s", path)
			}
		}
	}
	want := map[string]float64{"account_group " + group.ID: 35, "account " + acc2.ID: 2.5}
	if !maps.Equal(got, want) {
		t.Errorf("children %v, want %v", got, want)
	}
	c.fake.SetPageMax(0)
	for query, code := range map[string]int{
		"?account_id=" + acc1.ID + "&children=true&month=2023-01": http.StatusBadRequest,
		"?enterprise_id=" + ent.ID + "&account_id=" + acc1.ID:     http.StatusBadRequest,
		"?month=2023-01": http.StatusBadRequest,
		"?enterprise_id=" + ent.ID + "&month=2023-1":                   http.StatusBadRequest,
		"?enterprise_id=" + ent.ID + "&month=2023-01&offset=x":         http.StatusBadRequest,
		"?enterprise_id=" + strings.Repeat("f", 32) + "&month=2023-01": http.StatusForbidden,
		"?account_group_id=" + acc1.ID + "&month=2023-01":              http.StatusForbidden,
	} {
		r = reports{}
		if got := c.getJSON(ibmfake.EnterpriseUsagePath+query, &r); got != code || len(r.Errors) != 1 {
			t.Errorf("%s: %d %+v, want %d", query, got, r, code)
		}
	}
	// A standard account is no enterprise.
	ds := costDataset()
	ds.EnterpriseID = ""
	c = newClient(t, ds)
	if code := c.getJSON(ibmfake.EnterpriseUsagePath+"?account_id="+acc1.ID+"&month=2023-01", &r); code != http.StatusForbidden {
		t.Errorf("a standard account's enterprise report: %d", code)
	}
}

func TestCostTotal(t *testing.T) {
	ds := costDataset()
	for _, tt := range []struct {
		entity string
		m      provider.Month
		want   float64
		ok     bool
	}{
		{"", jan, 37.5, true}, {ent.ID, jan, 37.5, true}, {group.ID, jan, 35, true}, {acc2.ID, jan + 1, 3, true},
		{group.ID, jan + 1, 0, false}, {"", jan + 2, 0, false},
	} {
		if got, ok := ds.CostTotal(tt.m, tt.entity); got != tt.want || ok != tt.ok {
			t.Errorf("CostTotal(%s, %q) = %v, %v; want %v, %v", tt.m, tt.entity, got, ok, tt.want, tt.ok)
		}
	}
}

// TestDemoCosts: the demo's usage reports run past its carbon to now, the
// current month to date, from the same footprint, with emissions per
// dollar that vary from month to month within a plausible band; the
// carbon data is what it was.
func TestDemoCosts(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := ibmfake.Demo(now)
	last, cur := ibmfake.LatestPublished(now), provider.MonthOf(now)
	months := map[provider.Month]bool{}
	for _, c := range ds.Costs {
		months[c.Month] = true
		if c.BillableUSD <= 0 || c.NonBillableUSD < 0 {
			t.Errorf("cost row %+v", c)
		}
	}
	if got, want := slices.Sorted(maps.Keys(months)), provider.Range(last-ibmfake.DemoMonths+1, cur); !slices.Equal(got, want) {
		t.Errorf("months of cost %v, want %v", got, want)
	}
	for _, r := range ds.Rows {
		if r.Month > last {
			t.Fatalf("carbon of %s, past %s", r.Month, last)
		}
	}
	// The carbon data does not depend on the usage reports.
	earlier := ibmfake.Demo(last.End().Add(20 * 24 * time.Hour))
	if !slices.Equal(ds.Rows, earlier.Rows) {
		t.Error("the carbon rows changed with the cost")
	}
	intensity := func(m provider.Month) float64 {
		grams, _ := ds.TotalBase(m)
		usd, _ := ds.CostTotal(m, "")
		return grams / usd
	}
	constant := true
	for m := last - 10; m < last; m++ {
		a, b := intensity(m), intensity(m+1)
		if math.Abs(b/a-1) > 0.15 || a < 10 || a > 2000 {
			t.Errorf("grams per dollar %s → %s: %v → %v", m, m+1, a, b)
		}
		constant = constant && math.Abs(b/a-1) < 1e-3
	}
	if constant {
		t.Error("grams per dollar do not change from month to month")
	}
	toDate, _ := ds.CostTotal(cur, "")
	full, _ := ds.CostTotal(last, "")
	if toDate <= 0.4*full || toDate >= 0.9*full {
		t.Errorf("cost to date (20 March) %v, a whole month %v", toDate, full)
	}
	// A standard account of the same generator.
	acct := ibmfake.Account(now, 3)
	if len(acct.Rows) == 0 || len(acct.Costs) == 0 || acct.EnterpriseID != "" {
		t.Errorf("Account: %d rows, %d costs, enterprise %q", len(acct.Rows), len(acct.Costs), acct.EnterpriseID)
	}
}

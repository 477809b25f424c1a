package ocifake_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

// costNow is the cost clock of these tests: March 2025, ten days in;
// February is the dataset's latest month.
var costNow = time.Date(2025, time.March, 11, 0, 0, 0, 0, time.UTC)

// costRequest is a signed cost query.
func (c *client) costRequest(query, body string) *http.Request {
	c.t.Helper()
	req := c.request(query, body)
	req.URL.Path = ocifake.CostPath
	if err := c.sign.Sign(req); err != nil {
		c.t.Fatal(err)
	}
	return req
}

// costPages runs a cost query and every page after it, each answer
// decoded into a T.
func costPages[T any](c *client, body string) []T {
	c.t.Helper()
	var out []T
	for token := ""; ; {
		q := ""
		if token != "" {
			q = "?page=" + token
		}
		var p T
		code, h, b := c.do(c.costRequest(q, body), &p)
		if code != 200 {
			c.t.Fatalf("%d %s", code, b)
		}
		out = append(out, p)
		if token = h.Get("Opc-Next-Page"); token == "" {
			return out
		}
	}
}

type costItems struct {
	Items []struct {
		TimeUsageStarted string   `json:"timeUsageStarted"`
		ComputedAmount   float64  `json:"computedAmount"`
		Currency         string   `json:"currency"`
		CompartmentPath  *string  `json:"compartmentPath"`
		Service          *string  `json:"service"`
		Region           *string  `json:"region"`
		Tags             []string `json:"tags"`
	} `json:"items"`
}

func costQuery(start, end, extra string) string {
	return `{"tenantId":"` + tenancy + `","timeUsageStarted":"` + start + `T00:00:00Z","timeUsageEnded":"` + end + `T00:00:00.000Z",` +
		`"granularity":"MONTHLY","queryType":"COST"` + extra + `}`
}

// TestCost checks COST queries: grouping, compartment depth, the current
// month to date, pages, and amounts that a float32 holds exactly.
func TestCost(t *testing.T) {
	c := newClient(t)
	ds := dataset().WithCosts(costNow)
	c.fake.SetDataset(ds)
	var p costItems
	body := costQuery("2025-01-01", "2025-04-01", `,"groupBy":["service","region","compartmentPath"],"compartmentDepth":1`)
	if code, _, b := c.do(c.costRequest("", body), &p); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	got := map[string]float64{}
	for _, it := range p.Items {
		if it.Currency != "USD" || float64(float32(it.ComputedAmount)) != it.ComputedAmount || it.ComputedAmount <= 0 {
			t.Errorf("item %+v", it)
		}
		got[it.TimeUsageStarted[:7]+" "+*it.CompartmentPath+" "+*it.Service+" "+*it.Region] += it.ComputedAmount
	}
	want := map[string]float64{}
	for _, r := range ds.Costs {
		path := strings.Join(strings.Split(r.CompartmentPath, "/")[:min(2, len(strings.Split(r.CompartmentPath, "/")))], "/")
		want[r.Month.Start().Format("2006-01")+" "+path+" "+r.Service+" "+r.Region] += r.Cost
	}
	if len(got) != len(want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %v, want %v", k, got[k], w)
		}
	}
	// The two compartments under acme/prod are one at depth 1.
	if _, ok := got["2025-01 acme/prod COMPUTE us-ashburn-1"]; !ok {
		t.Errorf("no acme/prod at depth 1 in %v", got)
	}
	// February's keys go on in March, to date.
	feb, mar := got["2025-02 acme/prod COMPUTE us-ashburn-1"], got["2025-03 acme/prod COMPUTE us-ashburn-1"]
	if r := mar / feb; feb == 0 || r < 0.25 || r > 0.45 {
		t.Errorf("March to date USD %v after USD %v in February", mar, feb)
	}
	// A key without emissions in February had no usage then.
	if _, ok := got["2025-02 acme/prod DATABASE us-ashburn-1"]; ok {
		t.Error("cost for a key without usage")
	}

	// Pages of one item add up to the same.
	c.fake.SetPageLimit(1)
	total := 0.0
	pages := costPages[costItems](c, body)
	for _, p := range pages {
		for _, it := range p.Items {
			total += it.ComputedAmount
		}
	}
	var sum float64
	for _, v := range want {
		sum += v
	}
	if len(pages) != len(want) || math.Abs(total-sum) > 1e-9 {
		t.Errorf("%d pages, USD %v; want %d, USD %v", len(pages), total, len(want), sum)
	}
}

func TestCostValidation(t *testing.T) {
	c := newClient(t)
	c.fake.SetDataset(dataset().WithCosts(costNow))
	for _, body := range []string{
		costQuery("2025-01-01", "2025-05-01", ""),
		costQuery("2025-04-01", "2025-05-01", ""),
		costQuery("2025-01-15", "2025-03-01", ""),
		costQuery("2025-03-01", "2025-01-01", ""),
		strings.Replace(costQuery("2025-01-01", "2025-03-01", ""), `"COST"`, `"USAGE"`, 1),
		strings.Replace(costQuery("2025-01-01", "2025-03-01", ""), `"MONTHLY"`, `"DAILY"`, 1),
		costQuery("2025-01-01", "2025-03-01", `,"forecast":{"timeForecastEnded":"2025-06-01T00:00:00Z"}`),
		costQuery("2025-01-01", "2025-03-01", `,"compartmentDepth":1.5`),
		costQuery("2025-01-01", "2025-03-01", `,"groupBy":["skuName"]`),
		costQuery("2025-01-01", "2025-03-01", `,"emissionType":"MARKET_BASED"`),
	} {
		code, _, b := c.do(c.costRequest("", body), nil)
		if code != 400 || !strings.Contains(b, "InvalidParameter") {
			t.Errorf("%s: %d %s", body, code, b)
		}
	}
	if code, _, b := c.do(c.costRequest("", strings.Replace(costQuery("2025-01-01", "2025-03-01", ""), tenancy, "ocid1.tenancy.oc1..other", 1)), nil); code != 404 ||
		!strings.Contains(b, "NotAuthorizedOrNotFound") {
		t.Errorf("another tenancy: %d %s", code, b)
	}
	c.fake.Deny()
	if code, _, b := c.do(c.costRequest("", costQuery("2025-01-01", "2025-03-01", "")), nil); code != 404 {
		t.Errorf("denied: %d %s", code, b)
	}
	if n := c.fake.Requests(ocifake.OpCost); n != 12 || len(c.fake.CostBodies()) != 12 || len(c.fake.Bodies()) != 0 {
		t.Errorf("%d cost requests, %d cost bodies, %d carbon bodies", n, len(c.fake.CostBodies()), len(c.fake.Bodies()))
	}
}

// TestWithCosts checks the demo's cost: from its first month through the
// current one to date, in 64ths of a dollar, with a grams-per-dollar
// intensity that is plausible and drifts slowly.
func TestWithCosts(t *testing.T) {
	ds := ocifake.Demo(costNow)
	if ms := ds.CostMonths(); ms[0] != ds.Months()[0] || ms[len(ms)-1] != provider.MonthOf(costNow) {
		t.Fatalf("cost months %v..%v", ms[0], ms[len(ms)-1])
	}
	type key struct{ path, service, region string }
	grams := map[key]map[provider.Month]float64{}
	for _, r := range ds.Rows {
		k := key{r.CompartmentPath, r.Service, r.Region}
		if grams[k] == nil {
			grams[k] = map[provider.Month]float64{}
		}
		grams[k][r.Month] = r.PowerLocation*1e6 + r.SpendMarket*1e6*float64(btoi(r.SpendOnly))
	}
	cost := map[key]map[provider.Month]float64{}
	for _, c := range ds.Costs {
		if c.Cost*64 != math.Round(c.Cost*64) || float64(float32(c.Cost)) != c.Cost {
			t.Fatalf("cost %v is not a 64th of a dollar", c.Cost)
		}
		k := key{c.CompartmentPath, c.Service, c.Region}
		if cost[k] == nil {
			cost[k] = map[provider.Month]float64{}
		}
		cost[k][c.Month] += c.Cost
	}
	last := ocifake.LatestPublished(costNow)
	moved := 0
	for k, byMonth := range grams {
		prev := 0.0
		for m := last - 12; m <= last; m++ {
			g := byMonth[m] / cost[k][m]
			if g < 5 || g > 1000 {
				t.Fatalf("%+v %s: %v g/USD", k, m, g)
			}
			if prev != 0 && math.Abs(g/prev-1) > 0.2 {
				t.Errorf("%+v %s: %v g/USD after %v", k, m, g, prev)
			}
			if prev != 0 && g != prev {
				moved++
			}
			prev = g
		}
		if cost[k][last+1] <= 0 {
			t.Errorf("%+v: no cost after the latest published month", k)
		}
	}
	if moved == 0 {
		t.Error("the intensities are constant")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

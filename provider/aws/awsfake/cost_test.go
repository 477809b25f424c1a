package awsfake_test

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
)

// costNow is the Cost Explorer clock of these tests: March 2025, ten days
// in; February is the dataset's latest month.
var costNow = time.Date(2025, time.March, 11, 0, 0, 0, 0, time.UTC)

func costClient(t *testing.T) *client {
	t.Helper()
	c := newClient(t)
	c.fake.SetDataset(dataset().WithCosts(costNow))
	return c
}

type costPage struct {
	GroupDefinitions []struct{ Type, Key string }
	ResultsByTime    []struct {
		TimePeriod struct{ Start, End string }
		Groups     []struct {
			Keys    []string
			Metrics map[string]struct{ Amount, Unit string }
		}
		Estimated bool
	}
	NextPageToken string
}

func (c *client) costAndUsage(body string, out any) (int, http.Header, string) {
	c.t.Helper()
	return c.do(c.signed("/", "ce", []byte(body), keys, http.Header{
		"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {awsfake.CostExplorerTarget + awsfake.OpCostAndUsage},
	}), out)
}

// sum adds up a page's amounts of metric per "month key,key".
func (p costPage) sum(t *testing.T, metric string, into map[string]float64) {
	t.Helper()
	for _, r := range p.ResultsByTime {
		for _, g := range r.Groups {
			v := g.Metrics[metric]
			a, err := strconv.ParseFloat(v.Amount, 64)
			if err != nil || v.Unit != "USD" {
				t.Fatalf("%+v", v)
			}
			into[r.TimePeriod.Start+" "+strings.Join(g.Keys, ",")] += a
		}
	}
}

// TestCostAndUsage checks GetCostAndUsage: grouping by two dimensions,
// filters with And and Not, the metric asked for, every period on every
// page, and pages that add up to the dataset.
func TestCostAndUsage(t *testing.T) {
	c := costClient(t)
	ds := c.fake.Dataset()
	body := `{"TimePeriod":{"Start":"2025-01-01","End":"2025-04-01"},"Granularity":"MONTHLY","Metrics":["AmortizedCost"],` +
		`"GroupBy":[{"Type":"DIMENSION","Key":"LINKED_ACCOUNT"},{"Type":"DIMENSION","Key":"SERVICE"}],` +
		`"Filter":{"And":[{"Dimensions":{"Key":"REGION","Values":["us-east-1"]}},{"Not":{"Dimensions":{"Key":"RECORD_TYPE","Values":["Credit","Refund","Tax"]}}}]}}`
	var p costPage
	if code, _, b := c.costAndUsage(body, &p); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if len(p.ResultsByTime) != 3 || p.NextPageToken != "" || len(p.GroupDefinitions) != 2 {
		t.Fatalf("%+v", p)
	}
	got := map[string]float64{}
	p.sum(t, "AmortizedCost", got)
	want := map[string]float64{}
	for _, r := range ds.Costs {
		if r.Region == "us-east-1" && r.RecordType == awsfake.RecordUsage {
			want[r.Month.Start().Format("2006-01-02")+" "+r.Account+","+r.Service] += r.Amortized
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
	// EC2 is billed under two Cost Explorer services.
	if _, ok := got["2025-01-01 111111111111,EC2 - Other"]; !ok {
		t.Errorf("no EC2 - Other in %v", got)
	}
	if r := p.ResultsByTime[2]; !r.Estimated || r.TimePeriod.Start != "2025-03-01" || r.TimePeriod.End != "2025-04-01" {
		t.Errorf("the current month %+v", r)
	}

	// Pages of one group add up to the same, each with every period.
	c.fake.SetPageLimit(1)
	paged := map[string]float64{}
	token := ""
	for n := 0; ; n++ {
		b := body
		if token != "" {
			b = strings.TrimSuffix(b, "}") + `,"NextPageToken":"` + token + `"}`
		}
		var p costPage
		if code, _, msg := c.costAndUsage(b, &p); code != 200 {
			t.Fatalf("%d %s", code, msg)
		}
		if len(p.ResultsByTime) != 3 {
			t.Fatalf("page %d has %d periods", n, len(p.ResultsByTime))
		}
		p.sum(t, "AmortizedCost", paged)
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	if len(paged) != len(got) {
		t.Errorf("pages gave %v, want %v", paged, got)
	}

	// Unblended cost is another figure.
	c.fake.SetPageLimit(0)
	var u costPage
	if code, _, b := c.costAndUsage(strings.Replace(body, "AmortizedCost", "UnblendedCost", 1), &u); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	unblended := map[string]float64{}
	u.sum(t, "UnblendedCost", unblended)
	if k := "2025-01-01 111111111111,EC2 - Other"; unblended[k] == got[k] {
		t.Errorf("unblended %v equals amortized", unblended[k])
	}
}

func TestCostValidation(t *testing.T) {
	c := costClient(t)
	period := func(start, end string) string {
		return `{"TimePeriod":{"Start":"` + start + `","End":"` + end + `"},"Granularity":"MONTHLY","Metrics":["AmortizedCost"]}`
	}
	with := func(member string) string {
		return strings.TrimSuffix(period("2025-01-01", "2025-02-01"), "}") + "," + member + "}"
	}
	for _, tt := range []struct{ body, code, says string }{
		{`{}`, "ValidationException", "required"},
		{period("2025-03-01", "2025-02-01"), "ValidationException", "before end date"},
		{period("2025-02-01", "2025-05-01"), "ValidationException", "end date past the beginning of next month"},
		{period("2025-04-01", "2025-05-01"), "ValidationException", "no later than the current date"},
		{period("2024-01-01", "2024-03-01"), "ValidationException", "too old"},
		{period("2025-01-15", "2025-02-01"), "ValidationException", "whole months"},
		{strings.Replace(period("2025-01-01", "2025-02-01"), "MONTHLY", "DAILY", 1), "ValidationException", "MONTHLY"},
		{strings.Replace(period("2025-01-01", "2025-02-01"), "AmortizedCost", "BlendedCost", 1), "ValidationException", "metrics"},
		{with(`"GroupBy":[{"Type":"DIMENSION","Key":"REGION"},{"Type":"DIMENSION","Key":"SERVICE"},{"Type":"DIMENSION","Key":"LINKED_ACCOUNT"}]`),
			"ValidationException", "up to two"},
		{with(`"GroupBy":[{"Type":"COST_CATEGORY","Key":"team"}]`), "ValidationException", "tags and by the dimensions"},
		{with(`"GroupBy":[{"Type":"TAG","Key":""}]`), "ValidationException", "1 to 1024"},
		{with(`"Filter":{"Tags":{"Key":"team","MatchOptions":["ABSENT"]}}`), "ValidationException", "at least one value"},
		{with(`"Filter":{"Tags":{"Key":"team","Values":["web"],"MatchOptions":["STARTS_WITH"]}}`), "ValidationException", "EQUALS"},
		{with(`"Filter":{"CostCategories":{"Key":"x","Values":["y"]}}`), "ValidationException", "dimensions and tags only"},
		{with(`"Filter":{"Dimensions":{"Key":"REGION","Values":["x"]},"Not":{"Dimensions":{"Key":"REGION","Values":["y"]}}}`),
			"ValidationException", "exactly one root"},
		{with(`"Filter":{"And":[{"Dimensions":{"Key":"REGION","Values":["x"]}}]}`),
			"ValidationException", "at least two"},
		{with(`"NextPageToken":"forged"`), "InvalidNextTokenException", "token"},
		{strings.Replace(period("2025-01-01", "2025-02-01"), `"Metrics"`, `"metrics"`, 1), "ValidationException", "Unknown member"},
	} {
		code, h, b := c.costAndUsage(tt.body, nil)
		if code != 400 || h.Get("X-Amzn-Errortype") != tt.code || !strings.Contains(b, `"__type":"`+tt.code+`"`) || !strings.Contains(b, tt.says) {
			t.Errorf("%s: %d %s %s; want 400 %s saying %q", tt.body, code, h.Get("X-Amzn-Errortype"), b, tt.code, tt.says)
		}
	}
	// A denied identity is told which action it lacks.
	c.fake.Deny(awsfake.ActionCostAndUsage, "")
	if code, _, b := c.costAndUsage(period("2025-01-01", "2025-02-01"), nil); code != 400 || !strings.Contains(b, "AccessDeniedException") ||
		!strings.Contains(b, awsfake.ActionCostAndUsage) {
		t.Errorf("denied: %d %s", code, b)
	}
	// Signed for another service.
	req := c.signed("/", "sustainability", []byte(period("2025-01-01", "2025-02-01")), keys, http.Header{
		"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {awsfake.CostExplorerTarget + awsfake.OpCostAndUsage}})
	if code, _, b := c.do(req, nil); code != 403 || !strings.Contains(b, "InvalidSignatureException") {
		t.Errorf("signed for sustainability: %d %s", code, b)
	}
}

// TestWithCosts checks the cost the fake derives from its emissions: from
// each key's first month through the current one to date, none after; a
// grams-per-dollar intensity that is plausible and moves a little from
// month to month; taxes and credits besides.
func TestWithCosts(t *testing.T) {
	ds := awsfake.Demo(costNow)
	last := awsfake.LatestPublished(costNow)
	if ms := ds.CostMonths(); ms[len(ms)-1] != provider.MonthOf(costNow) || ms[0] != ds.Months()[0] {
		t.Fatalf("cost months %v..%v, want %v..%v", ms[0], ms[len(ms)-1], ds.Months()[0], provider.MonthOf(costNow))
	}
	type key struct{ account, region, service string }
	grams := map[key]map[provider.Month]float64{}
	for _, r := range ds.Rows {
		k := key{r.Account, r.Region, r.Service}
		if grams[k] == nil {
			grams[k] = map[provider.Month]float64{}
		}
		grams[k][r.Month] = (r.Scope1 + r.Scope2LBM + r.Scope3LBM) * 1e6
	}
	cost := map[key]map[provider.Month]float64{}
	types := map[string]bool{}
	for _, c := range ds.Costs {
		types[c.RecordType] = true
		if c.RecordType != awsfake.RecordUsage {
			continue
		}
		for k := range grams {
			if k.account == c.Account && k.region == c.Region && slices.Contains(awsfake.CostExplorerNames(k.service), c.Service) {
				if cost[k] == nil {
					cost[k] = map[provider.Month]float64{}
				}
				cost[k][c.Month] += c.Amortized
			}
		}
	}
	if !types[awsfake.RecordTax] || !types[awsfake.RecordCredit] {
		t.Errorf("record types %v, want taxes and credits too", types)
	}
	moved := 0
	for k, byMonth := range grams {
		prev := 0.0
		for m := last - 12; m <= last; m++ {
			intensity := byMonth[m] / cost[k][m]
			if intensity < 3 || intensity > 1000 {
				t.Fatalf("%+v %s: %v g/USD", k, m, intensity)
			}
			if prev != 0 && math.Abs(intensity/prev-1) > 0.2 {
				t.Errorf("%+v %s: %v g/USD after %v: not a slow drift", k, m, intensity, prev)
			}
			if prev != 0 && intensity != prev {
				moved++
			}
			prev = intensity
		}
		// Unpublished months have cost; the current one about a third of
		// a month (ten days of 31).
		after, current := cost[k][last+1], cost[k][provider.MonthOf(costNow)]
		if ratio := current / after; after == 0 || ratio < 0.25 || ratio > 0.45 {
			t.Errorf("%+v: current month USD %v after USD %v for the whole last one", k, current, after)
		}
	}
	if moved == 0 {
		t.Error("the intensities are constant")
	}
	// The demo's emissions do not depend on its cost.
	if again := awsfake.Demo(costNow.AddDate(0, 0, 3)); !slices.Equal(again.Rows, ds.Rows) {
		t.Error("the cost moved the emissions")
	}
}

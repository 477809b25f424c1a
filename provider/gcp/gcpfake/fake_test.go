package gcpfake_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

func TestDemo(t *testing.T) {
	now := time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
	ds := gcpfake.Demo(now)
	later := gcpfake.Demo(now.Add(8 * 24 * time.Hour))
	if !reflect.DeepEqual(ds.Carbon, later.Carbon) {
		t.Error("Demo's carbon is not deterministic within a month")
	}
	// The billing export grows: a later demo holds the same rows, and
	// those exported since.
	var toDate []gcpfake.BillingRow
	for _, r := range later.Billing {
		if !r.ExportTime.After(now) {
			toDate = append(toDate, r)
		}
	}
	if !reflect.DeepEqual(ds.Billing, toDate) || len(toDate) == len(later.Billing) {
		t.Errorf("Demo's billing is not the later demo's exported by now (%d rows, later %d of %d)",
			len(ds.Billing), len(toDate), len(later.Billing))
	}
	last := gcpfake.LatestPublished(now)
	first := last.Add(-(gcpfake.DemoMonths - 1))
	projects, services, locations, versions := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[int64]bool{}
	noProject := 0
	for _, r := range ds.Carbon {
		if r.Month < first || r.Month > last {
			t.Fatalf("carbon row of %s outside %s..%s", r.Month, first, last)
		}
		if r.ProjectID == "" {
			noProject++
		} else {
			projects[r.ProjectID] = true
		}
		services[r.Service] = true
		locations[strings.ToLower(r.Location)] = true
		versions[r.ModelVersion] = true
		if (r.Scope2Market == nil) != (r.Month < provider.NewMonth(2023, time.January)) {
			t.Errorf("%s: market-based present = %v", r.Month, r.Scope2Market != nil)
		}
	}
	if len(projects) < 4 || len(projects) > 5 || noProject == 0 {
		t.Errorf("projects %v, rows without project %d", projects, noProject)
	}
	if len(services) < 8 || len(services) > 10 {
		t.Errorf("services %v: want 8 to 10", services)
	}
	if len(locations) < 5 {
		t.Errorf("locations %v: want at least 5", locations)
	}
	if len(versions) != 2 {
		t.Errorf("model versions %v: want one change", versions)
	}
	var credits, nonUSD, noProjectCost bool
	for _, r := range ds.Billing {
		credits = credits || len(r.CreditMicros) > 0
		nonUSD = nonUSD || (r.Currency != "USD" && r.ConversionRate != 1)
		noProjectCost = noProjectCost || r.ProjectID == ""
	}
	if !credits || !nonUSD || !noProjectCost {
		t.Errorf("billing: credits %v, non-USD %v, rows without project %v", credits, nonUSD, noProjectCost)
	}
	tot := ds.Totals(last)
	if tot.LocationGrams <= 0 || !tot.MarketKnown || tot.MarketGrams <= 0 || tot.MarketGrams >= tot.LocationGrams || tot.CostUSD <= 0 {
		t.Errorf("latest totals implausible: %+v", tot)
	}
}

// TestDemoCostPastCarbon: the demo's billing export runs past its carbon
// export to now, the current month to date, and its cost follows the same
// footprint, the account's emissions per dollar changing from month to
// month within a plausible band.
func TestDemoCostPastCarbon(t *testing.T) {
	now := time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
	ds := gcpfake.Demo(now)
	last, cur := gcpfake.LatestPublished(now), provider.MonthOf(now)
	months := map[provider.Month]bool{}
	for _, r := range ds.Billing {
		months[r.InvoiceMonth] = true
		if r.ExportTime.After(now) {
			t.Fatalf("a billing row exported at %s, after now", r.ExportTime)
		}
	}
	for m := last - 2; m <= cur; m++ {
		if !months[m] {
			t.Errorf("no billing of %s", m)
		}
		if _, ok := ds.Served(m)[provider.Cost]; !ok {
			t.Errorf("no cost served for %s", m)
		}
	}
	for _, r := range ds.Carbon {
		if r.Month > last {
			t.Fatalf("carbon of %s, past the latest published %s", r.Month, last)
		}
	}
	// Grams per dollar of the whole account: not constant, not erratic.
	intensity := func(m provider.Month) float64 { t := ds.Totals(m); return t.LocationGrams / t.CostUSD }
	constant := true
	for m := last - 10; m < last; m++ {
		a, b := intensity(m), intensity(m+1)
		if change := b/a - 1; change > 0.15 || change < -0.15 {
			t.Errorf("grams per dollar %s → %s: %v → %v", m, m+1, a, b)
		}
		constant = constant && math.Abs(b/a-1) < 1e-3
	}
	if constant {
		t.Error("grams per dollar do not change from month to month")
	}
	// The current month to date holds less than a whole month.
	if to, full := ds.Served(cur)[provider.Cost], ds.Served(last)[provider.Cost]; to <= 0 || to >= full {
		t.Errorf("cost to date %v, latest whole month %v", to, full)
	}
}

// TestCostDrift: from DemoCostDriftSince on (in Sample, always) each
// series' emissions per dollar move on their own, month by month; before
// it the demo's move together, with the exchange rate only.
func TestCostDrift(t *testing.T) {
	now := time.Date(2027, time.June, 20, 12, 0, 0, 0, time.UTC)
	type series struct{ project, service, location string }
	// spread returns, per month, how far apart the series' month-on-month
	// changes of grams per EUR are: the largest less the smallest.
	spread := func(ds gcpfake.Dataset) map[provider.Month]float64 {
		grams := map[series]map[provider.Month]float64{}
		eur := map[series]map[provider.Month]float64{}
		add := func(m map[series]map[provider.Month]float64, k series, month provider.Month, v float64) {
			if m[k] == nil {
				m[k] = map[provider.Month]float64{}
			}
			m[k][month] += v
		}
		for _, r := range ds.Carbon {
			add(grams, series{r.ProjectID, r.Service, strings.ToLower(r.Location)}, r.Month, r.Scope1+r.Scope2Location+r.Scope3)
		}
		for _, r := range ds.Billing {
			loc := r.Region
			if loc == "" {
				loc = r.Location
			}
			// Before credits, which are not the point.
			add(eur, series{r.ProjectID, r.Service, strings.ToLower(loc)}, r.InvoiceMonth, float64(r.CostMicros))
		}
		lo, hi := map[provider.Month]float64{}, map[provider.Month]float64{}
		for k, g := range grams {
			for m := range g {
				if _, ok := g[m-1]; !ok || eur[k][m] == 0 || eur[k][m-1] == 0 {
					continue
				}
				change := (g[m] / eur[k][m]) / (g[m-1] / eur[k][m-1])
				if _, ok := lo[m]; !ok {
					lo[m], hi[m] = change, change
				}
				lo[m], hi[m] = min(lo[m], change), max(hi[m], change)
			}
		}
		out := map[provider.Month]float64{}
		for m := range lo {
			out[m] = hi[m] - lo[m]
		}
		return out
	}
	for m, d := range spread(gcpfake.Demo(now)) {
		if drifting := m >= gcpfake.DemoCostDriftSince; (drifting && d < 0.01) || (!drifting && d > 0.001) {
			t.Errorf("%s: the series' changes of grams per EUR spread over %v; drifting: %v", m, d, drifting)
		}
	}
	for m, d := range spread(gcpfake.Sample(now, 6)) {
		if d < 0.01 {
			t.Errorf("Sample, %s: the series' grams per EUR moved alike (spread %v)", m, d)
		}
	}
}

func TestTotalsBefore2023HaveNoMarketBased(t *testing.T) {
	dec := provider.NewMonth(2022, time.December)
	mb := 1.0
	ds := gcpfake.Dataset{Carbon: []gcpfake.CarbonRow{
		{Month: dec, Scope1: 1, Scope2Location: 2, Scope3: 3},
		{Month: dec + 1, Scope1: 1, Scope2Location: 2, Scope2Market: &mb, Scope3: 3},
	}}
	if got := ds.Totals(dec); got.MarketKnown || got.MarketGrams != 0 || got.LocationGrams != 6000 {
		t.Errorf("December 2022 totals %+v", got)
	}
	if got := ds.Totals(dec + 1); !got.MarketKnown || got.MarketGrams != 5000 {
		t.Errorf("January 2023 totals %+v", got)
	}
}

func TestEncodeRow(t *testing.T) {
	got, err := json.Marshal(gcpfake.EncodeRow([]any{
		"a", nil, int64(42), 1.5, gcpfake.Record{"x", nil}, []any{gcpfake.Record{"k", 2.0}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"f":[{"v":"a"},{"v":null},{"v":"42"},{"v":"1.5"},{"v":{"f":[{"v":"x"},{"v":null}]}},{"v":[{"v":{"f":[{"v":"k"},{"v":"2"}]}}]}]}`
	if string(got) != want {
		t.Errorf("EncodeRow:\n got %s\nwant %s", got, want)
	}
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	return decode(t, resp)
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	return decode(t, resp)
}

func decode(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return resp.StatusCode, m
}

// TestWireFormat checks the fake's answers against BigQuery's REST shapes
// directly, without the Go client.
func TestWireFormat(t *testing.T) {
	m := provider.NewMonth(2024, time.January)
	ds := gcpfake.Dataset{CarbonTable: "p.d.carbon_footprint", Location: "US", Carbon: []gcpfake.CarbonRow{
		{Month: m, ProjectID: "a", Service: "S", Location: "US", Scope1: 1, Scope2Location: 2, Scope3: 3, ModelVersion: 4},
		{Month: m, ProjectID: "b", Service: "S", Location: "US", Scope1: 1, Scope2Location: 2, Scope3: 3, ModelVersion: 4},
		{Month: m, ProjectID: "c", Service: "S", Location: "US", Scope1: 1, Scope2Location: 2, Scope3: 3, ModelVersion: 4},
	}}
	fake := gcpfake.NewServer(ds)
	fake.SetPageSize(2)
	fake.SetIncompletePolls(2)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	base := ts.URL + gcpfake.BasePath + "projects/p/queries"

	const query = `{"query":"-- cloudcarbon:carbon\nSELECT 1 FROM ` + "`p.d.carbon_footprint`" + `","useLegacySql":false,"maximumBytesBilled":"20000000",
		"queryParameters":[{"name":"months","parameterType":{"type":"ARRAY","arrayType":{"type":"DATE"}},"parameterValue":{"arrayValues":[{"value":"2024-01-01"}]}},
		{"name":"billing_account","parameterType":{"type":"STRING"},"parameterValue":{"value":""}}]}`
	code, resp := post(t, base, query)
	if code != 200 || resp["jobComplete"] != false {
		t.Fatalf("jobs.query: %d %v", code, resp)
	}
	job := resp["jobReference"].(map[string]any)["jobId"].(string)
	if _, resp = get(t, base+"/"+job); resp["jobComplete"] != false {
		t.Fatalf("first poll: %v", resp)
	}
	_, resp = get(t, base+"/"+job)
	if resp["jobComplete"] != true || resp["totalRows"] != "3" || resp["pageToken"] != "row-2" || len(resp["rows"].([]any)) != 2 {
		t.Fatalf("second poll: %v", resp)
	}
	row := resp["rows"].([]any)[0].(map[string]any)["f"].([]any)
	if row[0].(map[string]any)["v"] != "2024-01-01" || row[2].(map[string]any)["v"] != "a" || row[9].(map[string]any)["v"] != nil {
		t.Errorf("row %v", row)
	}
	_, resp = get(t, base+"/"+job+"?pageToken=row-2")
	if _, more := resp["pageToken"]; more || len(resp["rows"].([]any)) != 1 {
		t.Errorf("last page: %v", resp)
	}
	_, resp = get(t, ts.URL+gcpfake.BasePath+"projects/p/jobs/"+job)
	if st := resp["statistics"].(map[string]any); st["totalBytesProcessed"] != "480" || resp["status"].(map[string]any)["state"] != "DONE" {
		t.Errorf("jobs.get: %v", resp)
	}

	// Errors as BigQuery writes them.
	code, resp = post(t, base, `{"query":"SELECT 1","useLegacySql":false}`)
	if code != 400 || resp["error"].(map[string]any)["errors"].([]any)[0].(map[string]any)["reason"] != "invalidQuery" {
		t.Errorf("foreign query: %d %v", code, resp)
	}
	code, resp = post(t, base, strings.Replace(query, "20000000", "1000", 1))
	if code != 400 || !strings.Contains(resp["error"].(map[string]any)["message"].(string), "Query exceeded limit for bytes billed: 1000. 10485760 or higher required.") {
		t.Errorf("bytes limit: %d %v", code, resp)
	}
	code, _ = get(t, base+"/no-such-job")
	if code != 404 {
		t.Errorf("unknown job: %d", code)
	}
	fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: gcpfake.KindBilling, Status: 403, Body: gcpfake.ErrorBody(403, "accessDenied", "no")})
	if code, _ = post(t, base, query); code != 200 {
		t.Errorf("a billing fault hit a carbon query: %d", code)
	}
	if n := fake.Queries(gcpfake.KindCarbon); n != 2 {
		t.Errorf("carbon queries = %d, want 2", n)
	}
}

// TestServiceAccount: the token endpoint refuses an assertion the key did
// not sign, and BigQuery requests without the issued token get 401.
func TestServiceAccount(t *testing.T) {
	acct, err := gcpfake.NewServiceAccount("my-project")
	if err != nil {
		t.Fatal(err)
	}
	fake := gcpfake.NewServer(gcpfake.Dataset{})
	fake.RequireServiceAccount(acct)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	unsigned := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIifQ.c2ln" // {"alg":"RS256"}.{"iss":""}.sig
	resp, err := http.PostForm(ts.URL+gcpfake.TokenPath, url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {unsigned}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if code, body := decode(t, resp); code != 400 || body["error"] != "invalid_grant" {
		t.Errorf("unsigned assertion: %d %v", code, body)
	}
	if code, _ := get(t, ts.URL+gcpfake.BasePath+"projects/p/queries/j"); code != 401 {
		t.Errorf("query without the token: %d, want 401", code)
	}
}

// TestTagTotals: every key's values split the month's cost and add no
// cost; the demo's keys have several values besides untagged cost, and a
// value shared by several series; WithValues adds one series of many
// values.
func TestTagTotals(t *testing.T) {
	now := time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
	ds := gcpfake.Demo(now)
	last := gcpfake.LatestPublished(now)
	for _, tt := range []struct {
		key    string
		values []string
	}{
		{"team", []string{"", "data", "ml", "platform", "web"}},
		{"k8s-namespace", append([]string{""}, gcpfake.DemoNamespaces...)},
		// The support fee's line item names no project.
		{"project:env", []string{"", "prod", "staging"}},
		{"no-such-key", []string{""}},
	} {
		got := ds.TagTotals(last, tt.key)
		var sum float64
		for _, usd := range got {
			sum += usd
		}
		if want := ds.Totals(last).CostUSD; math.Abs(sum-want) > 1e-9*want {
			t.Errorf("%s: values add up to %v, the month's cost is %v", tt.key, sum, want)
		}
		if len(got) != len(tt.values) {
			t.Errorf("%s: values %v, want %v", tt.key, got, tt.values)
		}
		for _, v := range tt.values {
			if got[v] <= 0 {
				t.Errorf("%s: value %q has cost %v", tt.key, v, got[v])
			}
		}
	}
	series := map[string]bool{}
	for _, r := range ds.Billing {
		for _, l := range r.Labels {
			if r.InvoiceMonth == last && l.Key == "team" && l.Value == "web" {
				series[r.ProjectID+"/"+r.Service+"/"+r.Region] = true
			}
		}
	}
	if len(series) < 3 {
		t.Errorf("team web labels %d series, want several", len(series))
	}
	if ds.TagTotals(last+12, "team") != nil {
		t.Error("a month without billing has values")
	}

	many := ds.WithValues("customer", 150)
	got := many.TagTotals(last, "customer")
	if len(got) != 151 {
		t.Errorf("WithValues(150): %d values, want 150 and untagged", len(got))
	}
	if want := ds.Totals(last).CostUSD; got["v149"] <= 0 || math.Abs(got[""]-want) > 1e-9*want {
		t.Errorf("WithValues: v149 %v, untagged %v (the month's cost before %v)", got["v149"], got[""], ds.Totals(last).CostUSD)
	}
}

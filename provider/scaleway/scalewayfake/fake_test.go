package scalewayfake_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	ef "github.com/scaleway/scaleway-sdk-go/api/environmental_footprint/v1alpha1"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

const key = "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e"

var now = time.Date(2025, time.June, 2, 12, 0, 0, 0, time.UTC)

func serve(t *testing.T) (*scalewayfake.Server, *httptest.Server) {
	t.Helper()
	fake := scalewayfake.NewServer(scalewayfake.Demo(now), key)
	fake.SetNow(func() time.Time { return now })
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	return fake, ts
}

func get(t *testing.T, ts *httptest.Server, path string, q url.Values, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestImpactData decodes the fake's answer with the SDK's own types and
// checks that every level's total is the float32 sum of what it holds,
// that region-level SKUs sit outside the zones, and that a month's SKUs
// match Totals.
func TestImpactData(t *testing.T) {
	_, ts := serve(t)
	m := provider.NewMonth(2025, time.March)
	q := url.Values{"organization_id": {scalewayfake.DemoOrganizationID},
		"start_date": {m.Start().Format(time.RFC3339)}, "end_date": {m.End().Format(time.RFC3339)}}
	resp, body := get(t, ts, scalewayfake.ImpactDataPath, q, key)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var data ef.ImpactDataResponse
	if err := json.Unmarshal(body, &data); err != nil {
		t.Fatal(err)
	}
	if !data.StartDate.Equal(m.Start()) || !data.EndDate.Equal(m.End()) {
		t.Errorf("period %s to %s", data.StartDate, data.EndDate)
	}
	f32 := func(xs ...float64) float32 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return float32(s)
	}
	got := map[scalewayfake.TotalKey]scalewayfake.Total{}
	regionSKUs := 0
	var projects []float64
	for _, p := range data.Projects {
		var regions []float64
		for _, r := range p.Regions {
			var skus []float64
			add := func(s *ef.SkuImpact) {
				skus = append(skus, float64(s.TotalSkuImpact.KgCo2Equivalent))
				k := scalewayfake.TotalKey{Project: p.ProjectID, ProductCategory: string(s.ProductCategory), Region: string(r.Region)}
				v := got[k]
				v.Grams += float64(s.TotalSkuImpact.KgCo2Equivalent) * 1000
				v.CubicMeters += float64(s.TotalSkuImpact.M3WaterUsage)
				got[k] = v
			}
			for _, s := range r.Skus {
				regionSKUs++
				add(s)
			}
			for _, z := range r.Zones {
				if !strings.HasPrefix(string(z.Zone), string(r.Region)+"-") {
					t.Errorf("zone %s in region %s", z.Zone, r.Region)
				}
				var zs []float64
				for _, s := range z.Skus {
					zs = append(zs, float64(s.TotalSkuImpact.KgCo2Equivalent))
					add(s)
				}
				if z.TotalZoneImpact.KgCo2Equivalent != f32(zs...) {
					t.Errorf("zone %s total %v, want %v", z.Zone, z.TotalZoneImpact.KgCo2Equivalent, f32(zs...))
				}
			}
			if r.TotalRegionImpact.KgCo2Equivalent != f32(skus...) {
				t.Errorf("region %s total %v, want %v", r.Region, r.TotalRegionImpact.KgCo2Equivalent, f32(skus...))
			}
			regions = append(regions, float64(r.TotalRegionImpact.KgCo2Equivalent))
		}
		if p.TotalProjectImpact.KgCo2Equivalent != f32(regions...) {
			t.Errorf("project %s total %v", p.ProjectID, p.TotalProjectImpact.KgCo2Equivalent)
		}
		projects = append(projects, float64(p.TotalProjectImpact.KgCo2Equivalent))
	}
	if data.TotalImpact.KgCo2Equivalent != f32(projects...) {
		t.Errorf("total %v", data.TotalImpact.KgCo2Equivalent)
	}
	if regionSKUs == 0 {
		t.Error("the demo has no SKU tied to a region")
	}
	want := scalewayfake.Demo(now).Totals(m)
	if len(got) != len(want) {
		t.Errorf("%d keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g := got[k]; math.Abs(g.Grams-w.Grams) > 1e-9*w.Grams || math.Abs(g.CubicMeters-w.CubicMeters) > 1e-9*w.CubicMeters {
			t.Errorf("%+v: %+v, want %+v", k, g, w)
		}
	}
}

// TestQuery checks the parameters as the SDK sends them: repeated keys
// for lists, RFC 3339 dates, and the API's refusals.
func TestQuery(t *testing.T) {
	_, ts := serve(t)
	m := provider.NewMonth(2025, time.March)
	base := func() url.Values {
		return url.Values{"organization_id": {scalewayfake.DemoOrganizationID},
			"start_date": {m.Start().Format(time.RFC3339)}, "end_date": {m.End().Format(time.RFC3339)}}
	}
	projects := func(q url.Values) map[string]bool {
		_, body := get(t, ts, scalewayfake.ImpactDataPath, q, key)
		var data ef.ImpactDataResponse
		if err := json.Unmarshal(body, &data); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		out := map[string]bool{}
		for _, p := range data.Projects {
			out[p.ProjectID] = true
		}
		return out
	}
	q := base()
	q["project_ids"] = []string{scalewayfake.DemoProjectWeb, scalewayfake.DemoProjectData}
	if got := projects(q); len(got) != 2 || !got[scalewayfake.DemoProjectWeb] || !got[scalewayfake.DemoProjectData] {
		t.Errorf("projects %v", got)
	}

	for _, tt := range []struct {
		name   string
		modify func(url.Values)
		token  string
		status int
		body   string
	}{
		{"comma-separated list", func(q url.Values) {
			q.Set("project_ids", scalewayfake.DemoProjectWeb+","+scalewayfake.DemoProjectData)
		}, key, 400, `"argument_name":"project_ids"`},
		{"before October 2024", func(q url.Values) { q.Set("start_date", "2024-09-01T00:00:00Z") }, key, 400, "must not be before 2024-10-01"},
		{"not RFC 3339", func(q url.Values) { q.Set("start_date", "2025-03-01") }, key, 400, `"argument_name":"start_date"`},
		{"no key", func(url.Values) {}, "", 401, `"type":"denied_authentication"`},
		{"wrong key", func(url.Values) {}, "99999999-9999-4999-8999-999999999999", 401, `"reason":"not_found"`},
		{"another organization", func(q url.Values) { q.Set("organization_id", "22222222-3333-4444-8555-666666666666") }, key, 403, `"type":"permissions_denied"`},
		{"unknown category", func(q url.Values) { q.Set("product_categories", "mainframes") }, key, 400, `"argument_name":"product_categories"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := base()
			tt.modify(q)
			resp, body := get(t, ts, scalewayfake.ImpactDataPath, q, tt.token)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.body) {
				t.Errorf("%d %s, want %d with %s", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

// TestAvailability lists published months from start_date to today.
func TestAvailability(t *testing.T) {
	_, ts := serve(t)
	q := url.Values{"organization_id": {scalewayfake.DemoOrganizationID}, "start_date": {"2024-11-15T00:00:00Z"}}
	resp, body := get(t, ts, scalewayfake.AvailabilityPath, q, key)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var a ef.ImpactReportAvailability
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	// 2 June 2025: May is not published before the 4th.
	if n := len(a.MonthSummaryReports); n != 5 ||
		!a.MonthSummaryReports[0].Equal(provider.NewMonth(2024, time.December).Start()) ||
		!a.MonthSummaryReports[4].Equal(provider.NewMonth(2025, time.April).Start()) {
		t.Errorf("months %v, want December 2024 to April 2025", a.MonthSummaryReports)
	}
	if scalewayfake.LatestPublished(now) != provider.NewMonth(2025, time.April) {
		t.Errorf("latest published %s", scalewayfake.LatestPublished(now))
	}
}

// TestFaults checks that the throttling fault looks like Scaleway's:
// no body, no Content-Type, no Retry-After.
func TestFaults(t *testing.T) {
	fake, ts := serve(t)
	fake.Inject(scalewayfake.OpAvailability, scalewayfake.RateLimited())
	q := url.Values{"organization_id": {scalewayfake.DemoOrganizationID}, "start_date": {"2024-11-01T00:00:00Z"}}
	resp, body := get(t, ts, scalewayfake.AvailabilityPath, q, key)
	if resp.StatusCode != 429 || len(body) != 0 || resp.Header.Get("Content-Type") != "" || resp.Header.Get("Retry-After") != "" ||
		resp.Header.Get("X-Envoy-Ratelimited") != "true" {
		t.Errorf("429: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := get(t, ts, scalewayfake.AvailabilityPath, q, key); resp.StatusCode != 200 {
		t.Errorf("after the fault: %d", resp.StatusCode)
	}
	if n := fake.Requests(scalewayfake.OpAvailability); n != 2 {
		t.Errorf("%d requests counted", n)
	}
}

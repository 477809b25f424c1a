package azurefake_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

const (
	secret = "fake-test-secret-0123456789"
	now0   = "2025-06-20T12:00:00Z"
)

type env struct {
	ds   azurefake.Dataset
	fake *azurefake.Server
	ts   *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	now, _ := time.Parse(time.RFC3339, now0)
	ds := azurefake.Demo(now)
	fake := azurefake.NewServer(ds, azurefake.DemoClientID, secret)
	ts := httptest.NewUnstartedServer(fake)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &env{ds: ds, fake: fake, ts: ts}
}

// do sends a request and decodes a JSON answer.
func (e *env) do(t *testing.T, method, path, token string, body io.Reader, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d, body %q is not JSON", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func tokenForm(secretValue, scope, claims string) url.Values {
	f := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {azurefake.DemoClientID},
		"client_secret": {secretValue},
		"scope":         {scope},
	}
	if claims != "" {
		f.Set("claims", claims)
	}
	return f
}

const armScope = "https://management.core.windows.net//.default"

func (e *env) token(t *testing.T, cae bool) string {
	t.Helper()
	claims := ""
	if cae {
		claims = `{"access_token":{"xms_cc":{"values":["CP1"]}}}`
	}
	code, _, out := e.do(t, "POST", "/"+azurefake.DemoTenantID+"/oauth2/v2.0/token", "", nil, tokenForm(secret, armScope, claims))
	if code != 200 {
		t.Fatalf("token: %d %v", code, out)
	}
	return out["access_token"].(string)
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	code, _, out := e.do(t, "GET", "/"+azurefake.DemoTenantID+"/v2.0/.well-known/openid-configuration", "", nil, nil)
	if code != 200 || out["issuer"] != e.ts.URL+"/"+azurefake.DemoTenantID+"/v2.0" ||
		out["token_endpoint"] != e.ts.URL+"/"+azurefake.DemoTenantID+"/oauth2/v2.0/token" || out["authorization_endpoint"] == nil {
		t.Errorf("openid configuration: %d %v", code, out)
	}
	code, _, out = e.do(t, "GET", "/nobody/v2.0/.well-known/openid-configuration", "", nil, nil)
	if code != 400 || out["error"] != "invalid_tenant" || !strings.HasPrefix(out["error_description"].(string), "AADSTS90002:") {
		t.Errorf("unknown tenant: %d %v", code, out)
	}
	code, _, out = e.do(t, "GET", "/common/discovery/instance?api-version=1.1&authorization_endpoint="+
		url.QueryEscape(e.ts.URL+"/"+azurefake.DemoTenantID+"/oauth2/v2.0/authorize"), "", nil, nil)
	if code != 200 || out["tenant_discovery_endpoint"] != e.ts.URL+"/"+azurefake.DemoTenantID+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("instance discovery: %d %v", code, out)
	}
	if e.fake.Requests(azurefake.OpOpenID) != 2 || e.fake.Requests(azurefake.OpInstanceDiscovery) != 1 {
		t.Errorf("request counters")
	}
}

func TestToken(t *testing.T) {
	path := "/" + azurefake.DemoTenantID + "/oauth2/v2.0/token"
	tests := []struct {
		name     string
		path     string
		form     url.Values
		wantCode int
		wantErr  string
	}{
		{"ok", path, tokenForm(secret, armScope, ""), 200, ""},
		{"other ARM audience", path, tokenForm(secret, "https://management.azure.com/.default", ""), 200, ""},
		{"wrong secret", path, tokenForm("wrong-"+secret, armScope, ""), 401, "AADSTS7000215"},
		{"no secret", path, tokenForm("", armScope, ""), 400, "AADSTS7000218"},
		{"unknown client", path, func() url.Values { f := tokenForm(secret, armScope, ""); f.Set("client_id", "nobody"); return f }(), 400, "AADSTS700016"},
		{"wrong grant", path, func() url.Values { f := tokenForm(secret, armScope, ""); f.Set("grant_type", "password"); return f }(), 400, "AADSTS70003"},
		{"wrong audience", path, tokenForm(secret, "https://graph.microsoft.com/.default", ""), 400, "AADSTS500011"},
		{"unknown tenant", "/other-tenant/oauth2/v2.0/token", tokenForm(secret, armScope, ""), 400, "AADSTS90002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code, _, out := e.do(t, "POST", tt.path, "", nil, tt.form)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d (%v)", code, tt.wantCode, out)
			}
			if tt.wantErr == "" {
				if tok, _ := out["access_token"].(string); strings.Count(tok, ".") != 2 || out["token_type"] != "Bearer" || out["expires_in"] != 3600.0 {
					t.Errorf("token answer %v", out)
				}
				return
			}
			desc, _ := out["error_description"].(string)
			if !strings.HasPrefix(desc, tt.wantErr+":") {
				t.Errorf("error_description %q, want %s", desc, tt.wantErr)
			}
			raw, _ := json.Marshal(out)
			if strings.Contains(string(raw), secret) {
				t.Errorf("answer echoes the secret: %s", raw)
			}
			if len(e.fake.Bodies(azurefake.OpToken)) != 0 {
				t.Error("token bodies were recorded")
			}
		})
	}
}

func TestARMAuthorization(t *testing.T) {
	e := newEnv(t)
	const drPath = "/providers/Microsoft.Carbon/queryCarbonEmissionDataAvailableDateRange?api-version=2025-04-01"
	code, _, out := e.do(t, "POST", drPath, "", nil, nil)
	if code != 401 || errCode(out) != "AuthenticationFailed" {
		t.Errorf("no token: %d %v", code, out)
	}
	code, _, out = e.do(t, "POST", drPath, "not-a-token", nil, nil)
	if code != 401 || errCode(out) != "InvalidAuthenticationToken" {
		t.Errorf("unknown token: %d %v", code, out)
	}
	cae, plain := e.token(t, true), e.token(t, false)
	code, _, out = e.do(t, "POST", drPath, cae, nil, nil)
	if code != 200 || out["startDate"] != "2024-06-01" || out["endDate"] != "2025-05-01" {
		t.Errorf("date range: %d %v", code, out)
	}
	code, _, out = e.do(t, "POST", "/providers/Microsoft.Carbon/queryCarbonEmissionDataAvailableDateRange?api-version=2023-04-01-preview", cae, nil, nil)
	if code != 400 || errCode(out) != "InvalidApiVersionParameter" {
		t.Errorf("preview api-version: %d %v", code, out)
	}

	e.fake.ExpireTokens()
	code, h, out := e.do(t, "POST", drPath, cae, nil, nil)
	challenge := h.Get("WWW-Authenticate")
	if code != 401 || !strings.Contains(challenge, `error="insufficient_claims"`) || !strings.Contains(challenge, `claims="`) {
		t.Errorf("revoked CAE token: %d %q %v", code, challenge, out)
	}
	_, enc, _ := strings.Cut(challenge, `claims="`)
	enc, _, _ = strings.Cut(enc, `"`)
	if claims, err := base64.StdEncoding.DecodeString(enc); err != nil || !json.Valid(claims) {
		t.Errorf("challenge claims %q do not decode: %v", enc, err)
	}
	code, h, out = e.do(t, "POST", drPath, plain, nil, nil)
	if code != 401 || errCode(out) != "ExpiredAuthenticationToken" || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("revoked token: %d %v", code, out)
	}

	e.fake.SetTokenTTL(0)
	code, _, out = e.do(t, "POST", drPath, e.token(t, true), nil, nil)
	if code != 401 || errCode(out) != "ExpiredAuthenticationToken" {
		t.Errorf("expired token: %d %v", code, out)
	}
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func errMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["message"].(string)
	return c
}

const reportsPath = "/providers/Microsoft.Carbon/carbonEmissionReports?api-version=2025-04-01"

// validQuery is a valid ItemDetailsReport body for the demo's latest month.
func (e *env) validQuery() map[string]any {
	return map[string]any{
		"reportType":       "ItemDetailsReport",
		"subscriptionList": e.ds.SubscriptionIDs(),
		"carbonScopeList":  []string{"Scope1"},
		"dateRange":        map[string]string{"start": "2025-05-01", "end": "2025-05-01"},
		"categoryType":     "Resource",
		"orderBy":          "ItemName",
		"sortDirection":    "Asc",
		"pageSize":         5000,
	}
}

func (e *env) report(t *testing.T, tok string, q map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(q)
	code, _, out := e.do(t, "POST", reportsPath, tok, strings.NewReader(string(b)), nil)
	return code, out
}

func TestReportValidation(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, true)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
	}
	tests := []struct {
		name    string
		edit    func(q map[string]any)
		wantMsg string
	}{
		{"start differs from end", func(q map[string]any) { q["dateRange"] = map[string]string{"start": "2025-04-01", "end": "2025-05-01"} }, "start and end must be equal"},
		{"not a first day", func(q map[string]any) { q["dateRange"] = map[string]string{"start": "2025-05-02", "end": "2025-05-02"} }, "first day of a month"},
		{"not yet published", func(q map[string]any) { q["dateRange"] = map[string]string{"start": "2025-06-01", "end": "2025-06-01"} }, "outside the available range"},
		{"older than 12 months", func(q map[string]any) { q["dateRange"] = map[string]string{"start": "2024-05-01", "end": "2024-05-01"} }, "outside the available range"},
		{"no date range", func(q map[string]any) { delete(q, "dateRange") }, "dateRange with start and end is required"},
		{"101 subscriptions", func(q map[string]any) { q["subscriptionList"] = many }, "the maximum is 100"},
		{"no subscriptions", func(q map[string]any) { q["subscriptionList"] = []string{} }, "subscriptionList is required"},
		{"upper-case subscription", func(q map[string]any) { q["subscriptionList"] = []string{strings.ToUpper(e.ds.Subscriptions[0].ID)} }, "lower-case GUIDs"},
		{"duplicate subscription", func(q map[string]any) {
			q["subscriptionList"] = []string{e.ds.Subscriptions[0].ID, e.ds.Subscriptions[0].ID}
		}, "Duplicate subscription"},
		{"no scope", func(q map[string]any) { q["carbonScopeList"] = []string{} }, "carbonScopeList is required"},
		{"bad scope", func(q map[string]any) { q["carbonScopeList"] = []string{"Scope4"} }, "Invalid carbon scope"},
		{"page size 0", func(q map[string]any) { q["pageSize"] = 0 }, "between 1 and 5000"},
		{"page size 5001", func(q map[string]any) { q["pageSize"] = 5001 }, "between 1 and 5000"},
		{"no page size", func(q map[string]any) { delete(q, "pageSize") }, "between 1 and 5000"},
		{"bad category", func(q map[string]any) { q["categoryType"] = "ServiceType" }, "Invalid categoryType"},
		{"bad order", func(q map[string]any) { q["orderBy"] = "TotalCarbonEmission" }, "Invalid orderBy"},
		{"resource group order for subscriptions", func(q map[string]any) { q["orderBy"] = "ResourceGroup"; q["categoryType"] = "Subscription" }, "only supported for categoryType Resource"},
		{"bad direction", func(q map[string]any) { q["sortDirection"] = "Up" }, "Invalid sortDirection"},
		{"bad report type", func(q map[string]any) { q["reportType"] = "Everything" }, "Invalid reportType"},
		{"preview field name", func(q map[string]any) { q["category"] = "Resource" }, `unknown field "category"`},
		{"garbage skipToken", func(q map[string]any) { q["skipToken"] = "bm9wZQ==" }, "skipToken is invalid"},
		{"top items", func(q map[string]any) { q["topItems"] = 5 }, "takes no topItems"},
		{"summary with paging", func(q map[string]any) { q["reportType"] = "OverallSummaryReport" }, "takes no categoryType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := e.validQuery()
			tt.edit(q)
			code, out := e.report(t, tok, q)
			if code != 400 || errCode(out) != "BadRequest" || !strings.Contains(errMessage(out), tt.wantMsg) {
				t.Errorf("%d %v, want 400 mentioning %q", code, out, tt.wantMsg)
			}
		})
	}
}

// page reads every page of q and returns the items and the page count.
func (e *env) pages(t *testing.T, tok string, q map[string]any) ([]map[string]any, int, map[string]any) {
	t.Helper()
	var items []map[string]any
	var last map[string]any
	for n := 1; ; n++ {
		code, out := e.report(t, tok, q)
		if code != 200 {
			t.Fatalf("page %d: %d %v", n, code, out)
		}
		last = out
		for _, v := range out["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		st, _ := out["skipToken"].(string)
		if st == "" {
			return items, n, last
		}
		q["skipToken"] = st
	}
}

func TestReportPaging(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, true)
	may := provider.NewMonth(2025, time.May)

	q := e.validQuery()
	q["carbonScopeList"] = []string{"Scope3", "Scope1"}
	one, n1, last := e.pages(t, tok, q)
	q = e.validQuery()
	q["carbonScopeList"] = []string{"Scope1", "Scope3"}
	q["pageSize"] = 37
	paged, n2, _ := e.pages(t, tok, q)
	if n1 != 1 || n2 < 3 {
		t.Errorf("pages = %d and %d", n1, n2)
	}
	if !reflect.DeepEqual(one, paged) {
		t.Error("paged items differ from one page")
	}
	var sum float64
	ids := map[string]bool{}
	for _, it := range paged {
		sum += it["latestMonthEmissions"].(float64)
		ids[it["resourceId"].(string)] = true
		if it["dataType"] != "ResourceItemDetailsData" || it["categoryType"] != "Resource" || it["subscriptionId"] == "" ||
			it["resourceType"] == "" || it["location"] == "" || it["itemName"] == "" {
			t.Errorf("item %v", it)
		}
	}
	if len(ids) != len(paged) {
		t.Error("pages overlap")
	}
	// The scopes are summed; denied subscriptions are left out.
	want := e.ds.Total(may, provider.Scope1) + e.ds.Total(may, provider.Scope3)
	if math.Abs(sum-want) > 1e-9*want {
		t.Errorf("sum = %v, want %v", sum, want)
	}
	decisions := last["subscriptionAccessDecisionList"].([]any)
	if len(decisions) != len(e.ds.Subscriptions) {
		t.Fatalf("decisions = %v", decisions)
	}
	denied := 0
	for _, d := range decisions {
		d := d.(map[string]any)
		if d["decision"] == "Denied" {
			denied++
			if d["denialReason"] == "" {
				t.Errorf("denial without reason: %v", d)
			}
		}
	}
	if denied != 1 {
		t.Errorf("denied = %d, want 1", denied)
	}

	// A skipToken belongs to its query.
	q = e.validQuery()
	q["pageSize"] = 10
	_, out := e.report(t, tok, q)
	q["carbonScopeList"] = []string{"Scope2"}
	q["skipToken"] = out["skipToken"]
	if code, out := e.report(t, tok, q); code != 400 || !strings.Contains(errMessage(out), "does not belong to this query") {
		t.Errorf("foreign skipToken: %d %v", code, out)
	}
}

// TestReportsAgree checks the report types against each other: every
// category of ItemDetailsReport, MonthlySummaryReport and
// OverallSummaryReport sum to the same figures.
func TestReportsAgree(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, true)
	may := provider.NewMonth(2025, time.May)
	want := e.ds.Total(may, provider.Scope2)
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	for _, cat := range []string{"Subscription", "ResourceGroup", "Location", "Resource", "ResourceType"} {
		q := e.validQuery()
		q["categoryType"] = cat
		q["carbonScopeList"] = []string{"Scope2"}
		q["orderBy"] = "LatestMonthEmissions"
		q["sortDirection"] = "Desc"
		items, _, _ := e.pages(t, tok, q)
		var sum float64
		prev := math.Inf(1)
		for _, it := range items {
			v := it["latestMonthEmissions"].(float64)
			sum += v
			if v > prev {
				t.Errorf("%s: not sorted by emissions descending", cat)
			}
			prev = v
		}
		if !near(sum, want) {
			t.Errorf("%s: sum %v, want %v", cat, sum, want)
		}
	}
	q := map[string]any{
		"reportType": "MonthlySummaryReport", "subscriptionList": e.ds.SubscriptionIDs(), "carbonScopeList": []string{"Scope2"},
		"dateRange": map[string]string{"start": "2025-03-01", "end": "2025-05-01"},
	}
	code, out := e.report(t, tok, q)
	if code != 200 || len(out["value"].([]any)) != 3 {
		t.Fatalf("monthly: %d %v", code, out)
	}
	var monthly float64
	for _, v := range out["value"].([]any) {
		monthly += v.(map[string]any)["latestMonthEmissions"].(float64)
	}
	if mayV := out["value"].([]any)[2].(map[string]any); !near(mayV["latestMonthEmissions"].(float64), want) || mayV["date"] != "2025-05-01" {
		t.Errorf("monthly May: %v", mayV)
	}
	q["reportType"] = "OverallSummaryReport"
	code, out = e.report(t, tok, q)
	overall := out["value"].([]any)[0].(map[string]any)
	if code != 200 || overall["dataType"] != "OverallSummaryData" || !near(overall["latestMonthEmissions"].(float64), monthly) {
		t.Errorf("overall: %d %v, want %v", code, overall, monthly)
	}
}

func TestSubscriptionListing(t *testing.T) {
	e := newEnv(t)
	e.fake.SetSubscriptionsPageSize(2)
	tok := e.token(t, true)
	next := "/subscriptions?api-version=2022-12-01"
	var got []string
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("listing does not end")
		}
		code, _, out := e.do(t, "GET", next, tok, nil, nil)
		if code != 200 {
			t.Fatalf("%d %v", code, out)
		}
		for _, v := range out["value"].([]any) {
			s := v.(map[string]any)
			if s["tenantId"] != azurefake.DemoTenantID || s["displayName"] == "" || s["state"] != "Enabled" || s["id"] != "/subscriptions/"+s["subscriptionId"].(string) {
				t.Errorf("subscription %v", s)
			}
			got = append(got, s["subscriptionId"].(string))
		}
		next, _ = out["nextLink"].(string)
		next = strings.TrimPrefix(next, e.ts.URL)
	}
	if !slices.Equal(got, e.ds.SubscriptionIDs()) {
		t.Errorf("listed %v, want %v", got, e.ds.SubscriptionIDs())
	}
	if n := e.fake.Requests(azurefake.OpSubscriptions); n != 3 {
		t.Errorf("requests = %d, want 3 pages", n)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, true)
	e.fake.Inject(azurefake.OpDateRange, azurefake.Fault{Status: 429, Header: http.Header{"Retry-After": {"3"}}, Body: `{"error":{"code":"TooManyRequests"}}`, Times: 2})
	e.fake.Inject(azurefake.OpDateRange, azurefake.Fault{Status: 200, Body: `{"startDate":`, Delay: 50 * time.Millisecond})
	const drPath = "/providers/Microsoft.Carbon/queryCarbonEmissionDataAvailableDateRange?api-version=2025-04-01"
	for range 2 {
		code, h, _ := e.do(t, "POST", drPath, tok, nil, nil)
		if code != 429 || h.Get("Retry-After") != "3" {
			t.Errorf("fault 1: %d %v", code, h)
		}
	}
	start := time.Now()
	req, _ := http.NewRequest("POST", e.ts.URL+drPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(raw) != `{"startDate":` || time.Since(start) < 50*time.Millisecond {
		t.Errorf("fault 2: %q after %s", raw, time.Since(start))
	}
	if code, _, _ := e.do(t, "POST", drPath, tok, nil, nil); code != 200 {
		t.Errorf("after the faults: %d", code)
	}
	if n := e.fake.Requests(azurefake.OpDateRange); n != 4 {
		t.Errorf("requests = %d", n)
	}
	if code, _, out := e.do(t, "GET", "/subscriptions/x/resourceGroups", tok, nil, nil); code != 404 || errCode(out) != "NotFound" {
		t.Errorf("unknown path: %d %v", code, out)
	}
}

func TestLatestMonth(t *testing.T) {
	tests := []struct {
		now  time.Time
		want provider.Month
	}{
		{time.Date(2025, 6, 18, 23, 59, 0, 0, time.UTC), provider.NewMonth(2025, time.April)},
		{time.Date(2025, 6, 19, 0, 0, 0, 0, time.UTC), provider.NewMonth(2025, time.May)},
		{time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC), provider.NewMonth(2024, time.November)},
		{time.Date(2025, 1, 19, 0, 0, 0, 0, time.UTC), provider.NewMonth(2024, time.December)},
	}
	for _, tt := range tests {
		if got := azurefake.LatestMonth(tt.now); got != tt.want {
			t.Errorf("LatestMonth(%s) = %s, want %s", tt.now, got, tt.want)
		}
	}
}

func TestDemo(t *testing.T) {
	now := time.Date(2025, 6, 20, 12, 0, 0, 0, time.UTC)
	ds := azurefake.Demo(now)
	if !reflect.DeepEqual(ds, azurefake.Demo(now)) {
		t.Fatal("Demo is not deterministic")
	}
	last := azurefake.LatestMonth(now)
	if first, l := ds.Range(); l != last || first != last-11 {
		t.Errorf("range %s to %s, want 12 months ending %s", first, l, last)
	}
	if len(ds.Subscriptions) < 4 || len(ds.Subscriptions) > 5 {
		t.Errorf("%d subscriptions", len(ds.Subscriptions))
	}
	denied := 0
	for _, s := range ds.Subscriptions {
		if s.DisplayName == "" || s.ID != strings.ToLower(s.ID) || len(s.ID) != 36 {
			t.Errorf("subscription %+v", s)
		}
		if s.Denied {
			denied++
			if s.DenialReason == "" {
				t.Errorf("denied without a reason: %+v", s)
			}
		}
	}
	if denied != 1 {
		t.Errorf("denied subscriptions = %d, want 1", denied)
	}
	types, regions := map[string]bool{}, map[string]bool{}
	perMonth := map[provider.Month]int{}
	for _, it := range ds.Items {
		types[it.ResourceType] = true
		regions[it.Location] = true
		perMonth[it.Month]++
		if it.Scope1 < 0 || it.Scope2 <= 0 || it.Scope3 <= 0 || it.ResourceType != strings.ToLower(it.ResourceType) {
			t.Fatalf("item %+v", it)
		}
	}
	if len(types) < 6 || len(types) > 10 || len(regions) < 5 || len(regions) > 6 {
		t.Errorf("%d types, %d regions", len(types), len(regions))
	}
	if len(perMonth) != 12 {
		t.Errorf("months = %d", len(perMonth))
	}
	for m, n := range perMonth {
		if n < 100 || n > 5000 {
			t.Errorf("%s: %d items", m, n)
		}
	}
	var prev float64
	for m := last - 11; m <= last; m++ {
		s1, s2, s3 := ds.Total(m, provider.Scope1), ds.Total(m, provider.Scope2), ds.Total(m, provider.Scope3)
		if !(s3 > s2 && s2 > s1 && s1 > 0) {
			t.Errorf("%s: scopes %v %v %v, want scope 3 largest, scope 1 smallest", m, s1, s2, s3)
		}
		if total := s1 + s2 + s3; total == prev {
			t.Errorf("%s: no month-to-month variation", m)
		} else {
			prev = total
		}
	}

	// A month's figures do not depend on when the demo starts.
	later := azurefake.Demo(now.AddDate(0, 1, 0))
	for _, sc := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
		if a, b := ds.Total(last-1, sc), later.Total(last-1, sc); a != b {
			t.Errorf("scope %s of %s: %v, a month later %v", sc, last-1, a, b)
		}
	}
}

func TestNewTLSConfig(t *testing.T) {
	serverTLS, roots, pemBytes, err := azurefake.NewTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pemBytes), "BEGIN CERTIFICATE") {
		t.Error("no PEM")
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: azurefake.NewServer(azurefake.Dataset{TenantID: "t"}, "c", "s"), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		_, port, _ := net.SplitHostPort(l.Addr().String())
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/t/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", host, resp.StatusCode)
		}
	}
}

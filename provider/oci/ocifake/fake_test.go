package ocifake_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

const (
	tenancy = "ocid1.tenancy.oc1..aaaaaaaafaketenancy"
	user    = "ocid1.user.oc1..aaaaaaaafakeuser"
)

var jan = provider.NewMonth(2025, time.January)

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func dataset() ocifake.Dataset {
	return ocifake.Dataset{
		TenancyID: tenancy, TenancyName: "acme",
		Rows: []ocifake.Row{
			{CompartmentPath: "acme/prod/web", Service: "COMPUTE", Region: "us-ashburn-1", Month: jan, PowerLocation: 1, PowerMarket: 0.5, SpendMarket: 0.7},
			{CompartmentPath: "acme/prod/db", Service: "DATABASE", Region: "us-ashburn-1", Month: jan, PowerLocation: 2, PowerMarket: 1, SpendMarket: 1.5},
			{CompartmentPath: "acme/prod/web", Service: "COMPUTE", Region: "us-ashburn-1", Month: jan + 1, PowerLocation: 3, PowerMarket: 1.5, SpendMarket: 2},
			{CompartmentPath: "acme", Service: "API_GATEWAY", Region: "eu-frankfurt-1", Month: jan, SpendMarket: 0.1, SpendOnly: true},
		},
	}
}

type client struct {
	t    *testing.T
	ts   *httptest.Server
	fake *ocifake.Server
	sign common.HTTPRequestSigner
}

// newClient starts the fake with the test key, and signs as the SDK does.
func newClient(t *testing.T) *client {
	key := testKey()
	fake := ocifake.NewServer(dataset(), ocifake.Key{ID: ocifake.KeyID(tenancy, user, &key.PublicKey), PublicKey: &key.PublicKey})
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	return &client{t: t, ts: ts, fake: fake, sign: signer(t, key, user)}
}

func signer(t *testing.T, key *rsa.PrivateKey, user string) common.HTTPRequestSigner {
	t.Helper()
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return common.DefaultRequestSigner(common.NewRawConfigurationProvider(tenancy, user, "us-ashburn-1", ocifake.Fingerprint(&key.PublicKey), string(pemKey), nil))
}

// request builds a carbon query as the SDK's client does before signing.
func (c *client) request(query string, body string) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.ts.URL+ocifake.CarbonPath+query, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	return req
}

func (c *client) signed(query, body string) *http.Request {
	c.t.Helper()
	req := c.request(query, body)
	if err := c.sign.Sign(req); err != nil {
		c.t.Fatal(err)
	}
	return req
}

type page struct {
	GroupBy []string `json:"groupBy"`
	Items   []struct {
		TimeUsageStarted          string   `json:"timeUsageStarted"`
		TimeUsageEnded            string   `json:"timeUsageEnded"`
		ComputedCarbonEmission    float64  `json:"computedCarbonEmission"`
		EmissionCalculationMethod string   `json:"emissionCalculationMethod"`
		EmissionType              string   `json:"emissionType"`
		CompartmentPath           *string  `json:"compartmentPath"`
		CompartmentName           *string  `json:"compartmentName"`
		Service                   *string  `json:"service"`
		Region                    *string  `json:"region"`
		Tags                      []string `json:"tags"`
	} `json:"items"`
}

func (c *client) do(req *http.Request, out any) (int, http.Header, string) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s: %v", b, err)
		}
	}
	return resp.StatusCode, resp.Header, string(b)
}

func query(method, typ, extra string) string {
	return `{"tenantId":"` + tenancy + `","timeUsageStarted":"2025-01-01T00:00:00Z","timeUsageEnded":"2025-03-01T00:00:00.000Z",` +
		`"granularity":"MONTHLY","emissionCalculationMethod":"` + method + `","emissionType":"` + typ + `"` + extra + `}`
}

func TestCarbon(t *testing.T) {
	c := newClient(t)
	var p page
	body := query("POWER_BASED", "LOCATION_BASED", `,"groupBy":["compartmentPath","service"],"compartmentDepth":1,"isAggregateByTime":false`)
	code, h, b := c.do(c.signed("", body), &p)
	if code != 200 || h.Get("Opc-Request-Id") == "" || h.Get("Opc-Next-Page") != "" {
		t.Fatalf("%d %v %s", code, h, b)
	}
	// Depth 1 rolls acme/prod/web and acme/prod/db into acme/prod; the
	// spend-only service is not power-based.
	if len(p.Items) != 3 || *p.Items[0].CompartmentPath != "acme/prod" || *p.Items[0].Service != "COMPUTE" ||
		p.Items[0].ComputedCarbonEmission != 1 || p.Items[2].TimeUsageStarted != "2025-02-01T00:00:00.000Z" ||
		p.Items[0].Region != nil || p.Items[0].EmissionType != "LOCATION_BASED" || p.Items[0].EmissionCalculationMethod != "POWER_BASED" {
		t.Errorf("%s", b)
	}
	if strings.Count(b, `"acme/prod"`) != 3 || !strings.Contains(b, `"DATABASE"`) {
		t.Errorf("%s", b)
	}
	// Spend-based, aggregated over time, grouped by region.
	p = page{}
	code, _, b = c.do(c.signed("", query("SPEND_BASED", "MARKET_BASED", `,"groupBy":["region"],"isAggregateByTime":true`)), &p)
	if code != 200 || len(p.Items) != 2 || p.Items[0].TimeUsageEnded != "2025-03-01T00:00:00.000Z" || *p.Items[0].Region != "eu-frankfurt-1" ||
		p.Items[0].ComputedCarbonEmission != 0.1 || p.Items[1].ComputedCarbonEmission != 4.2 {
		t.Errorf("%d %s", code, b)
	}
	if l, m := dataset().Totals(jan, ocifake.PowerBased); l != 3 || m != 1.5 {
		t.Errorf("power-based totals %g %g", l, m)
	}
	if l, m := dataset().TotalBase(jan, ocifake.SpendBased); l != 0 || math.Abs(m-2.3e6) > 1e-6 {
		t.Errorf("spend-based totals %g %g", l, m)
	}
	if n := c.fake.Requests(ocifake.OpCarbon); n != 2 || len(c.fake.Bodies()) != 2 {
		t.Errorf("%d requests", n)
	}
}

func TestPaging(t *testing.T) {
	c := newClient(t)
	body := query("POWER_BASED", "MARKET_BASED", `,"groupBy":["compartmentPath","service","region"]`)
	var seen []float64
	tok := ""
	for n := 0; ; n++ {
		q := "?limit=1"
		if tok != "" {
			q += "&page=" + tok
		}
		var p page
		code, h, b := c.do(c.signed(q, body), &p)
		if code != 200 || len(p.Items) != 1 {
			t.Fatalf("%d %s", code, b)
		}
		seen = append(seen, p.Items[0].ComputedCarbonEmission)
		if tok = h.Get("Opc-Next-Page"); tok == "" {
			break
		}
		// A token belongs to its query.
		if code, _, _ := c.do(c.signed("?page="+tok, query("POWER_BASED", "LOCATION_BASED", "")), nil); code != 400 {
			t.Errorf("a token of another query: %d, want 400", code)
		}
	}
	if len(seen) != 3 {
		t.Errorf("pages gave %v, want 3 items", seen)
	}
}

func TestValidation(t *testing.T) {
	c := newClient(t)
	for _, body := range []string{
		`{}`,
		query("POWER_BASED", "LOCATION_BASED", `,"groupby":["region"]`),
		query("POWER_BASED", "LOCATION_BASED", `,"groupBy":["resourceId"]`),
		query("SPEND_BASED", "LOCATION_BASED", ""),
		query("POWER", "LOCATION_BASED", ""),
		query("POWER_BASED", "", ""),
		query("POWER_BASED", "LOCATION_BASED", `,"compartmentDepth":0`),
		strings.Replace(query("POWER_BASED", "LOCATION_BASED", ""), "2025-01-01T00:00:00Z", "2025-01-01T08:00:00Z", 1),
		strings.Replace(query("POWER_BASED", "LOCATION_BASED", ""), "2025-01-01T00:00:00Z", "2025-01-15T00:00:00Z", 1),
		strings.Replace(query("POWER_BASED", "LOCATION_BASED", ""), "2025-03-01T00:00:00.000Z", "2025-01-01T00:00:00Z", 1),
		strings.Replace(query("POWER_BASED", "LOCATION_BASED", ""), "MONTHLY", "DAILY", 1),
	} {
		code, h, b := c.do(c.signed("", body), nil)
		if code != 400 || !strings.Contains(b, `"code":"InvalidParameter"`) || h.Get("Opc-Request-Id") == "" {
			t.Errorf("%s: %d %s", body, code, b)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?page=forged"} {
		if code, _, b := c.do(c.signed(q, query("POWER_BASED", "LOCATION_BASED", "")), nil); code != 400 {
			t.Errorf("%s: %d %s", q, code, b)
		}
	}
	other := strings.Replace(query("POWER_BASED", "LOCATION_BASED", ""), tenancy, "ocid1.tenancy.oc1..aaaaaaaaother", 1)
	if code, _, b := c.do(c.signed("", other), nil); code != 404 || !strings.Contains(b, "NotAuthorizedOrNotFound") {
		t.Errorf("another tenancy: %d %s", code, b)
	}
	c.fake.Deny()
	if code, _, b := c.do(c.signed("", query("POWER_BASED", "LOCATION_BASED", "")), nil); code != 404 || !strings.Contains(b, "NotAuthorizedOrNotFound") {
		t.Errorf("denied: %d %s", code, b)
	}
}

// TestSignature: the fake checks what OCI checks of a signature; anything
// the signature covers that changes, or another key, is refused.
func TestSignature(t *testing.T) {
	c := newClient(t)
	body := query("POWER_BASED", "LOCATION_BASED", "")
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		wantIn string
	}{
		{"no signature", func() *http.Request { return c.request("", body) }, "missing or not an OCI signature"},
		{"another user's key", func() *http.Request {
			req := c.request("", body)
			_ = signer(t, otherKey, user).Sign(req)
			return req
		}, "no API key of a known user"},
		{"the right key id, another key", func() *http.Request {
			req := c.request("", body)
			_ = signer(t, otherKey, user).Sign(req)
			key := testKey()
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"),
				ocifake.Fingerprint(&otherKey.PublicKey), ocifake.Fingerprint(&key.PublicKey), 1))
			return req
		}, "does not verify"},
		{"body changed after signing", func() *http.Request {
			req := c.signed("", body)
			other := strings.Replace(body, "2025-01", "2024-01", 1)
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(other)), int64(len(other))
			return req
		}, "x-content-sha256 does not match"},
		{"query changed after signing", func() *http.Request {
			req := c.signed("", body)
			req.URL.RawQuery = "limit=5"
			return req
		}, "does not verify"},
		{"a date out of the allowed skew", func() *http.Request {
			req := c.request("", body)
			req.Header.Set("Date", time.Now().Add(-10*time.Minute).UTC().Format(http.TimeFormat))
			_ = c.sign.Sign(req)
			return req
		}, "more than the 5m0s allowed"},
		{"a POST signature without the body headers", func() *http.Request {
			req := c.signed("", body)
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), " content-length content-type x-content-sha256", "", 1))
			return req
		}, `does not cover the "content-length" header`},
		{"another algorithm", func() *http.Request {
			req := c.signed("", body)
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "rsa-sha256", "hmac-sha256", 1))
			return req
		}, `algorithm must be "rsa-sha256"`},
		{"a malformed key id", func() *http.Request {
			req := c.signed("", body)
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), tenancy+"/", "", 1))
			return req
		}, "keyId is not TENANCY_OCID/USER_OCID/FINGERPRINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, b := c.do(tt.req(), nil)
			var e struct{ Code, Message string }
			_ = json.Unmarshal([]byte(b), &e)
			if code != 401 || e.Code != "NotAuthenticated" || !strings.Contains(e.Message, tt.wantIn) {
				t.Errorf("%d %s; want 401 NotAuthenticated saying %q", code, b, tt.wantIn)
			}
		})
	}
	if code, _, b := c.do(c.signed("", body), nil); code != 200 {
		t.Errorf("a good signature: %d %s", code, b)
	}
	// Without keys the fake checks shape only.
	open := httptest.NewServer(ocifake.NewServer(dataset()))
	defer open.Close()
	req := c.request("", body)
	req.URL.Host = strings.TrimPrefix(open.URL, "http://")
	req.Host = req.URL.Host
	_ = signer(t, otherKey, user).Sign(req)
	if code, _, b := c.do(req, nil); code != 200 {
		t.Errorf("any key, shape only: %d %s", code, b)
	}
}

func TestFaults(t *testing.T) {
	c := newClient(t)
	c.fake.Inject(ocifake.OpCarbon, ocifake.ErrorFault(429, "TooManyRequests", "slow down"))
	c.fake.Inject(ocifake.OpCarbon, fakehttp.Truncated(`{"items":[`))
	body := query("POWER_BASED", "LOCATION_BASED", "")
	if code, h, b := c.do(c.signed("", body), nil); code != 429 || !strings.Contains(b, `"code":"TooManyRequests"`) || h.Get("Opc-Request-Id") == "" {
		t.Errorf("%d %s", code, b)
	}
	resp, err := http.DefaultClient.Do(c.signed("", body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("a truncated body read in full")
	}
	_ = resp.Body.Close()
	if code, _, _ := c.do(c.signed("", body), nil); code != 200 {
		t.Errorf("after the faults: %d", code)
	}
	if n := c.fake.Requests(ocifake.OpCarbon); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestDemo(t *testing.T) {
	now := time.Date(2026, time.March, 10, 0, 0, 0, 0, time.UTC)
	ds := ocifake.Demo(now)
	if got := ocifake.LatestPublished(now); got != provider.NewMonth(2026, time.February) {
		t.Errorf("latest %s", got)
	}
	if got := ocifake.LatestPublished(time.Date(2026, time.March, 3, 23, 0, 0, 0, time.UTC)); got != provider.NewMonth(2026, time.January) {
		t.Errorf("latest before the 4th %s", got)
	}
	if ms := ds.Months(); len(ms) != ocifake.DemoMonths || ms[len(ms)-1] != provider.NewMonth(2026, time.February) {
		t.Errorf("months %v", ms)
	}
	if cs := ds.Compartments(); len(cs) != 6 {
		t.Errorf("compartments %v", cs)
	}
	// A month's figures do not depend on when the demo runs.
	later := ocifake.Demo(now.AddDate(0, 3, 0))
	m := provider.NewMonth(2026, time.January)
	if l1, m1 := ds.Totals(m, ocifake.PowerBased); true {
		if l2, m2 := later.Totals(m, ocifake.PowerBased); l1 != l2 || m1 != m2 || l1 <= m1 || m1 <= 0 {
			t.Errorf("totals %g %g then %g %g", l1, m1, l2, m2)
		}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(ds); err != nil {
		t.Fatal(err)
	}
}

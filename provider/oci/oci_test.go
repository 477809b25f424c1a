package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

func TestFetch(t *testing.T) {
	e := newEnv(t, dataset())
	p := newProvider(t, e.options())
	res, err := fetch(t, p, dec25, jan26, feb26)
	if err != nil {
		t.Fatal(err)
	}

	// Grouping: one record per compartment path, service, region and
	// month, both emission types in it, metric tons made grams.
	want := provider.Record{Provider: "oci", Account: "acme/prod/web", Service: "COMPUTE", Location: "us-ashburn-1",
		Scope: provider.ScopeUnspecified, Month: jan26, EmissionsGrams: 500000, MarketBasedGrams: 200000,
		Known: provider.Emissions | provider.EmissionsMarketBased}
	i := slices.IndexFunc(res.Records, func(r provider.Record) bool {
		return r.Account == want.Account && r.Service == want.Service && r.Location == want.Location && r.Month == want.Month
	})
	if i < 0 {
		t.Fatalf("no record %+v in %+v", want, res.Records)
	}
	if r := res.Records[i]; r.Known != want.Known || r.Scope != want.Scope || r.Provider != want.Provider ||
		!near(r.EmissionsGrams, want.EmissionsGrams) || !near(r.MarketBasedGrams, want.MarketBasedGrams) {
		t.Errorf("record %+v, want %+v", r, want)
	}
	// A market-based zero is a figure, not a missing one.
	if i := slices.IndexFunc(res.Records, func(r provider.Record) bool { return r.Location == "eu-frankfurt-1" }); i < 0 ||
		res.Records[i].MarketBasedGrams != 0 || !res.Records[i].Has(provider.EmissionsMarketBased) {
		t.Errorf("the Frankfurt record is missing its market-based zero: %+v", res.Records)
	}
	// Two compartments named dev stay apart.
	var devs []string
	for _, r := range res.Records {
		if strings.HasSuffix(r.Account, "/dev") {
			devs = append(devs, r.Account)
		}
	}
	if !slices.Equal(devs, []string{"acme/prod/dev", "acme/research/dev"}) {
		t.Errorf("dev compartments %v, want both paths", devs)
	}
	// Spend-only services are absent from power-based figures.
	if slices.ContainsFunc(res.Records, func(r provider.Record) bool { return r.Service == "API_GATEWAY" }) {
		t.Error("a spend-only service has power-based records")
	}
	if n := len(res.Records); n != 7 {
		t.Errorf("%d records, want 7", n)
	}

	wantAccounts := []provider.Account{
		{Provider: "oci", ID: "acme", Name: "acme", ParentType: oci.ParentTypeTenancy, ParentID: tenancy},
		{Provider: "oci", ID: "acme/prod/dev", Name: "dev", ParentType: oci.ParentTypeTenancy, ParentID: tenancy},
		{Provider: "oci", ID: "acme/prod/web", Name: "web", ParentType: oci.ParentTypeTenancy, ParentID: tenancy},
		{Provider: "oci", ID: "acme/research/dev", Name: "dev", ParentType: oci.ParentTypeTenancy, ParentID: tenancy},
	}
	if !slices.Equal(res.Accounts, wantAccounts) {
		t.Errorf("accounts\n%+v\nwant\n%+v", res.Accounts, wantAccounts)
	}
	if res.Revisions != nil || res.YearlyWater != nil || res.Partial != nil {
		t.Errorf("unexpected parts of the result: %+v", res)
	}

	// The fewest requests: one per emission type for the run of three
	// months, each signed with the configured key.
	if n := e.fake.Requests(ocifake.OpCarbon); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	key := testKey()
	for _, s := range e.fake.Signers() {
		if s != ocifake.KeyID(tenancy, user, &key.PublicKey) {
			t.Errorf("a request was signed by %q", s)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.requests) != 1 || e.requests["carbon_emissions"] != 2 {
		t.Errorf("observed requests %v, want 2 carbon_emissions", e.requests)
	}
}

// body is what the tests read of a query.
type body struct {
	TenantID                  string   `json:"tenantId"`
	TimeUsageStarted          string   `json:"timeUsageStarted"`
	TimeUsageEnded            string   `json:"timeUsageEnded"`
	EmissionCalculationMethod string   `json:"emissionCalculationMethod"`
	EmissionType              string   `json:"emissionType"`
	Granularity               string   `json:"granularity"`
	IsAggregateByTime         *bool    `json:"isAggregateByTime"`
	GroupBy                   []string `json:"groupBy"`
	CompartmentDepth          *int     `json:"compartmentDepth"`
}

func decodeBodies(t *testing.T, fake *ocifake.Server) []body {
	t.Helper()
	var out []body
	for _, b := range fake.Bodies() {
		var v body
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestQueries checks what the provider asks for: monthly figures grouped
// by service, region and compartment path, both emission types, one
// period per run of contiguous months (a year at most), midnight UTC to
// the midnight after the run.
func TestQueries(t *testing.T) {
	e := newEnv(t, dataset())
	p := newProvider(t, e.options())
	// Two runs: December, and February; then a run of 14 months, split
	// into a year and two months.
	if _, err := fetch(t, p, feb26, dec25); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, p, provider.Range(feb26.Add(-13), feb26)...); err != nil {
		t.Fatal(err)
	}
	var periods []string
	for _, q := range decodeBodies(t, e.fake) {
		if q.TenantID != tenancy || q.Granularity != "MONTHLY" || q.EmissionCalculationMethod != "POWER_BASED" ||
			q.IsAggregateByTime == nil || *q.IsAggregateByTime || q.CompartmentDepth == nil || *q.CompartmentDepth != 6 ||
			!slices.Equal(q.GroupBy, []string{"service", "region", "compartmentPath"}) {
			t.Errorf("query %+v", q)
		}
		periods = append(periods, q.TimeUsageStarted+"/"+q.TimeUsageEnded+"/"+q.EmissionType)
	}
	slices.Sort(periods)
	want := []string{
		"2025-01-01T00:00:00Z/2026-01-01T00:00:00Z/LOCATION_BASED",
		"2025-01-01T00:00:00Z/2026-01-01T00:00:00Z/MARKET_BASED",
		"2025-12-01T00:00:00Z/2026-01-01T00:00:00Z/LOCATION_BASED",
		"2025-12-01T00:00:00Z/2026-01-01T00:00:00Z/MARKET_BASED",
		"2026-01-01T00:00:00Z/2026-03-01T00:00:00Z/LOCATION_BASED",
		"2026-01-01T00:00:00Z/2026-03-01T00:00:00Z/MARKET_BASED",
		"2026-02-01T00:00:00Z/2026-03-01T00:00:00Z/LOCATION_BASED",
		"2026-02-01T00:00:00Z/2026-03-01T00:00:00Z/MARKET_BASED",
	}
	if !slices.Equal(periods, want) {
		t.Errorf("periods\n%s\nwant\n%s", strings.Join(periods, "\n"), strings.Join(want, "\n"))
	}
	if res, err := fetch(t, p); err != nil || len(res.Records) != 0 || e.fake.Requests(ocifake.OpCarbon) != 8 {
		t.Errorf("no months: %+v %v, %d requests; want nothing asked", res, err, e.fake.Requests(ocifake.OpCarbon))
	}
}

func TestSpendBased(t *testing.T) {
	e := newEnv(t, dataset())
	opts := e.options()
	opts.Method = oci.MethodSpendBased
	res, err := fetch(t, newProvider(t, opts), jan26)
	if err != nil {
		t.Fatal(err)
	}
	qs := decodeBodies(t, e.fake)
	if len(qs) != 1 || qs[0].EmissionType != "MARKET_BASED" || qs[0].EmissionCalculationMethod != "SPEND_BASED" {
		t.Fatalf("queries %+v, want one spend-based market-based query", qs)
	}
	for _, r := range res.Records {
		if r.Known != provider.EmissionsMarketBased || r.EmissionsGrams != 0 {
			t.Errorf("record %+v: want market-based only", r)
		}
	}
	if !slices.ContainsFunc(res.Records, func(r provider.Record) bool { return r.Service == "API_GATEWAY" }) {
		t.Error("spend-based figures miss the spend-only service")
	}
}

// TestCompartmentDepth: compartments below the depth are reported under
// their ancestor at that depth; nothing is lost.
func TestCompartmentDepth(t *testing.T) {
	e := newEnv(t, dataset())
	opts := e.options()
	opts.CompartmentDepth = 1
	res, err := fetch(t, newProvider(t, opts), jan26)
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]bool{}
	var l float64
	for _, r := range res.Records {
		accounts[r.Account] = true
		l += r.EmissionsGrams
	}
	if len(accounts) != 3 || !accounts["acme/prod"] || !accounts["acme/research"] || !accounts["acme"] {
		t.Errorf("accounts %v, want acme, acme/prod and acme/research", accounts)
	}
	if wl, _ := dataset().TotalBase(jan26, ocifake.PowerBased); !near(l, wl) {
		t.Errorf("location-based %g g, want %g", l, wl)
	}
	if q := decodeBodies(t, e.fake); *q[0].CompartmentDepth != 1 {
		t.Errorf("compartmentDepth %d, want 1", *q[0].CompartmentDepth)
	}
}

// errorCase is an error answer, or an answer OCI should not give, and
// what the provider makes of it.
type errorCase struct {
	name         string
	setup        func(*ocifake.Server)
	opts         func(*oci.Options)
	wantReason   provider.Reason
	wantIn       []string
	wantRequests int
	wantBackoffs int
	retryAfter   time.Duration
}

// TestErrors drives OCI's own failures over the wire: each gives a clear,
// classified error after the right number of attempts. The queries are
// spend-based, one per fetch, so that the attempts counted are those of
// one query.
func TestErrors(t *testing.T) {
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			if tt.setup != nil {
				tt.setup(e.fake)
			}
			opts := e.options()
			opts.Method = oci.MethodSpendBased
			if tt.opts != nil {
				tt.opts(&opts)
			}
			_, err := fetch(t, newProvider(t, opts), jan26)
			if n := e.fake.Requests(ocifake.OpCarbon); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if n := e.backoffCount(); n != tt.wantBackoffs {
				t.Errorf("the backoff was asked %d times, want %d", n, tt.wantBackoffs)
			}
			if err == nil {
				t.Fatalf("no error; want %s", tt.wantReason)
			}
			if got := provider.ReasonOf(err); got != tt.wantReason {
				t.Errorf("reason %s, want %s (%v)", got, tt.wantReason, err)
			}
			if got := provider.RetryAfterOf(err); got != tt.retryAfter {
				t.Errorf("retry after %s, want %s", got, tt.retryAfter)
			}
			if !utf8.ValidString(err.Error()) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line of valid UTF-8", err)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// errorCases are OCI's error answers, and answers it should not give.
func errorCases() []errorCase {
	return append(answerCases(), malformedCases()...)
}

// answerCases are OCI's error answers.
func answerCases() []errorCase {
	throttled := ocifake.ErrorFault(http.StatusTooManyRequests, "TooManyRequests", "Too many requests for the tenancy")
	return []errorCase{
		{
			name:         "a missing policy names the statement to grant",
			setup:        func(s *ocifake.Server) { s.Deny() },
			wantReason:   provider.ReasonPermission,
			wantIn:       []string{"RequestUsageCarbonEmissions: 404 NotAuthorizedOrNotFound: Authorization failed or requested resource not found.", `"Allow group <group> to read usage-report in tenancy"`, "opc-request-id "},
			wantRequests: 1,
		},
		{
			name:         "another tenancy than the principal's",
			opts:         func(o *oci.Options) { o.TenancyID = "ocid1.tenancy.oc1..aaaaaaaaanothertenancy" },
			wantReason:   provider.ReasonPermission,
			wantIn:       []string{"404 NotAuthorizedOrNotFound", "check that tenancy_id, if set, names the principal's own tenancy"},
			wantRequests: 1,
		},
		{
			name:         "a key OCI does not know",
			opts:         func(o *oci.Options) { o.Profile = "OTHER" },
			wantReason:   provider.ReasonAuth,
			wantIn:       []string{"401 NotAuthenticated", "the key id names no API key of a known user"},
			wantRequests: 1,
		},
		{
			name: "a long Retry-After is left to the refresher",
			setup: func(s *ocifake.Server) {
				f := throttled
				f.Header = http.Header{"Retry-After": {"3600"}}
				s.Inject(ocifake.OpCarbon, f)
			},
			wantReason:   provider.ReasonThrottled,
			wantIn:       []string{"429 TooManyRequests", "retry after 1h0m0s"},
			wantRequests: 1,
			wantBackoffs: 1,
			retryAfter:   time.Hour,
		},
		{
			name: "a 503 without OCI's error body",
			setup: func(s *ocifake.Server) {
				s.Inject(ocifake.OpCarbon, ocifake.Fault{Status: 503, Body: "<html>busy</html>", Header: http.Header{"Content-Type": {"text/html"}}, Times: 2})
			},
			opts:         func(o *oci.Options) { o.MaxAttempts = 2 },
			wantReason:   provider.ReasonServer,
			wantIn:       []string{"503 BadErrorResponse"},
			wantRequests: 2,
			wantBackoffs: 1,
		},
		{
			name: "an invalid query is not retried",
			setup: func(s *ocifake.Server) {
				s.Inject(ocifake.OpCarbon, ocifake.ErrorFault(http.StatusBadRequest, "InvalidParameter", "groupBy is invalid"))
			},
			wantReason:   provider.ReasonBadRequest,
			wantIn:       []string{"400 InvalidParameter: groupBy is invalid", "please report this"},
			wantRequests: 1,
		},
		{
			name: "a long message is cut between characters",
			setup: func(s *ocifake.Server) {
				s.Inject(ocifake.OpCarbon, ocifake.ErrorFault(http.StatusBadRequest, "InvalidParameter", "x"+strings.Repeat("é", 600)))
			},
			wantReason:   provider.ReasonBadRequest,
			wantIn:       []string{"éé…"},
			wantRequests: 1,
		},
	}
}

// malformedCases are answers OCI should not give.
func malformedCases() []errorCase {
	return []errorCase{
		{
			name:         "a complete body that is not JSON",
			setup:        func(s *ocifake.Server) { s.Inject(ocifake.OpCarbon, ocifake.Fault{Status: 200, Body: `{"items":[`}) },
			wantReason:   provider.ReasonMalformed,
			wantIn:       []string{"malformed response: unexpected end of JSON input"},
			wantRequests: 1,
		},
		{
			name: "an item of the other emission type",
			setup: func(s *ocifake.Server) {
				s.Inject(ocifake.OpCarbon, ocifake.Fault{Status: 200, Body: `{"items":[{"timeUsageStarted":"2026-01-01T00:00:00.000Z",` +
					`"timeUsageEnded":"2026-02-01T00:00:00.000Z","computedCarbonEmission":1,"emissionCalculationMethod":"SPEND_BASED","emissionType":"LOCATION_BASED"}]}`})
			},
			wantReason:   provider.ReasonMalformed,
			wantIn:       []string{`an item of emission type "LOCATION_BASED" answers a query for MARKET_BASED`},
			wantRequests: 1,
		},
		{
			name: "an item spanning months",
			setup: func(s *ocifake.Server) {
				s.Inject(ocifake.OpCarbon, ocifake.Fault{Status: 200, Body: `{"items":[{"timeUsageStarted":"2026-01-01T00:00:00.000Z",` +
					`"timeUsageEnded":"2026-03-01T00:00:00.000Z","computedCarbonEmission":1,"emissionCalculationMethod":"SPEND_BASED"}]}`})
			},
			wantReason:   provider.ReasonMalformed,
			wantIn:       []string{"a monthly item spans 2026-01-01T00:00:00Z to 2026-03-01T00:00:00Z"},
			wantRequests: 1,
		},
		{
			name: "a page token that repeats",
			setup: func(s *ocifake.Server) {
				s.Inject(ocifake.OpCarbon, ocifake.Fault{Status: 200, Body: `{"items":[]}`, Header: http.Header{"Opc-Next-Page": {"again"}}, Times: 2})
			},
			wantReason:   provider.ReasonMalformed,
			wantIn:       []string{"opc-next-page repeats"},
			wantRequests: 2,
		},
	}
}

// TestContext: a deadline or a cancellation ends the fetch at once, even
// while the retry waits, and a wait that would pass the deadline is not
// begun.
func TestContext(t *testing.T) {
	slowBackoff := func(o *oci.Options) {
		o.Method = oci.MethodSpendBased
		o.Backoff = func(uint) time.Duration { return 20 * time.Second }
	}
	t.Run("a wait past the deadline", func(t *testing.T) {
		e := newEnv(t, dataset())
		e.fake.Inject(ocifake.OpCarbon, ocifake.ErrorFault(500, "InternalServerError", "Internal error"))
		opts := e.options()
		slowBackoff(&opts)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := newProvider(t, opts).Fetch(ctx, []provider.Month{jan26})
		if provider.ReasonOf(err) != provider.ReasonServer || time.Since(start) > 2*time.Second {
			t.Errorf("err %v (%s) after %s; want the server error at once", err, provider.ReasonOf(err), time.Since(start))
		}
	})
	t.Run("a cancellation during the wait", func(t *testing.T) {
		e := newEnv(t, dataset())
		e.fake.Inject(ocifake.OpCarbon, ocifake.ErrorFault(500, "InternalServerError", "Internal error"))
		opts := e.options()
		slowBackoff(&opts)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := newProvider(t, opts).Fetch(ctx, []provider.Month{jan26})
		if !errors.Is(err, context.Canceled) || provider.ReasonOf(err) != provider.ReasonCanceled || time.Since(start) > 2*time.Second {
			t.Errorf("err %v (%s) after %s; want canceled at once", err, provider.ReasonOf(err), time.Since(start))
		}
		// The SDK's retry goroutine ends with the wait: no further attempt.
		time.Sleep(200 * time.Millisecond)
		if n := e.fake.Requests(ocifake.OpCarbon); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// TestCredentials: the SDK's client is built by the first fetch, so a
// configuration it cannot use fails refreshes, classified, never New; no
// request is sent without credentials.
func TestCredentials(t *testing.T) {
	tests := []struct {
		name   string
		opts   func(t *testing.T, e *env, o *oci.Options)
		wantIn []string
	}{
		{
			name:   "a config file that is gone",
			opts:   func(_ *testing.T, e *env, o *oci.Options) { o.ConfigFile = e.dir + "/missing" },
			wantIn: []string{"no usable OCI credentials (auth config_file: check ", "/missing", "can not read config file"},
		},
		{
			name:   "a profile the file lacks",
			opts:   func(_ *testing.T, _ *env, o *oci.Options) { o.Profile = "NOPE" },
			wantIn: []string{"its profile [NOPE]", "did not contain profile: NOPE"},
		},
		{
			name:   "a wrong passphrase",
			opts:   func(_ *testing.T, _ *env, o *oci.Options) { o.PrivateKeyPassphrase = "wrong-" + canary },
			wantIn: []string{"the key's passphrase"},
		},
		{
			name:   "no passphrase for an encrypted key",
			opts:   func(_ *testing.T, _ *env, o *oci.Options) { o.PrivateKeyPassphrase = "" },
			wantIn: []string{"no usable OCI credentials"},
		},
		{
			name: "workload identity outside OKE",
			opts: func(t *testing.T, _ *env, o *oci.Options) {
				t.Setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "")
				_ = os.Unsetenv("OCI_RESOURCE_PRINCIPAL_VERSION")
				o.Auth, o.ConfigFile, o.PrivateKeyPassphrase = oci.AuthWorkloadIdentity, "", ""
			},
			wantIn: []string{"auth workload_identity: workload identity works in OKE pods only", "OCI_RESOURCE_PRINCIPAL_VERSION, not present"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			opts := e.options()
			tt.opts(t, e, &opts)
			p := newProvider(t, opts)
			for range 2 { // the second fetch tries again
				_, err := fetch(t, p, jan26)
				if provider.ReasonOf(err) != provider.ReasonAuth {
					t.Fatalf("err %v (%s), want auth", err, provider.ReasonOf(err))
				}
				t.Log(err)
				for _, s := range tt.wantIn {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				if out := fmt.Sprintf("%v %+v\n%s", err, err, e.logs); strings.Contains(out, canary) || containsKey(out, e.keyPEM) {
					t.Errorf("a secret leaked:\n%s", out)
				}
			}
			if n := e.fake.Requests(ocifake.OpCarbon); n != 0 {
				t.Errorf("%d requests without credentials", n)
			}
		})
	}
}

// containsKey reports whether out holds any line of the key's PEM body.
func containsKey(out string, keyPEM []byte) bool {
	for line := range strings.Lines(string(keyPEM)) {
		line = strings.TrimSpace(line)
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") && strings.Contains(out, line) {
			return true
		}
	}
	return false
}

// recorder answers every request with an empty page and records its URL,
// so that the SDK's endpoint choice shows without a server.
type recorder struct {
	mu   sync.Mutex
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
	r.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"items":[]}`)), Request: req}, nil
}

// TestEndpoints: without an endpoint, the SDK derives the Usage API's
// host from the region, realm included; the exporter's region overrides
// the profile's.
func TestEndpoints(t *testing.T) {
	for _, tt := range []struct{ region, want string }{
		{"", "https://usageapi.us-ashburn-1.oci.oraclecloud.com/20200107/usageCarbonEmissions"},
		{"eu-frankfurt-1", "https://usageapi.eu-frankfurt-1.oci.oraclecloud.com/20200107/usageCarbonEmissions"},
		{"us-langley-1", "https://usageapi.us-langley-1.oci.oraclegovcloud.com/20200107/usageCarbonEmissions"},
		{"fra", "https://usageapi.eu-frankfurt-1.oci.oraclecloud.com/20200107/usageCarbonEmissions"},
	} {
		t.Run(tt.region, func(t *testing.T) {
			e := newEnv(t, dataset())
			rec := &recorder{}
			opts := e.options()
			opts.Endpoint, opts.Region, opts.HTTPClient = "", tt.region, &http.Client{Transport: rec}
			if _, err := fetch(t, newProvider(t, opts), jan26); err != nil {
				t.Fatal(err)
			}
			if len(rec.urls) != 2 || rec.urls[0] != tt.want {
				t.Errorf("requests to %v, want %s", rec.urls, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []oci.Options{
		{Auth: "password"},
		{Method: "guess"},
		{CompartmentDepth: 7},
		{Endpoint: "https://usageapi.example.com/20200107"},
		{Endpoint: "https://user:pw@usageapi.example.com"},
		{Auth: oci.AuthInstancePrincipal, ConfigFile: "/x"},
		{PageSize: 1001},
	} {
		if _, err := oci.New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error quotes the URL: %v", err)
		}
	}
}

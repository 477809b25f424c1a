package scaleway_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

// canary stands for a secret key; it must never show up in any output.
// It has the shape of a real one (a UUID), so that it passes validation
// and reaches every code path.
const (
	canary    = "c0ffee00-5ec7-4e7a-8000-000000ca7a27"
	accessKey = "SCWTESTKEY0000000001"
	org       = "11111111-2222-4333-8444-555555555555"
	projA     = "aaaaaaaa-0000-4000-8000-000000000001"
	projB     = "bbbbbbbb-0000-4000-8000-000000000002"
)

var (
	nov24 = provider.NewMonth(2024, time.November)
	dec24 = nov24 + 1
	jan25 = nov24 + 2
	feb25 = nov24 + 3
)

// dataset has two projects; fr-par has two zones and SKUs tied to the
// region itself; one product runs in two zones of one region, so that its
// SKUs must be summed to one record.
func dataset() scalewayfake.Dataset {
	sku := func(project, region, zone, id, service, product string, m provider.Month, kg, m3 float64) scalewayfake.SKU {
		return scalewayfake.SKU{Project: project, Region: region, Zone: zone, ID: id, ServiceCategory: service,
			ProductCategory: product, Month: m, KgCO2e: kg, M3Water: m3}
	}
	return scalewayfake.Dataset{
		OrganizationID: org,
		Available:      []provider.Month{nov24, dec24, jan25},
		SKUs: []scalewayfake.SKU{
			sku(projA, "fr-par", "fr-par-1", "instance/pro2-s/fr-par-1", "compute", "instances", dec24, 12.345678, 0.2718281),
			sku(projA, "fr-par", "fr-par-2", "instance/pro2-m/fr-par-2", "compute", "instances", dec24, 7.6543219, 0.1414213),
			sku(projA, "fr-par", "", "object-storage/standard/fr-par", "storage", "object_storage", dec24, 3.3333333, 0.0707106),
			sku(projA, "nl-ams", "", "kubernetes/kapsule/nl-ams", "containers", "kubernetes", dec24, 1.1111111, 0.0123456),
			sku(projB, "fr-par", "fr-par-1", "elastic-metal/em-a/fr-par-1", "baremetal", "elastic_metal", dec24, 99.999999, 1.7320508),
			sku(projB, "pl-waw", "pl-waw-1", "instance/gp1-xs/pl-waw-1", "compute", "", dec24, 0.5, 0.01),
			sku(projA, "fr-par", "fr-par-1", "instance/pro2-s/fr-par-1", "compute", "instances", nov24, 10, 0.2),
			sku(projB, "fr-par", "", "rdb/db-pro2-s/fr-par", "databases", "managed_relational_databases", jan25, 4.25, 0.08),
			// Published by nobody: the month's data exists (as the month in
			// progress has), but availability does not list it.
			sku(projA, "fr-par", "fr-par-1", "instance/pro2-s/fr-par-1", "compute", "instances", feb25, 5, 0.1),
		},
	}
}

// isolate keeps the SDK from reading the machine's Scaleway configuration,
// so that each test sees only what it sets itself.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{
		"SCW_ACCESS_KEY", "SCW_SECRET_KEY", "SCW_PROFILE", "SCW_API_URL", "SCW_DEFAULT_ORGANIZATION_ID",
		"SCW_DEFAULT_PROJECT_ID", "SCW_DEFAULT_REGION", "SCW_DEFAULT_ZONE", "SCW_INSECURE", "SCW_TOKEN",
		"SCW_ORGANIZATION", "SCALEWAY_ACCESS_KEY", "SCALEWAY_TOKEN", "SCALEWAY_ORGANIZATION", "SCW_TLSVERIFY",
	} {
		if _, ok := os.LookupEnv(k); ok {
			t.Setenv(k, "")
			os.Unsetenv(k) // the SDK tells an empty variable from an absent one
		}
	}
	t.Setenv("SCW_CONFIG_PATH", filepath.Join(dir, "config.yaml"))
	return dir
}

type env struct {
	fake *scalewayfake.Server
	ts   *httptest.Server
	logs *logbuf.Buffer

	mu       sync.Mutex
	observed map[string][]int // status codes by endpoint
}

func newEnv(t *testing.T, ds scalewayfake.Dataset) *env {
	t.Helper()
	isolate(t)
	e := &env{fake: scalewayfake.NewServer(ds, canary), logs: &logbuf.Buffer{}, observed: make(map[string][]int)}
	e.fake.SetNow(func() time.Time { return time.Date(2025, time.March, 10, 0, 0, 0, 0, time.UTC) })
	e.ts = httptest.NewServer(e.fake)
	t.Cleanup(e.ts.Close)
	return e
}

// options are a provider's options against the fake with the test key and
// fast retries.
func (e *env) options() scaleway.Options {
	return scaleway.Options{
		OrganizationID: org,
		AccessKey:      accessKey,
		SecretKey:      canary,
		APIURL:         e.ts.URL,
		MinBackoff:     time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observe: func(endpoint string, code int) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.observed[endpoint] = append(e.observed[endpoint], code)
		},
	}
}

func (e *env) codes(endpoint string) []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.observed[endpoint])
}

func (e *env) provider(t *testing.T, opts scaleway.Options) *scaleway.Provider {
	t.Helper()
	p, err := scaleway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// times is f for the next n requests.
func times(f scalewayfake.Fault, n int) scalewayfake.Fault {
	f.Times = n
	return f
}

// near compares float64 sums that may differ in the order of addition.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// checkTotals compares records of month m with the fake's own totals.
func checkTotals(t *testing.T, ds scalewayfake.Dataset, recs []provider.Record, m provider.Month, projects ...string) {
	t.Helper()
	want := ds.Totals(m, projects...)
	got := map[scalewayfake.TotalKey]provider.Record{}
	for _, r := range recs {
		if r.Month != m {
			continue
		}
		product := r.Service
		if product == scaleway.Unknown {
			product = "unknown_product_category"
		}
		k := scalewayfake.TotalKey{Project: r.Account, ProductCategory: product, Region: r.Location}
		if _, dup := got[k]; dup {
			t.Errorf("%s: two records for %+v", m, k)
		}
		got[k] = r
	}
	for k, w := range want {
		if k.ProductCategory == "" {
			k.ProductCategory = "unknown_product_category"
		}
		r, ok := got[k]
		if !ok {
			t.Errorf("%s: no record for %+v", m, k)
			continue
		}
		if !near(r.EmissionsGrams, w.Grams) || !near(r.WaterCubicMeters, w.CubicMeters) {
			t.Errorf("%s %+v: %v g, %v m3; want %v g, %v m3", m, k, r.EmissionsGrams, r.WaterCubicMeters, w.Grams, w.CubicMeters)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("%s: unexpected record for %+v", m, k)
	}
}

// TestFetch checks the grouping to project × product category × region,
// the units and the record shape against the fake's own totals, over
// HTTP with the SDK's client.
func TestFetch(t *testing.T) {
	ds := dataset()
	e := newEnv(t, ds)
	p := e.provider(t, e.options())
	res, err := p.Fetch(context.Background(), []provider.Month{dec24, jan25})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, ds, res.Records, dec24)
	checkTotals(t, ds, res.Records, jan25)
	for _, r := range res.Records {
		if r.Provider != "scaleway" || r.Scope != provider.ScopeUnspecified ||
			!r.Has(provider.Emissions) || !r.Has(provider.Water) || r.Has(provider.EmissionsMarketBased) || r.Has(provider.Energy) {
			t.Errorf("record %+v: want provider scaleway, scope unspecified, emissions and water only", r)
		}
	}

	// The two zones' instances are one record; the region's own SKUs
	// count; a SKU without a product category is "unknown".
	find := func(project, service, region string) *provider.Record {
		for i, r := range res.Records {
			if r.Month == dec24 && r.Account == project && r.Service == service && r.Location == region {
				return &res.Records[i]
			}
		}
		t.Fatalf("no record %s/%s/%s in %+v", project, service, region, res.Records)
		return nil
	}
	inst := find(projA, "instances", "fr-par")
	if want := (float64(float32(12.345678)) + float64(float32(7.6543219))) * 1000; !near(inst.EmissionsGrams, want) {
		t.Errorf("fr-par instances: %v g, want %v (kg × 1000, both zones)", inst.EmissionsGrams, want)
	}
	if obj := find(projA, "object_storage", "fr-par"); !near(obj.EmissionsGrams, float64(float32(3.3333333))*1000) {
		t.Errorf("region-level object storage: %v g", obj.EmissionsGrams)
	}
	find(projA, "kubernetes", "nl-ams")
	find(projB, scaleway.Unknown, "pl-waw")

	want := []provider.Account{
		{Provider: "scaleway", ID: projA, ParentType: scaleway.ParentTypeOrganization, ParentID: org},
		{Provider: "scaleway", ID: projB, ParentType: scaleway.ParentTypeOrganization, ParentID: org},
	}
	if !slices.Equal(res.Accounts, want) {
		t.Errorf("accounts %+v, want %+v", res.Accounts, want)
	}
	if got := e.codes(scaleway.EndpointImpactData); !slices.Equal(got, []int{200, 200}) {
		t.Errorf("impact_data attempts %v, want two 200s", got)
	}
	if got := e.codes(scaleway.EndpointAvailability); !slices.Equal(got, []int{200}) {
		t.Errorf("report_availability attempts %v, want one 200", got)
	}
	if strings.Contains(e.logs.String(), "region totals differ") {
		t.Errorf("the fake's totals add up, yet the provider warned:\n%s", e.logs)
	}
}

// TestFloat32SummedInFloat64 shows why the sums are float64: a large SKU
// and many small ones in one project, product and region. Added up in
// float32, the small ones would vanish (the spacing of float32 numbers
// near 1e6 is 0.0625).
func TestFloat32SummedInFloat64(t *testing.T) {
	ds := scalewayfake.Dataset{OrganizationID: org, Available: []provider.Month{dec24}}
	ds.SKUs = append(ds.SKUs, scalewayfake.SKU{Project: projA, Region: "fr-par", Zone: "fr-par-1", ID: "big",
		ServiceCategory: "baremetal", ProductCategory: "elastic_metal", Month: dec24, KgCO2e: 1e6, M3Water: 1e4})
	const small = 1000
	for i := range small {
		ds.SKUs = append(ds.SKUs, scalewayfake.SKU{Project: projA, Region: "fr-par", Zone: "fr-par-2", ID: fmt.Sprintf("small-%d", i),
			ServiceCategory: "baremetal", ProductCategory: "elastic_metal", Month: dec24, KgCO2e: 0.01, M3Water: 0.0001})
	}
	e := newEnv(t, ds)
	res, err := e.provider(t, e.options()).Fetch(context.Background(), []provider.Month{dec24})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("records %+v, want one", res.Records)
	}
	r := res.Records[0]
	want := (1e6 + small*float64(float32(0.01))) * 1000
	if !near(r.EmissionsGrams, want) {
		t.Errorf("%v g, want %v", r.EmissionsGrams, want)
	}
	var f32 float32 = 1e6
	for range small {
		f32 += float32(0.01)
	}
	if near(r.EmissionsGrams, float64(f32)*1000) {
		t.Errorf("%v g is the float32 sum", r.EmissionsGrams)
	}
	if w := 1e4 + small*float64(float32(0.0001)); !near(r.WaterCubicMeters, w) {
		t.Errorf("%v m3, want %v", r.WaterCubicMeters, w)
	}
	checkTotals(t, ds, res.Records, dec24)
}

// TestAvailability checks that only the months Scaleway lists are asked
// for, never one before October 2024, with the SDK's query encoding:
// RFC 3339 dates and repeated keys for lists.
func TestAvailability(t *testing.T) {
	ds := dataset()
	e := newEnv(t, ds)
	opts := e.options()
	opts.ProjectIDs = []string{projA, projB}
	p := e.provider(t, opts)
	sep24 := nov24 - 2
	res, err := p.Fetch(context.Background(), []provider.Month{sep24, sep24 + 1, nov24, dec24, jan25, feb25})
	if err != nil {
		t.Fatal(err)
	}
	avail := e.fake.Queries(scalewayfake.OpAvailability)
	if len(avail) != 1 {
		t.Fatalf("%d availability requests, want 1", len(avail))
	}
	if got := avail[0].Get("start_date"); got != "2024-10-01T00:00:00Z" {
		t.Errorf("availability start_date %q, want the first month Scaleway serves", got)
	}
	if got := avail[0].Get("organization_id"); got != org {
		t.Errorf("organization_id %q", got)
	}
	var starts []string
	for _, q := range e.fake.Queries(scalewayfake.OpImpactData) {
		starts = append(starts, q.Get("start_date")+".."+q.Get("end_date"))
		if got := q["project_ids"]; !slices.Equal(got, []string{projA, projB}) {
			t.Errorf("project_ids %q, want two repeated keys", got)
		}
	}
	slices.Sort(starts)
	want := []string{
		"2024-11-01T00:00:00Z..2024-12-01T00:00:00Z",
		"2024-12-01T00:00:00Z..2025-01-01T00:00:00Z",
		"2025-01-01T00:00:00Z..2025-02-01T00:00:00Z",
	}
	if !slices.Equal(starts, want) {
		t.Errorf("data requested for %q, want %q (February is not published)", starts, want)
	}
	for _, r := range res.Records {
		if r.Month == feb25 {
			t.Errorf("a record for an unpublished month: %+v", r)
		}
	}
	checkTotals(t, ds, res.Records, nov24)

	// Nothing requested that Scaleway can serve: no request at all.
	before := e.fake.Requests(scalewayfake.OpAvailability)
	res, err = p.Fetch(context.Background(), []provider.Month{sep24, sep24 - 1})
	if err != nil || res.Records != nil || res.Accounts != nil {
		t.Errorf("months before 2024-10: %+v, %v", res, err)
	}
	if n := e.fake.Requests(scalewayfake.OpAvailability); n != before {
		t.Errorf("%d availability requests for months before 2024-10", n-before)
	}

	// Only unpublished months: the availability request, no data request.
	dataBefore := e.fake.Requests(scalewayfake.OpImpactData)
	if _, err := p.Fetch(context.Background(), []provider.Month{feb25}); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Requests(scalewayfake.OpImpactData); n != dataBefore {
		t.Errorf("%d data requests for an unpublished month", n-dataBefore)
	}
}

// TestProjectFilter reads two projects of three.
func TestProjectFilter(t *testing.T) {
	ds := dataset()
	e := newEnv(t, ds)
	opts := e.options()
	opts.ProjectIDs = []string{projB}
	res, err := e.provider(t, opts).Fetch(context.Background(), []provider.Month{dec24})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, ds, res.Records, dec24, projB)
	if len(res.Accounts) != 1 || res.Accounts[0].ID != projB {
		t.Errorf("accounts %+v", res.Accounts)
	}
}

// failure runs one fetch of December against a fake prepared by setup
// and returns its error, checked for the secret.
func failure(t *testing.T, e *env, opts scaleway.Options) *provider.Error {
	t.Helper()
	p := e.provider(t, opts)
	_, err := p.Fetch(context.Background(), []provider.Month{dec24})
	if err == nil {
		t.Fatal("the fetch succeeded")
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%T %v is not a *provider.Error", err, err)
	}
	if strings.Contains(err.Error(), canary) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), canary) {
		t.Errorf("the secret key is in the error: %v", err)
	}
	return pe
}

// errorCase is a failure of one fetch of December.
type errorCase struct {
	name       string
	setup      func(e *env, o *scaleway.Options)
	reason     provider.Reason
	retryAfter time.Duration
	contains   []string
	// requests are the fake's availability and data requests.
	availability, data int
}

// refusalCases are Scaleway's own refusals (its error bodies, its
// gateway's 429), what the messages say of them, and the retry policy.
func refusalCases() []errorCase {
	return []errorCase{
		{
			name:     "unknown secret key",
			setup:    func(_ *env, o *scaleway.Options) { o.SecretKey = "99999999-9999-4999-8999-999999999999" },
			reason:   provider.ReasonAuth,
			contains: []string{"GetImpactReportAvailability: 401 Unauthorized", "denied authentication: API key does not exist", "Scaleway rejected the API key"},
			// Authentication failures are final: one attempt.
			availability: 1,
		},
		{
			name:         "missing permission set",
			setup:        func(e *env, _ *scaleway.Options) { e.fake.Deny(true) },
			reason:       provider.ReasonPermission,
			contains:     []string{"403 Forbidden", "read environmental_footprint", "IAM permission set EnvironmentalImpactReadOnly on organization " + org},
			availability: 1,
		},
		{
			name:         "another organization",
			setup:        func(_ *env, o *scaleway.Options) { o.OrganizationID = "22222222-3333-4444-8555-666666666666" },
			reason:       provider.ReasonPermission,
			contains:     []string{"EnvironmentalImpactReadOnly on organization 22222222-3333-4444-8555-666666666666"},
			availability: 1,
		},
		{
			name: "throttled until the attempts run out",
			setup: func(e *env, o *scaleway.Options) {
				o.MaxAttempts = 3
				e.fake.Inject(scalewayfake.OpAvailability, times(scalewayfake.RateLimited(), 3))
			},
			reason:       provider.ReasonThrottled,
			contains:     []string{"429 Too Many Requests (rate limited; gave up after 3 attempts)"},
			availability: 3,
		},
		{
			name: "an empty 429 labelled as JSON is still throttling",
			setup: func(e *env, o *scaleway.Options) {
				o.MaxAttempts = 1
				e.fake.Inject(scalewayfake.OpAvailability, scalewayfake.Fault{Status: http.StatusTooManyRequests})
			},
			reason:       provider.ReasonThrottled,
			contains:     []string{"429 Too Many Requests"},
			availability: 1,
		},
		{
			name: "a long Retry-After is left to the refresher",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.Fault{Status: http.StatusTooManyRequests,
					Header: http.Header{"Retry-After": {"120"}}, Body: `{"message":"slow down"}`})
			},
			reason:       provider.ReasonThrottled,
			retryAfter:   2 * time.Minute,
			contains:     []string{"GetImpactData: 429 Too Many Requests: slow down", "(retry after 2m0s)"},
			availability: 1, data: 1,
		},
		{
			name: "501 is not retried",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.ServerError(http.StatusNotImplemented))
			},
			reason:       provider.ReasonServer,
			contains:     []string{"501 Not Implemented"},
			availability: 1, data: 1,
		},
	}
}

// answerCases are answers that are not what the client asked for or can
// use: bodies that do not decode into the API's types, data for another
// period, a key echoed back, another endpoint.
func answerCases() []errorCase {
	return []errorCase{
		{
			name: "invalid JSON",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.Fault{Status: 200, Body: `{"projects":[{"project_id":42}]}`})
			},
			reason:       provider.ReasonMalformed,
			contains:     []string{"GetImpactData: malformed response"},
			availability: 1, data: 1,
		},
		{
			name: "a value beyond float32",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.Fault{Status: 200,
					Body: `{"projects":[{"project_id":"` + projA + `","regions":[{"region":"fr-par","skus":[{"sku":"x","total_sku_impact":{"kg_co2_equivalent":1e39,"m3_water_usage":0}}]}]}]}`})
			},
			reason:       provider.ReasonMalformed,
			contains:     []string{"malformed response"},
			availability: 1, data: 1,
		},
		{
			name: "an answer for another period",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.Fault{Status: 200,
					Body: `{"start_date":"2024-12-01T00:00:00Z","end_date":"2025-03-10T00:00:00Z","projects":[]}`})
			},
			reason:       provider.ReasonMalformed,
			contains:     []string{"data for 2024-12-01T00:00:00Z to 2025-03-10T00:00:00Z, not for the month 2024-12 asked"},
			availability: 1, data: 1,
		},
		{
			name: "a server that echoes the key",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpAvailability, scalewayfake.Fault{Status: 400,
					Body: `{"message":"bad token ` + canary + `","type":"invalid_request_error"}`})
			},
			reason:       provider.ReasonBadRequest,
			contains:     []string{"400 Bad Request: bad token <secret>"},
			availability: 1,
		},
		{
			name: "an error answer past 64 KiB",
			setup: func(e *env, _ *scaleway.Options) {
				e.fake.Inject(scalewayfake.OpAvailability, scalewayfake.Fault{Status: 400,
					Body: `{"message":"` + strings.Repeat("x", 64<<10) + `","type":"invalid_request_error"}`})
			},
			reason:       provider.ReasonBadRequest,
			contains:     []string{"GetImpactReportAvailability: 400 Bad Request (Scaleway rejected"},
			availability: 1,
		},
		{
			name: "a wrong api_url",
			setup: func(e *env, o *scaleway.Options) {
				o.APIURL = e.ts.URL + "/elsewhere"
			},
			reason:   provider.ReasonNotFound,
			contains: []string{"404 Not Found", "check api_url"},
		},
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range append(refusalCases(), answerCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			opts := e.options()
			tt.setup(e, &opts)
			pe := failure(t, e, opts)
			t.Logf("%s: %v", pe.Reason, pe)
			if pe.Reason != tt.reason {
				t.Errorf("reason %s, want %s: %v", pe.Reason, tt.reason, pe)
			}
			if pe.RetryAfter != tt.retryAfter {
				t.Errorf("retry after %s, want %s", pe.RetryAfter, tt.retryAfter)
			}
			for _, s := range tt.contains {
				if !strings.Contains(pe.Error(), s) {
					t.Errorf("error %q does not contain %q", pe, s)
				}
			}
			if tt.availability+tt.data > 0 {
				if n := e.fake.Requests(scalewayfake.OpAvailability); n != tt.availability {
					t.Errorf("%d availability requests, want %d", n, tt.availability)
				}
				if n := e.fake.Requests(scalewayfake.OpImpactData); n != tt.data {
					t.Errorf("%d data requests, want %d", n, tt.data)
				}
			}
		})
	}
}

// TestRetries checks that a 429 without body or Retry-After, and a 503,
// are retried with backoff until the answer comes, and that every attempt
// is counted.
func TestRetries(t *testing.T) {
	ds := dataset()
	e := newEnv(t, ds)
	e.fake.Inject(scalewayfake.OpAvailability, times(scalewayfake.RateLimited(), 2))
	e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.ServerError(http.StatusServiceUnavailable))
	e.fake.Inject(scalewayfake.OpImpactData, scalewayfake.RateLimited())
	p := e.provider(t, e.options())
	res, err := p.Fetch(context.Background(), []provider.Month{dec24})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, ds, res.Records, dec24)
	if got := e.codes(scaleway.EndpointAvailability); !slices.Equal(got, []int{429, 429, 200}) {
		t.Errorf("availability attempts %v, want 429, 429, 200", got)
	}
	if got := e.codes(scaleway.EndpointImpactData); !slices.Equal(got, []int{503, 429, 200}) {
		t.Errorf("data attempts %v, want 503, 429, 200", got)
	}
	if !strings.Contains(e.logs.String(), "retrying request") {
		t.Errorf("no retry in the debug log:\n%s", e.logs)
	}
}

// TestConcurrentMonths fetches many months at once, under the race
// detector, with throttling in the middle.
func TestConcurrentMonths(t *testing.T) {
	ds := scalewayfake.Demo(time.Date(2025, time.September, 20, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, ds)
	e.fake.SetNow(func() time.Time { return time.Date(2025, time.September, 20, 0, 0, 0, 0, time.UTC) })
	e.fake.Inject(scalewayfake.OpImpactData, times(scalewayfake.RateLimited(), 3))
	opts := e.options()
	opts.OrganizationID = ds.OrganizationID
	opts.Concurrency = 4
	p := e.provider(t, opts)
	months := provider.Range(scalewayfake.FirstMonth, scalewayfake.FirstMonth.Add(10))
	res, err := p.Fetch(context.Background(), months)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range months {
		checkTotals(t, ds, res.Records, m)
	}
	if n := e.fake.Requests(scalewayfake.OpImpactData); n != len(months)+3 {
		t.Errorf("%d data requests, want %d", n, len(months)+3)
	}
}

// TestSDKConfiguration reads the key the SDK's way: a profile of its
// configuration file, the environment over the active profile.
func TestSDKConfiguration(t *testing.T) {
	ds := dataset()
	e := newEnv(t, ds)
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	writeConfig := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SCW_CONFIG_PATH", file)
	base := e.options()
	base.AccessKey, base.SecretKey, base.OrganizationID, base.APIURL = "", "", "", ""
	fetch := func(opts scaleway.Options) error {
		t.Helper()
		p, err := scaleway.New(opts)
		if err != nil {
			return err
		}
		defer p.Close()
		res, err := p.Fetch(context.Background(), []provider.Month{dec24})
		if err == nil {
			checkTotals(t, ds, res.Records, dec24)
		}
		return err
	}

	writeConfig(fmt.Sprintf(`access_key: SCWDEFAULT0000000000
secret_key: 00000000-0000-4000-8000-000000000000
profiles:
  carbon:
    access_key: %s
    secret_key: %s
    default_organization_id: %s
    api_url: %s
`, accessKey, canary, org, e.ts.URL))
	opts := base
	opts.Profile = "carbon"
	if err := fetch(opts); err != nil {
		t.Errorf("profile carbon: %v", err)
	}

	// The active profile, then the environment over it.
	t.Setenv("SCW_PROFILE", "carbon")
	if err := fetch(base); err != nil {
		t.Errorf("SCW_PROFILE=carbon: %v", err)
	}
	t.Setenv("SCW_SECRET_KEY", "99999999-9999-4999-8999-999999999999")
	if err := fetch(base); provider.ReasonOf(err) != provider.ReasonAuth {
		t.Errorf("SCW_SECRET_KEY over the profile: %v, want the fake to reject it", err)
	}
	// A profile named in the entry is taken alone.
	if err := fetch(opts); err != nil {
		t.Errorf("profile carbon with SCW_SECRET_KEY set: %v", err)
	}
	os.Unsetenv("SCW_PROFILE")

	// The environment alone.
	writeConfig("")
	t.Setenv("SCW_ACCESS_KEY", accessKey)
	t.Setenv("SCW_SECRET_KEY", canary)
	t.Setenv("SCW_DEFAULT_ORGANIZATION_ID", org)
	t.Setenv("SCW_API_URL", e.ts.URL)
	if err := fetch(base); err != nil {
		t.Errorf("environment: %v", err)
	}
	// The entry's organization and URL win.
	opts = base
	opts.OrganizationID = "22222222-3333-4444-8555-666666666666"
	if err := fetch(opts); provider.ReasonOf(err) != provider.ReasonPermission {
		t.Errorf("organization_id over SCW_DEFAULT_ORGANIZATION_ID: %v, want the fake to deny it", err)
	}
}

// TestSDKConfigurationErrors checks what New says of a configuration the
// SDK's way that does not give a usable key, never quoting the key.
func TestSDKConfigurationErrors(t *testing.T) {
	file := filepath.Join(isolate(t), "config.yaml")
	for _, tt := range []struct {
		name, config string
		env          map[string]string
		profile      string
		want         string
	}{
		{name: "nothing", want: "scaleway: no API key: set access_key and secret_key"},
		{name: "no organization", env: map[string]string{"SCW_ACCESS_KEY": accessKey, "SCW_SECRET_KEY": canary},
			want: "scaleway: no organization: set organization_id"},
		{name: "a malformed secret key", env: map[string]string{"SCW_ACCESS_KEY": accessKey, "SCW_SECRET_KEY": "not-a-uuid-" + canary, "SCW_DEFAULT_ORGANIZATION_ID": org},
			want: "must be a UUID, as the console shows it (the value is not shown)"},
		{name: "no access key", env: map[string]string{"SCW_SECRET_KEY": canary, "SCW_DEFAULT_ORGANIZATION_ID": org},
			want: "gives a secret key without its access key"},
		{name: "an unknown profile", config: "profiles: {}\n", profile: "nope", want: `profile "nope" is not in the Scaleway configuration file`},
		{name: "a broken file", config: "secret_key: " + canary + "\naccess_key: [unclosed\n", want: "cannot be read or parsed (line 2)"},
		{name: "a missing file with a profile", profile: "carbon", want: "does not exist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"SCW_ACCESS_KEY", "SCW_SECRET_KEY", "SCW_DEFAULT_ORGANIZATION_ID", "SCW_API_URL"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			os.Remove(file)
			if tt.config != "" {
				if err := os.WriteFile(file, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := scaleway.New(scaleway.Options{Profile: tt.profile})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the secret key is in the error: %v", err)
			}
		})
	}
}

// TestOptions checks New's own validation, which never quotes the key.
func TestOptions(t *testing.T) {
	isolate(t)
	valid := scaleway.Options{OrganizationID: org, AccessKey: accessKey, SecretKey: canary}
	for _, tt := range []struct {
		name   string
		modify func(*scaleway.Options)
		want   string
	}{
		{"secret without access key", func(o *scaleway.Options) { o.AccessKey = "" }, "set both the access key and the secret key"},
		{"key and profile", func(o *scaleway.Options) { o.Profile = "p" }, "set an API key or a profile, not both"},
		{"malformed secret", func(o *scaleway.Options) { o.SecretKey = canary + "x" }, "must be a UUID"},
		{"malformed access key", func(o *scaleway.Options) { o.AccessKey = "scw-lower" }, "SCW followed by 17 capital letters"},
		{"no organization", func(o *scaleway.Options) { o.OrganizationID = "" }, "no organization"},
		{"bad project", func(o *scaleway.Options) { o.ProjectIDs = []string{projA, "x"} }, "project id 2 is not a UUID"},
		{"bad URL", func(o *scaleway.Options) { o.APIURL = "https://u:p@example.com" }, "must not contain a user name or password"},
		{"bad concurrency", func(o *scaleway.Options) { o.Concurrency = 100 }, "concurrency 100"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.modify(&o)
			_, err := scaleway.New(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the secret key is in the error: %v", err)
			}
		})
	}
	p, err := scaleway.New(valid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "scaleway" || p.OrganizationID() != org {
		t.Errorf("name %q, organization %q", p.Name(), p.OrganizationID())
	}
	if scaleway.FirstMonth != provider.NewMonth(2024, time.October) {
		t.Errorf("FirstMonth is %s", scaleway.FirstMonth)
	}
}

package aws_test

import (
	"context"
	"encoding/json"
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
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	awsp "github.com/cloudcarbon/cloudcarbon_exporter/provider/aws"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

// canary stands for a secret access key; it must never show up in any
// output. Its characters are those AWS secrets use, '/' and '+' included.
const (
	keyID  = "AKIATESTKEY000000001"
	canary = "CANARY/7f3a9c+SECRET0000000000000000000"
)

var (
	dec25 = provider.NewMonth(2025, time.December)
	jan26 = dec25 + 1
	feb26 = dec25 + 2
	// now is the tests' clock: February 2026 is the latest month AWS has
	// published.
	now = time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
)

const (
	mgmt  = "111111111111"
	prod  = "222222222222"
	orgID = "o-test123456"
)

func dataset() awsfake.Dataset {
	return awsfake.Dataset{
		OrganizationID:    orgID,
		ManagementAccount: mgmt,
		Accounts:          []awsfake.Account{{ID: mgmt, Name: "acme-management"}, {ID: prod, Name: "acme-prod"}},
		Rows: []awsfake.Row{
			{Account: mgmt, Region: "us-east-1", Service: "AmazonEC2", Month: jan26, Scope1: 0.001, Scope2LBM: 0.5, Scope2MBM: 0.05, Scope3LBM: 0.2, Scope3MBM: 0.21},
			{Account: mgmt, Region: "global", Service: "AmazonCloudFront", Month: jan26, Scope1: 0.0001, Scope2LBM: 0.01, Scope2MBM: 0.002, Scope3LBM: 0.004, Scope3MBM: 0.0041},
			{Account: prod, Region: "eu-west-1", Service: "AmazonS3", Month: jan26, Scope1: 0.002, Scope2LBM: 0.3, Scope2MBM: 0, Scope3LBM: 0.1, Scope3MBM: 0.1},
			{Account: prod, Region: "eu-west-1", Service: "AmazonS3", Month: feb26, Scope1: 0.003, Scope2LBM: 0.31, Scope2MBM: 0.01, Scope3LBM: 0.11, Scope3MBM: 0.12},
			{Account: prod, Region: "us-east-1", Service: "AmazonEC2", Month: dec25, Scope1: 0.004, Scope2LBM: 0.9, Scope2MBM: 0.09, Scope3LBM: 0.4, Scope3MBM: 0.41},
		},
		Water: []awsfake.WaterRow{
			{Account: mgmt, Region: "us-east-1", Service: "AmazonEC2", Year: 2025, Withdrawals: 12.5},
			{Account: prod, Region: "eu-west-1", Service: "AmazonS3", Year: 2025, Withdrawals: 3.25},
			{Account: prod, Region: "eu-west-1", Service: "AmazonS3", Year: 2024, Withdrawals: 1},
			// Outside the years a fetch asks for.
			{Account: prod, Region: "eu-west-1", Service: "AmazonS3", Year: 2022, Withdrawals: 7},
		},
	}
}

// isolate keeps the SDK from reading the machine's AWS configuration, so
// that each test sees only what it sets itself, and keeps the credential
// chain off the EC2 metadata service.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ORGANIZATIONS",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return dir
}

type env struct {
	fake *awsfake.Server
	ts   *httptest.Server
	logs *logbuf.Buffer
	// backoffs records the retryer's backoff decisions: the error each
	// retry followed.
	mu       sync.Mutex
	backoffs []error
	requests map[string]int // by self-metric endpoint name
}

// newEnv starts the fake serving ds to the static test keys.
func newEnv(t *testing.T, ds awsfake.Dataset) *env {
	t.Helper()
	isolate(t)
	e := &env{
		fake:     awsfake.NewServer(ds, awsfake.Credentials{AccessKeyID: keyID, SecretAccessKey: canary}),
		logs:     &logbuf.Buffer{},
		requests: make(map[string]int),
	}
	e.ts = httptest.NewServer(e.fake)
	t.Cleanup(e.ts.Close)
	return e
}

// options are a provider's options against the fake with static keys,
// fast retries and the tests' clock.
func (e *env) options() awsp.Options {
	return awsp.Options{
		Endpoint:              e.ts.URL,
		AccessKeyID:           keyID,
		SecretAccessKey:       canary,
		Organizations:         true,
		OrganizationsEndpoint: e.ts.URL,
		Now:                   func() time.Time { return now },
		Logger:                slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Backoff: retry.BackoffDelayerFunc(func(_ int, err error) (time.Duration, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.backoffs = append(e.backoffs, err)
			return time.Millisecond, nil
		}),
		MaxBackoff: 2 * time.Second,
		Observe: func(endpoint string, _ int) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.requests[endpoint]++
		},
	}
}

func (e *env) provider(t *testing.T, opts awsp.Options) *awsp.Provider {
	t.Helper()
	p, err := awsp.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fetch(t *testing.T, p *awsp.Provider, months ...provider.Month) (provider.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Fetch(ctx, months)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestFetch(t *testing.T) {
	e := newEnv(t, dataset())
	p := e.provider(t, e.options())
	res, err := fetch(t, p, dec25, jan26, feb26)
	if err != nil {
		t.Fatal(err)
	}
	if res.Partial != nil {
		t.Fatalf("partial: %v", res.Partial)
	}
	ds := dataset()

	// One result becomes three records, one per scope; scope 1 is the
	// same figure in both families.
	want := provider.Record{Provider: "aws", Account: mgmt, Service: "AmazonEC2", Location: "us-east-1", Month: jan26}
	for _, w := range []struct {
		scope    provider.Scope
		lbm, mbm float64
	}{{provider.Scope1, 1000, 1000}, {provider.Scope2, 500000, 50000}, {provider.Scope3, 200000, 210000}} {
		i := slices.IndexFunc(res.Records, func(r provider.Record) bool {
			return r.Account == want.Account && r.Service == want.Service && r.Location == want.Location && r.Month == want.Month && r.Scope == w.scope
		})
		if i < 0 {
			t.Fatalf("no scope %s record for %+v in %+v", w.scope, want, res.Records)
		}
		r := res.Records[i]
		if r.Known != provider.Emissions|provider.EmissionsMarketBased || !near(r.EmissionsGrams, w.lbm) || !near(r.MarketBasedGrams, w.mbm) {
			t.Errorf("scope %s: %+v, want %g g location-based and %g g market-based", w.scope, r, w.lbm, w.mbm)
		}
	}

	// The global region is kept as AWS names it.
	if !slices.ContainsFunc(res.Records, func(r provider.Record) bool { return r.Location == "global" && r.Service == "AmazonCloudFront" }) {
		t.Error("no record for the global region")
	}

	// Each scope sums to AWS's scope figure, in both methods.
	for _, m := range []provider.Month{dec25, jan26, feb26} {
		scopes := map[provider.Scope][2]float64{}
		for _, r := range res.Records {
			if r.Month == m {
				s := scopes[r.Scope]
				scopes[r.Scope] = [2]float64{s[0] + r.EmissionsGrams, s[1] + r.MarketBasedGrams}
			}
		}
		for i, s := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
			l, mb := ds.ScopeBase(m, i+1)
			if got := scopes[s]; !near(got[0], l) || !near(got[1], mb) {
				t.Errorf("%s scope %s: %v, want [%g %g]", m, s, got, l, mb)
			}
		}
	}
	if n := len(res.Records); n != 5*3 {
		t.Errorf("%d records, want 15 (five results, three scopes each)", n)
	}

	if want := map[provider.Month]string{dec25: "v3.0.0", jan26: "v3.0.0", feb26: "v3.0.0"}; !mapsEqual(res.Revisions, want) {
		t.Errorf("revisions %v, want %v", res.Revisions, want)
	}

	wantWater := []provider.YearlyWater{
		{Provider: "aws", Account: prod, Service: "AmazonS3", Location: "eu-west-1", Year: 2024, CubicMeters: 1},
		{Provider: "aws", Account: mgmt, Service: "AmazonEC2", Location: "us-east-1", Year: 2025, CubicMeters: 12.5},
		{Provider: "aws", Account: prod, Service: "AmazonS3", Location: "eu-west-1", Year: 2025, CubicMeters: 3.25},
	}
	if !slices.Equal(res.YearlyWater, wantWater) {
		t.Errorf("yearly water\n%+v\nwant\n%+v", res.YearlyWater, wantWater)
	}

	wantAccounts := []provider.Account{
		{Provider: "aws", ID: mgmt, Name: "acme-management", ParentType: awsp.ParentTypeOrganization, ParentID: orgID, ParentName: "acme-management"},
		{Provider: "aws", ID: prod, Name: "acme-prod", ParentType: awsp.ParentTypeOrganization, ParentID: orgID, ParentName: "acme-management"},
	}
	if !slices.Equal(res.Accounts, wantAccounts) {
		t.Errorf("accounts\n%+v\nwant\n%+v", res.Accounts, wantAccounts)
	}

	// The fewest requests: one carbon query for the run of three months,
	// one water query, one page of accounts; nothing else.
	for op, want := range map[string]int{awsfake.OpCarbon: 1, awsfake.OpWater: 1, awsfake.OpListAccounts: 1, awsfake.OpCarbonDimensions: 0} {
		if got := e.fake.Requests(op); got != want {
			t.Errorf("%d %s requests, want %d", got, op, want)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if want := map[string]int{"carbon_emissions": 1, "water_allocation": 1, "organizations": 1}; !mapsEqual(e.requests, want) {
		t.Errorf("observed requests %v, want %v", e.requests, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestQueries checks what the provider asks for: every emissions type
// (the two totals too), grouped by all three dimensions, monthly, in pages
// of 5000, one period per run of contiguous months; water yearly over the
// three years ending with the latest published month's.
func TestQueries(t *testing.T) {
	e := newEnv(t, dataset())
	p := e.provider(t, e.options())
	if _, err := fetch(t, p, feb26, dec25); err != nil {
		t.Fatal(err)
	}
	type body struct {
		TimePeriod      struct{ Start, End string }
		GroupBy         []string
		EmissionsTypes  []string
		AllocationTypes []string
		Granularity     string
		MaxResults      int
	}
	decode := func(b []byte) body {
		var v body
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	carbon := e.fake.Bodies(awsfake.OpCarbon)
	if len(carbon) != 2 {
		t.Fatalf("%d carbon queries for two runs of months, want 2", len(carbon))
	}
	var periods []string
	for _, b := range carbon {
		q := decode(b)
		periods = append(periods, q.TimePeriod.Start+"/"+q.TimePeriod.End)
		if !slices.Equal(q.GroupBy, []string{"USAGE_ACCOUNT_ID", "REGION", "SERVICE"}) || q.Granularity != "MONTHLY" || q.MaxResults != 5000 {
			t.Errorf("carbon query %s", b)
		}
		types := slices.Sorted(slices.Values(q.EmissionsTypes))
		if want := []string{"TOTAL_LBM_CARBON_EMISSIONS", "TOTAL_MBM_CARBON_EMISSIONS", "TOTAL_SCOPE_1_CARBON_EMISSIONS",
			"TOTAL_SCOPE_2_LBM_CARBON_EMISSIONS", "TOTAL_SCOPE_2_MBM_CARBON_EMISSIONS",
			"TOTAL_SCOPE_3_LBM_CARBON_EMISSIONS", "TOTAL_SCOPE_3_MBM_CARBON_EMISSIONS"}; !slices.Equal(types, want) {
			t.Errorf("emissions types %v, want %v", types, want)
		}
	}
	if want := []string{"2025-12-01T00:00:00Z/2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z/2026-03-01T00:00:00Z"}; !slices.Equal(periods, want) {
		t.Errorf("periods %v, want %v", periods, want)
	}
	water := e.fake.Bodies(awsfake.OpWater)
	if len(water) != 1 {
		t.Fatalf("%d water queries, want 1", len(water))
	}
	q := decode(water[0])
	if q.TimePeriod.Start != "2024-01-01T00:00:00Z" || q.TimePeriod.End != "2026-03-01T00:00:00Z" ||
		q.Granularity != "YEARLY_CALENDAR" || !slices.Equal(q.AllocationTypes, []string{"TOTAL_WATER_WITHDRAWALS"}) ||
		!slices.Equal(q.GroupBy, []string{"USAGE_ACCOUNT_ID", "REGION", "SERVICE"}) {
		t.Errorf("water query %s", water[0])
	}
}

// errorCase is an error answer, or an answer AWS should not give, and
// what the provider makes of it.
type errorCase struct {
	name         string
	setup        func(*awsfake.Server)
	opts         func(*awsp.Options)
	wantReason   provider.Reason
	wantIn       []string
	wantRequests int
	wantBackoffs int
	retryAfter   time.Duration
}

// TestErrors drives AWS's own failures over the wire: each gives a clear,
// classified error after the right number of attempts.
func TestErrors(t *testing.T) {
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			if tt.setup != nil {
				tt.setup(e.fake)
			}
			opts := e.options()
			opts.Organizations = false
			if tt.opts != nil {
				tt.opts(&opts)
			}
			_, err := fetch(t, e.provider(t, opts), jan26)
			if n := e.fake.Requests(awsfake.OpCarbon); n != tt.wantRequests {
				t.Errorf("%d carbon requests, want %d", n, tt.wantRequests)
			}
			e.mu.Lock()
			backoffs := len(e.backoffs)
			e.mu.Unlock()
			if backoffs != tt.wantBackoffs {
				t.Errorf("the retryer's backoff was asked %d times, want %d", backoffs, tt.wantBackoffs)
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
			if !utf8.ValidString(err.Error()) {
				t.Errorf("error %q is not valid UTF-8", err)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func errorCases() []errorCase {
	throttling := awsfake.ErrorFault(http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")
	return []errorCase{
		{
			name: "the error code in the body",
			setup: func(s *awsfake.Server) {
				s.Inject(awsfake.OpCarbon, awsfake.Fault{Status: http.StatusForbidden,
					Body: `{"__type":"com.amazonaws.sustainability#AccessDeniedException","message":"Denied"}`})
			},
			wantReason:   provider.ReasonPermission,
			wantIn:       []string{"403 AccessDeniedException: Denied", "sustainability:GetEstimatedCarbonEmissions"},
			wantRequests: 1,
		},
		{
			name: "a long Retry-After is left to the caller",
			setup: func(s *awsfake.Server) {
				f := throttling
				f.Header = http.Header{"X-Amzn-Errortype": {"ThrottlingException"}, "Retry-After": {"3600"}}
				s.Inject(awsfake.OpCarbon, f)
			},
			wantReason:   provider.ReasonThrottled,
			wantIn:       []string{"429 ThrottlingException: Rate exceeded", "retry after 1h0m0s"},
			wantRequests: 1,
			wantBackoffs: 1,
			retryAfter:   time.Hour,
		},
		{
			name: "validation is not retried",
			setup: func(s *awsfake.Server) {
				s.Inject(awsfake.OpCarbon, awsfake.ErrorFault(http.StatusBadRequest, "ValidationException", "1 validation error detected"))
			},
			wantReason:   provider.ReasonBadRequest,
			wantIn:       []string{"400 ValidationException: 1 validation error detected", "please report this"},
			wantRequests: 1,
		},
		{
			name: "a long message is cut between characters",
			setup: func(s *awsfake.Server) {
				s.Inject(awsfake.OpCarbon, awsfake.ErrorFault(http.StatusBadRequest, "ValidationException", "x"+strings.Repeat("é", 600)))
			},
			wantReason:   provider.ReasonBadRequest,
			wantIn:       []string{"éé…"},
			wantRequests: 1,
		},
		{
			name: "an unmodeled 503 is a server error",
			setup: func(s *awsfake.Server) {
				s.Inject(awsfake.OpCarbon, awsfake.Fault{Status: 503, Body: "<html>", Times: 3})
			},
			wantReason:   provider.ReasonServer,
			wantIn:       []string{"503 Service Unavailable"},
			wantRequests: 3,
			wantBackoffs: 2,
		},
		{
			name: "an unknown unit",
			setup: func(s *awsfake.Server) {
				s.Inject(awsfake.OpCarbon, awsfake.Fault{Status: 200, Body: `{"Results":[{"DimensionsValues":{},"ModelVersion":"v3.0.0",` +
					`"TimePeriod":{"Start":"2026-01-01T00:00:00Z","End":"2026-02-01T00:00:00Z"},` +
					`"EmissionsValues":{"TOTAL_SCOPE_1_CARBON_EMISSIONS":{"Unit":"kgCO2e","Value":1}}}]}`})
			},
			wantReason:   provider.ReasonMalformed,
			wantIn:       []string{`TOTAL_SCOPE_1_CARBON_EMISSIONS is in "kgCO2e"; only MTCO2e is understood`},
			wantRequests: 1,
		},
		{
			name: "a token that repeats",
			setup: func(s *awsfake.Server) {
				s.Inject(awsfake.OpCarbon, awsfake.Fault{Status: 200, Body: `{"Results":[],"NextToken":"again"}`, Times: 2})
			},
			wantReason:   provider.ReasonMalformed,
			wantIn:       []string{"NextToken repeats"},
			wantRequests: 2,
		},
		{
			name:         "a wrong secret fails the signature check",
			opts:         func(o *awsp.Options) { o.SecretAccessKey = canary + "x" },
			wantReason:   provider.ReasonAuth,
			wantIn:       []string{"403 InvalidSignatureException: The request signature we calculated does not match", "check the access key and its secret"},
			wantRequests: 1,
		},
		{
			name:         "an unknown access key",
			opts:         func(o *awsp.Options) { o.AccessKeyID = "AKIAUNKNOWN000000000" },
			wantReason:   provider.ReasonAuth,
			wantIn:       []string{"403 UnrecognizedClientException"},
			wantRequests: 1,
		},
		{
			name: "a signature for the wrong region",
			setup: func(s *awsfake.Server) {
				s.SetRegion("us-gov-west-1")
			},
			wantReason:   provider.ReasonAuth,
			wantIn:       []string{"InvalidSignatureException: Credential should be scoped to a valid region"},
			wantRequests: 1,
		},
	}
}

// TestOptionalDenied: water and Organizations are optional. Denied, they
// are logged once and the carbon data flows; water keeps its last good
// figures (nil), accounts are reported without names.
func TestOptionalDenied(t *testing.T) {
	tests := []struct {
		name, action, code, log string
		wantWater, wantNames    bool
	}{
		{name: "water", action: awsfake.ActionWater, log: "AWS denies water data", wantNames: true},
		{name: "organizations", action: awsfake.ActionListAccounts, log: "AWS denies Organizations ListAccounts", wantWater: true},
		{name: "no organization", action: awsfake.ActionListAccounts, code: "AWSOrganizationsNotInUseException",
			log: "AWS denies Organizations ListAccounts", wantWater: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			e.fake.Deny(tt.action, tt.code)
			p := e.provider(t, e.options())
			for range 2 {
				res, err := fetch(t, p, jan26)
				if err != nil || res.Partial != nil {
					t.Fatalf("err %v, partial %v; a denied optional call fails nothing", err, res.Partial)
				}
				if len(res.Records) != 9 {
					t.Errorf("%d records, want 9", len(res.Records))
				}
				if (res.YearlyWater != nil) != tt.wantWater {
					t.Errorf("yearly water %v, want some: %v", res.YearlyWater, tt.wantWater)
				}
				if named := res.Accounts[0].Name != ""; named != tt.wantNames || len(res.Accounts) != 2 {
					t.Errorf("accounts %+v, want two, named: %v", res.Accounts, tt.wantNames)
				}
			}
			if n := strings.Count(e.logs.String(), tt.log); n != 1 {
				t.Errorf("logged %d times, want once:\n%s", n, e.logs)
			}
			if tt.code == "AWSOrganizationsNotInUseException" && !strings.Contains(e.logs.String(), "set organizations: false") {
				t.Errorf("the log does not say what to do:\n%s", e.logs)
			}
			if tt.action == awsfake.ActionWater && !strings.Contains(e.logs.String(), "sustainability:GetEstimatedWaterAllocation") {
				t.Errorf("the log does not name the permission:\n%s", e.logs)
			}
		})
	}
}

// TestOptionalFailed: water or Organizations failing otherwise is a
// partial fetch: the carbon data is served, the failure counted and the
// fetch tried again; names fall back to the last good listing.
func TestOptionalFailed(t *testing.T) {
	e := newEnv(t, dataset())
	p := e.provider(t, e.options())
	if _, err := fetch(t, p, jan26); err != nil {
		t.Fatal(err)
	}
	e.fake.Inject(awsfake.OpWater, awsfake.Fault{Status: 500, Times: 3})
	e.fake.Inject(awsfake.OpListAccounts, awsfake.Fault{Status: 500, Times: 3})
	res, err := fetch(t, p, jan26)
	if err != nil {
		t.Fatal(err)
	}
	if res.Partial == nil || provider.ReasonOf(res.Partial) != provider.ReasonServer {
		t.Errorf("partial %v, want a server error", res.Partial)
	}
	if !strings.Contains(res.Partial.Error(), "GetEstimatedWaterAllocation") || !strings.Contains(res.Partial.Error(), "ListAccounts") {
		t.Errorf("partial %q does not name both operations", res.Partial)
	}
	if len(res.Records) != 9 || res.YearlyWater != nil {
		t.Errorf("%d records and water %v; want the carbon records and no water", len(res.Records), res.YearlyWater)
	}
	if len(res.Accounts) != 2 || res.Accounts[0].Name != "acme-management" {
		t.Errorf("accounts %+v, want the last good names", res.Accounts)
	}
}

// TestWindow: months older than the 38 AWS serves are not asked for.
func TestWindow(t *testing.T) {
	e := newEnv(t, dataset())
	p := e.provider(t, e.options())
	res, err := fetch(t, p, feb26.Add(-awsp.MaxMonths), feb26.Add(-awsp.MaxMonths-1))
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("err %v, %d records; want nothing", err, len(res.Records))
	}
	if n := e.fake.Requests(awsfake.OpCarbon) + e.fake.Requests(awsfake.OpWater); n != 0 {
		t.Errorf("%d requests for months AWS does not serve, want 0", n)
	}
	if _, err := fetch(t, p, feb26.Add(-(awsp.MaxMonths - 1))); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Requests(awsfake.OpCarbon); n != 1 {
		t.Errorf("%d requests for the oldest month AWS serves, want 1", n)
	}
}

// TestPartitions: each partition signs for its own region.
func TestPartitions(t *testing.T) {
	for _, tt := range []struct{ partition, region string }{
		{awsp.PartitionAWS, "us-east-1"},
		{awsp.PartitionUSGov, "us-gov-west-1"},
		{awsp.PartitionChina, "cn-northwest-1"},
	} {
		t.Run(tt.partition, func(t *testing.T) {
			e := newEnv(t, dataset())
			e.fake.SetRegion(tt.region)
			opts := e.options()
			opts.Partition = tt.partition
			if _, err := fetch(t, e.provider(t, opts), jan26); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Identities of the credential chain's tests.
const (
	roleARN  = "arn:aws:iam::111111111111:role/cloudcarbon-reader"
	webToken = "eyJhbGciOiJSUzI1NiJ9.web-identity.token"
)

// chainCase is one way the SDK finds credentials.
type chainCase struct {
	name string
	// setup writes files and environment, given the temporary directory
	// and the fake's URL, and returns the options.
	setup   func(t *testing.T, dir, url string, o *awsp.Options)
	wantSTS string
	// observedSTS counts the STS requests the provider's own clients
	// make (role_arn); the chain's go through the SDK's client.
	observedSTS int
}

// TestCredentialChain fetches with each way the SDK finds credentials,
// the fake checking every signature, its STS issuing session keys.
func TestCredentialChain(t *testing.T) {
	for _, tt := range chainCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			e.fake.AllowRole(roleARN, "")
			if tt.name == "role_arn with an external id" {
				e.fake.AllowRole(roleARN, "cloudcarbon-external")
			}
			e.fake.AllowWebIdentity(webToken, roleARN)
			dir := filepath.Dir(os.Getenv("AWS_CONFIG_FILE"))
			opts := e.options()
			tt.setup(t, dir, e.ts.URL, &opts)
			p := e.provider(t, opts)
			for range 2 {
				res, err := fetch(t, p, jan26)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Records) != 9 || len(res.Accounts) != 2 {
					t.Errorf("%d records, %d accounts; want 9 and 2", len(res.Records), len(res.Accounts))
				}
			}
			for _, op := range []string{awsfake.OpAssumeRole, awsfake.OpAssumeRoleWithWebIdentity} {
				want := 0
				if op == tt.wantSTS {
					want = 1 // cached across fetches and clients
				}
				if got := e.fake.Requests(op); got != want {
					t.Errorf("%d %s requests, want %d", got, op, want)
				}
			}
			e.mu.Lock()
			n := e.requests["sts"]
			e.mu.Unlock()
			if n != tt.observedSTS {
				t.Errorf("%d observed sts requests, want %d", n, tt.observedSTS)
			}
		})
	}
}

func chainCases() []chainCase {
	return []chainCase{
		{
			name:  "static keys",
			setup: func(*testing.T, string, string, *awsp.Options) {},
		},
		{
			name: "environment variables",
			setup: func(t *testing.T, _, _ string, o *awsp.Options) {
				t.Setenv("AWS_ACCESS_KEY_ID", keyID)
				t.Setenv("AWS_SECRET_ACCESS_KEY", canary)
				o.AccessKeyID, o.SecretAccessKey = "", ""
			},
		},
		{
			name: "a profile in the shared credentials file",
			setup: func(t *testing.T, dir, _ string, o *awsp.Options) {
				write(t, filepath.Join(dir, "credentials"), fmt.Sprintf("[default]\naws_access_key_id = AKIAWRONG00000000000\naws_secret_access_key = wrong\n\n[carbon]\naws_access_key_id = %s\naws_secret_access_key = %s\n", keyID, canary))
				o.AccessKeyID, o.SecretAccessKey, o.Profile = "", "", "carbon"
			},
		},
		{
			name: "AWS_PROFILE and a profile assuming a role",
			setup: func(t *testing.T, dir, url string, o *awsp.Options) {
				write(t, filepath.Join(dir, "credentials"), fmt.Sprintf("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n", keyID, canary))
				write(t, filepath.Join(dir, "config"), fmt.Sprintf("[profile reader]\nrole_arn = %s\nsource_profile = base\nservices = fake\n\n[services fake]\nsts =\n  endpoint_url = %s\n", roleARN, url))
				t.Setenv("AWS_PROFILE", "reader")
				o.AccessKeyID, o.SecretAccessKey = "", ""
			},
			wantSTS: awsfake.OpAssumeRole,
		},
		{
			name: "a web identity token file (IRSA)",
			setup: func(t *testing.T, dir, url string, o *awsp.Options) {
				tokenFile := filepath.Join(dir, "token")
				write(t, tokenFile, webToken)
				t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
				t.Setenv("AWS_ROLE_ARN", roleARN)
				t.Setenv("AWS_ENDPOINT_URL_STS", url)
				o.AccessKeyID, o.SecretAccessKey = "", ""
			},
			wantSTS: awsfake.OpAssumeRoleWithWebIdentity,
		},
		{
			name: "role_arn with an external id",
			setup: func(t *testing.T, _, url string, o *awsp.Options) {
				t.Setenv("AWS_ENDPOINT_URL_STS", url)
				o.RoleARN, o.ExternalID = roleARN, "cloudcarbon-external"
			},
			wantSTS:     awsfake.OpAssumeRole,
			observedSTS: 1,
		},
	}
}

func TestCredentialFailures(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, url string, o *awsp.Options)
		wantReason provider.Reason
		wantIn     string
	}{
		{
			name: "no credentials anywhere",
			setup: func(_ *testing.T, _ string, o *awsp.Options) {
				o.AccessKeyID, o.SecretAccessKey = "", ""
			},
			wantReason: provider.ReasonAuth,
			wantIn:     "no usable AWS credentials",
		},
		{
			name: "a role the identity may not assume",
			setup: func(t *testing.T, url string, o *awsp.Options) {
				t.Setenv("AWS_ENDPOINT_URL_STS", url)
				o.RoleARN = "arn:aws:iam::111111111111:role/not-allowed"
			},
			wantReason: provider.ReasonAuth,
			wantIn:     "AccessDenied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset())
			opts := e.options()
			tt.setup(t, e.ts.URL, &opts)
			_, err := fetch(t, e.provider(t, opts), jan26)
			if provider.ReasonOf(err) != tt.wantReason || !strings.Contains(fmt.Sprint(err), tt.wantIn) {
				t.Fatalf("err %v (%s), want %s saying %q", err, provider.ReasonOf(err), tt.wantReason, tt.wantIn)
			}
			if e.fake.Requests(awsfake.OpCarbon) != 0 {
				t.Error("a request was sent without credentials")
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(e.logs.String(), canary) {
				t.Errorf("the secret access key leaked: %v\n%s", err, e.logs)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

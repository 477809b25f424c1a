package gcp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

const (
	project      = "test-project"
	carbonTable  = "test-project.carbon_export.carbon_footprint"
	billingTable = "test-project.billing_export.gcp_billing_export_v1_0A1B2C_3D4E5F_6A7B8C"
	billingAcct  = "0A1B2C-3D4E5F-6A7B8C"
)

var (
	dec22 = provider.NewMonth(2022, time.December)
	jan24 = provider.NewMonth(2024, time.January)
	feb24 = jan24 + 1
	mar24 = jan24 + 2
)

// env is a fake BigQuery on an httptest server.
type env struct {
	fake *gcpfake.Server
	ts   *httptest.Server
	logs *logbuf.Buffer
}

func newEnv(t *testing.T, ds gcpfake.Dataset) *env {
	t.Helper()
	fake := gcpfake.NewServer(ds)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	return &env{fake: fake, ts: ts, logs: &logbuf.Buffer{}}
}

func (e *env) options() gcp.Options {
	return gcp.Options{
		Project:               project,
		CarbonTable:           carbonTable,
		BillingTable:          billingTable,
		Location:              "US",
		Endpoint:              e.ts.URL + gcpfake.BasePath,
		WithoutAuthentication: true,
		HTTPClient:            e.ts.Client(),
		Logger:                slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) provider(t *testing.T, edit func(*gcp.Options)) *gcp.Provider {
	t.Helper()
	return newProvider(t, e.options(), edit)
}

// newProvider builds a provider from opts as edit changes them, closed
// when the test ends.
func newProvider(t *testing.T, opts gcp.Options, edit func(*gcp.Options)) *gcp.Provider {
	t.Helper()
	if edit != nil {
		edit(&opts)
	}
	p, err := gcp.New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func fetch(t *testing.T, p *gcp.Provider, months ...provider.Month) provider.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := p.Fetch(ctx, months)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return res
}

func ptr(f float64) *float64 { return &f }

// costOf returns the cost of account in month m.
func costOf(t *testing.T, res provider.Result, account string, m provider.Month) float64 {
	t.Helper()
	for _, r := range res.Records {
		if r.Month == m && r.Account == account && r.Has(provider.Cost) {
			return r.CostUSD
		}
	}
	t.Fatalf("no cost of %s in %s", account, m)
	return 0
}

// handDataset is small enough to compute every expectation by hand.
func handDataset() gcpfake.Dataset {
	ce := "Compute Engine"
	return gcpfake.Dataset{
		Project: project, CarbonTable: carbonTable, BillingTable: billingTable, Location: "US",
		Carbon: []gcpfake.CarbonRow{
			// Two rows of one project/service/region: zones of a region
			// and a second billing account are summed.
			{Month: jan24, BillingAccountID: billingAcct, ProjectID: "web", Service: ce, Location: "us-central1", Region: "us-central1",
				ModelVersion: 6, Scope1: 0.5, Scope2Location: 10.25, Scope2Market: ptr(2.5), Scope3: 4},
			{Month: jan24, BillingAccountID: "FFFFFF-000000-111111", ProjectID: "web", Service: ce, Location: "us-central1-a", Region: "us-central1",
				ModelVersion: 7, Scope1: 0.25, Scope2Location: 1, Scope2Market: ptr(0.5), Scope3: 0.75},
			// Multi-region: no region.
			{Month: jan24, BillingAccountID: billingAcct, ProjectID: "data", Service: "BigQuery", Location: "US",
				ModelVersion: 6, Scope1: 0.125, Scope2Location: 3, Scope2Market: ptr(1.5), Scope3: 2},
			// Before 2023: no market-based figure; a deleted project.
			{Month: dec22, BillingAccountID: billingAcct, ProjectID: "", Service: ce, Location: "europe-west1", Region: "europe-west1",
				ModelVersion: 5, Scope1: 1, Scope2Location: 2, Scope3: 3},
			// A month nobody asks for.
			{Month: feb24, BillingAccountID: billingAcct, ProjectID: "web", Service: ce, Location: "us-central1", Region: "us-central1",
				ModelVersion: 7, Scope1: 9, Scope2Location: 9, Scope2Market: ptr(9), Scope3: 9},
		},
		Billing: []gcpfake.BillingRow{
			// Zone location, EUR with credits, exported in three
			// partitions, the last after the month ended.
			{BillingAccountID: billingAcct, InvoiceMonth: jan24, CostType: "regular", ProjectID: "web", ProjectName: "Web shop",
				Service: ce, Location: "us-central1-b", Region: "us-central1", Currency: "EUR", ConversionRate: 0.9,
				CostMicros: 1_000_001, CreditMicros: []int64{-1, -200_000}, ExportTime: jan24.Start().Add(36 * time.Hour)},
			{BillingAccountID: billingAcct, InvoiceMonth: jan24, CostType: "regular", ProjectID: "web", ProjectName: "Web shop",
				Service: ce, Location: "us-central1-b", Region: "us-central1", Currency: "EUR", ConversionRate: 0.9,
				CostMicros: 3_333_333, ExportTime: jan24.End().Add(-time.Hour)},
			{BillingAccountID: billingAcct, InvoiceMonth: jan24, CostType: "tax", ProjectID: "web", ProjectName: "Web shop",
				Service: ce, Location: "us-central1-b", Region: "us-central1", Currency: "EUR", ConversionRate: 0.9,
				CostMicros: 666_667, ExportTime: jan24.End().Add(6 * 24 * time.Hour)},
			// Same group, another conversion rate.
			{BillingAccountID: billingAcct, InvoiceMonth: jan24, CostType: "adjustment", ProjectID: "web", ProjectName: "Web shop",
				Service: ce, Location: "us-central1-b", Region: "us-central1", Currency: "EUR", ConversionRate: 0.8,
				CostMicros: -400_000, ExportTime: jan24.Start().Add(20 * 24 * time.Hour)},
			// Exported after the partition window: not counted.
			{BillingAccountID: billingAcct, InvoiceMonth: jan24, CostType: "regular", ProjectID: "web", ProjectName: "Web shop",
				Service: ce, Location: "us-central1-b", Region: "us-central1", Currency: "EUR", ConversionRate: 0.9,
				CostMicros: 999_000_000, ExportTime: jan24.End().Add(8 * 24 * time.Hour)},
			// No project: the support fee.
			{BillingAccountID: billingAcct, InvoiceMonth: jan24, CostType: "regular", Service: "Cloud Support", Location: "global",
				Currency: "EUR", ConversionRate: 0.9, CostMicros: 29_000_000, ExportTime: jan24.End().Add(26 * time.Hour)},
			// Invoice month February, inside January's window.
			{BillingAccountID: billingAcct, InvoiceMonth: feb24, CostType: "regular", ProjectID: "web", ProjectName: "Web shop",
				Service: ce, Location: "us-central1-b", Region: "us-central1", Currency: "EUR", ConversionRate: 0.9,
				CostMicros: 5_000_000, ExportTime: feb24.Start().Add(2 * 24 * time.Hour)},
		},
	}
}

func TestFetchRecords(t *testing.T) {
	e := newEnv(t, handDataset())
	p := e.provider(t, nil)
	res := fetch(t, p, dec22, jan24)

	const lb, both = provider.Emissions, provider.Emissions | provider.EmissionsMarketBased
	rec := func(acct, svc, loc string, m provider.Month, sc provider.Scope, g, mb float64, k provider.Quantity) provider.Record {
		return provider.Record{Provider: "gcp", Account: acct, Service: svc, Location: loc, Scope: sc, Month: m,
			EmissionsGrams: g, MarketBasedGrams: mb, Known: k}
	}
	cost := func(acct, svc, loc string, m provider.Month, usd float64) provider.Record {
		return provider.Record{Provider: "gcp", Account: acct, Service: svc, Location: loc, Scope: provider.ScopeNone,
			Month: m, CostUSD: usd, Known: provider.Cost}
	}
	// Net micros per conversion rate, each converted once: rate 0.8
	// first (rows are summed in rate order).
	webUSD := float64(-400_000)/1e6/0.8 + float64(1_000_001-1-200_000+3_333_333+666_667)/1e6/0.9
	want := []provider.Record{
		rec("none", "Compute Engine", "europe-west1", dec22, provider.Scope1, 1000, 0, lb),
		rec("none", "Compute Engine", "europe-west1", dec22, provider.Scope2, 2000, 0, lb),
		rec("none", "Compute Engine", "europe-west1", dec22, provider.Scope3, 3000, 0, lb),
		rec("data", "BigQuery", "us", jan24, provider.Scope1, 125, 125, both),
		rec("data", "BigQuery", "us", jan24, provider.Scope2, 3000, 1500, both),
		rec("data", "BigQuery", "us", jan24, provider.Scope3, 2000, 2000, both),
		cost("none", "Cloud Support", "global", jan24, float64(29_000_000)/1e6/0.9),
		cost("web", "Compute Engine", "us-central1", jan24, webUSD),
		rec("web", "Compute Engine", "us-central1", jan24, provider.Scope1, 750, 750, both),
		rec("web", "Compute Engine", "us-central1", jan24, provider.Scope2, 11250, 3000, both),
		rec("web", "Compute Engine", "us-central1", jan24, provider.Scope3, 4750, 4750, both),
	}
	if !reflect.DeepEqual(res.Records, want) {
		t.Errorf("records:\n got %+v\nwant %+v", res.Records, want)
	}
	wantAccounts := []provider.Account{
		{Provider: "gcp", ID: "data", ParentType: "billing_account", ParentID: billingAcct},
		{Provider: "gcp", ID: "none", ParentType: "billing_account", ParentID: billingAcct},
		{Provider: "gcp", ID: "web", Name: "Web shop", ParentType: "billing_account", ParentID: billingAcct},
	}
	if !reflect.DeepEqual(res.Accounts, wantAccounts) {
		t.Errorf("accounts:\n got %+v\nwant %+v", res.Accounts, wantAccounts)
	}
	if want := map[provider.Month]string{dec22: "5", jan24: "7"}; !reflect.DeepEqual(res.Revisions, want) {
		t.Errorf("revisions = %v, want %v", res.Revisions, want)
	}
}

// One carbon dataset can hold several billing accounts; a source
// restricted to one reports only that account's emissions.
func TestBillingAccountFilter(t *testing.T) {
	e := newEnv(t, handDataset())
	p := e.provider(t, func(o *gcp.Options) { o.BillingAccount = "ffffff-000000-111111"; o.BillingTable = "" })
	res := fetch(t, p, jan24)
	want := []provider.Record{
		{Provider: "gcp", Account: "web", Service: "Compute Engine", Location: "us-central1", Scope: provider.Scope1, Month: jan24,
			EmissionsGrams: 250, MarketBasedGrams: 250, Known: provider.Emissions | provider.EmissionsMarketBased},
		{Provider: "gcp", Account: "web", Service: "Compute Engine", Location: "us-central1", Scope: provider.Scope2, Month: jan24,
			EmissionsGrams: 1000, MarketBasedGrams: 500, Known: provider.Emissions | provider.EmissionsMarketBased},
		{Provider: "gcp", Account: "web", Service: "Compute Engine", Location: "us-central1", Scope: provider.Scope3, Month: jan24,
			EmissionsGrams: 750, MarketBasedGrams: 750, Known: provider.Emissions | provider.EmissionsMarketBased},
	}
	if !reflect.DeepEqual(res.Records, want) {
		t.Errorf("records:\n got %+v\nwant %+v", res.Records, want)
	}
	if got := e.fake.QueryLog()[0].BillingAccount; got != "FFFFFF-000000-111111" {
		t.Errorf("billing account parameter %q", got)
	}
	if _, err := gcp.New(t.Context(), gcp.Options{Project: project, CarbonTable: carbonTable, BillingAccount: "x", WithoutAuthentication: true}); err == nil {
		t.Error("New accepted an invalid billing account")
	}
}

func TestMarketBasedIsAllOrNothing(t *testing.T) {
	ds := gcpfake.Dataset{CarbonTable: carbonTable, Carbon: []gcpfake.CarbonRow{
		// Same label set from two raw groups (a zone and its region),
		// only one of which has a market-based figure.
		{Month: jan24, ProjectID: "web", Service: "Cloud Run", Location: "us-east1", Region: "us-east1",
			Scope1: 1, Scope2Location: 2, Scope2Market: ptr(1), Scope3: 3},
		{Month: jan24, ProjectID: "web", Service: "Cloud Run", Location: "us-east1-c", Region: "us-east1",
			Scope1: 1, Scope2Location: 2, Scope3: 3},
	}}
	p := newEnv(t, ds).provider(t, func(o *gcp.Options) { o.BillingTable = ""; o.Location = "" })
	res := fetch(t, p, jan24)
	if len(res.Records) != 3 {
		t.Fatalf("got %d records, want 3: %+v", len(res.Records), res.Records)
	}
	for _, r := range res.Records {
		if r.Has(provider.EmissionsMarketBased) || r.MarketBasedGrams != 0 {
			t.Errorf("%s: market-based %v known=%v, want unknown", r.Scope, r.MarketBasedGrams, r.Has(provider.EmissionsMarketBased))
		}
		if !r.Has(provider.Emissions) {
			t.Errorf("%s: location-based figure missing", r.Scope)
		}
	}
}

// TestIncompleteJobs: a job that is still running when jobs.query
// answers is polled until it completes, with the same result.
func TestIncompleteJobs(t *testing.T) {
	want := fetch(t, newEnv(t, handDataset()).provider(t, nil), dec22, jan24)

	e := newEnv(t, handDataset())
	e.fake.SetIncompletePolls(3)
	got := fetch(t, e.provider(t, nil), dec22, jan24)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result of polled jobs differs:\n got %+v\nwant %+v", got, want)
	}
	// Two queries, each: two incomplete polls, the completing one and
	// the rows.
	if n := e.fake.Requests(gcpfake.EndpointQueryResults); n < 2*3 {
		t.Errorf("getQueryResults requests = %d, want the polls", n)
	}
}

func TestQueriesAreBounded(t *testing.T) {
	e := newEnv(t, handDataset())
	p := e.provider(t, nil)
	// A gap between January and March: two billing queries, one carbon.
	// Gaps between December 2022, January and March 2024, and March
	// asked for twice: three billing queries, one per contiguous run,
	// and one carbon query.
	fetch(t, p, mar24, jan24, mar24, dec22)
	lag := gcp.BillingExportLag
	wantBilling := []gcpfake.QueryInfo{
		{Kind: "billing", Months: []provider.Month{dec22}, PartitionStart: dec22.Start(), PartitionEnd: dec22.End().Add(lag)},
		{Kind: "billing", Months: []provider.Month{jan24}, PartitionStart: jan24.Start(), PartitionEnd: jan24.End().Add(lag)},
		{Kind: "billing", Months: []provider.Month{mar24}, PartitionStart: mar24.Start(), PartitionEnd: mar24.End().Add(lag)},
	}
	var billing, carbon []gcpfake.QueryInfo
	for _, q := range e.fake.QueryLog() {
		if q.MaxBytesBilled != gcp.DefaultMaxBytesBilled || q.Location != "US" || q.Labels["cloudcarbon_query"] != q.Kind {
			t.Errorf("%s query: max bytes %d, location %q, labels %v", q.Kind, q.MaxBytesBilled, q.Location, q.Labels)
		}
		q.JobID, q.MaxBytesBilled, q.Location, q.Labels = "", 0, "", nil
		if q.Kind == "billing" {
			billing = append(billing, q)
		} else {
			carbon = append(carbon, q)
		}
	}
	slices.SortFunc(billing, func(a, b gcpfake.QueryInfo) int { return a.PartitionStart.Compare(b.PartitionStart) })
	if !reflect.DeepEqual(billing, wantBilling) {
		t.Errorf("billing queries:\n got %+v\nwant %+v", billing, wantBilling)
	}
	if want := []gcpfake.QueryInfo{{Kind: "carbon", Months: []provider.Month{dec22, jan24, mar24}}}; !reflect.DeepEqual(carbon, want) {
		t.Errorf("carbon queries:\n got %+v\nwant %+v", carbon, want)
	}
}

// A billing row counts in its invoice month's own partition window,
// whether the month is fetched alone or in a run with the next month.
func TestBillingWindowPerMonth(t *testing.T) {
	p := newEnv(t, handDataset()).provider(t, nil)
	alone, inRun := costOf(t, fetch(t, p, jan24), "web", jan24), costOf(t, fetch(t, p, jan24, feb24), "web", jan24)
	if alone != inRun || alone > 10 {
		t.Errorf("January cost alone %v, in a run %v; the row exported 8 days after January must not count", alone, inRun)
	}
}

// observed records what a provider's observers are told: requests by
// endpoint and status, and bytes processed.
type observed struct {
	mu        sync.Mutex
	calls     map[string]int // "endpoint Status"
	processed float64
}

// observe makes o's observers record into ob.
func (ob *observed) observe(o *gcp.Options) {
	ob.calls = map[string]int{}
	o.Observe = func(endpoint string, code int) {
		ob.mu.Lock()
		defer ob.mu.Unlock()
		ob.calls[endpoint+" "+http.StatusText(code)]++
	}
	o.ObserveBytes = func(n float64) {
		ob.mu.Lock()
		defer ob.mu.Unlock()
		ob.processed += n
	}
}

func TestObserversAndDebugLog(t *testing.T) {
	e := newEnv(t, handDataset())
	ob := &observed{}
	p := e.provider(t, func(o *gcp.Options) {
		o.MaxBytesBilled = 20 << 20
		ob.observe(o)
	})
	e.fake.SetIncompletePolls(1)
	fetch(t, p, jan24)
	ob.mu.Lock()
	defer ob.mu.Unlock()
	calls, processed := ob.calls, ob.processed
	// Per query: jobs.query (incomplete), a poll that completes, the
	// rows, the job's statistics.
	want := map[string]int{
		"jobs.query OK":           2,
		"jobs.getQueryResults OK": 4,
		"jobs.get OK":             2,
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("observed %v, want %v", calls, want)
	}
	// 5 carbon rows × 160 bytes and the 6 billing rows in January's
	// window × 140 bytes (the fake's model).
	if want := float64(5*160 + 6*140); processed != want {
		t.Errorf("bytes processed = %v, want %v", processed, want)
	}
	logs := e.logs.String()
	for _, s := range []string{"gcp query done", "kind=carbon", "kind=billing", "bytes_processed=800", "bytes_processed=840"} {
		if !strings.Contains(logs, s) {
			t.Errorf("debug log lacks %q:\n%s", s, logs)
		}
	}
}

// failureCase is a fetch that fails: faults the fake answers with, or
// options that do not fit its dataset, and what the error must be.
type failureCase struct {
	name   string
	faults []gcpfake.Fault
	edit   func(*gcp.Options)
	reason provider.Reason
	check  func(t *testing.T, perr *provider.Error)
}

// contains checks that an error says every one of parts.
func contains(parts ...string) func(*testing.T, *provider.Error) {
	return func(t *testing.T, perr *provider.Error) {
		t.Helper()
		for _, s := range parts {
			if !strings.Contains(perr.Error(), s) {
				t.Errorf("error %q lacks %q", perr.Error(), s)
			}
		}
	}
}

// failureCases are BigQuery's own errors: its error reasons and the hints
// for what a user can fix.
func failureCases() []failureCase {
	return []failureCase{
		{
			name:   "carbon table missing",
			edit:   func(o *gcp.Options) { o.CarbonTable = "test-project.carbon_export" + "_typo" },
			reason: provider.ReasonNotFound,
			check:  contains("test-project.carbon_export_typo.carbon_footprint", "Not found: Table", "cloudcarbon_exporter gcp-setup", "Carbon Footprint"),
		},
		{
			name: "billing table missing",
			edit: func(o *gcp.Options) {
				o.BillingTable = "test-project.billing_export.gcp_billing_export_v1_000000_000000_000000"
			},
			reason: provider.ReasonNotFound,
			check:  contains("billing query on test-project.billing_export.gcp_billing_export_v1_000000_000000_000000", "Billing export", "gcp_billing_export_v1_"),
		},
		{
			name:   "dataset in another location",
			edit:   func(o *gcp.Options) { o.Location = "EU" },
			reason: provider.ReasonNotFound,
			check:  contains("Not found: Dataset", "location EU"),
		},
		{
			name:   "bytes billed limit",
			edit:   func(o *gcp.Options) { o.MaxBytesBilled = 1 << 20 },
			reason: provider.ReasonBadRequest,
			check:  contains("max_bytes_billed (1048576 bytes)", "bytesBilledLimitExceeded", "10485760 or higher required"),
		},
		{
			name:   "bytes billed limit from the server",
			faults: []gcpfake.Fault{{Endpoint: gcpfake.EndpointQuery, Kind: "billing", Status: 400, Body: gcpfake.ErrorBody(400, "bytesBilledLimitExceeded", "Query exceeded limit for bytes billed: 10737418240. 21474836480 or higher required.")}},
			reason: provider.ReasonBadRequest,
			check:  contains("billing query", "max_bytes_billed (10737418240 bytes)"),
		},
		{
			name: "billing table without ingestion-time partitions",
			faults: []gcpfake.Fault{{Endpoint: gcpfake.EndpointQuery, Kind: "billing", Status: 400,
				Body: gcpfake.ErrorBody(400, "invalidQuery", "Unrecognized name: _PARTITIONTIME at [21:7]")}},
			reason: provider.ReasonBadRequest,
			check:  contains("standard billing export's own table"),
		},
		{
			name: "quota exceeded as 403 is throttling",
			faults: []gcpfake.Fault{{Endpoint: gcpfake.EndpointQuery, Status: 403,
				Body: gcpfake.ErrorBody(403, "quotaExceeded", "Quota exceeded: Your project exceeded quota for free query bytes scanned.")}},
			reason: provider.ReasonThrottled,
			check:  contains("quotaExceeded"),
		},
		{
			name: "429 without a retryable reason carries Retry-After",
			faults: []gcpfake.Fault{{Endpoint: gcpfake.EndpointQuery, Status: 429, Header: http.Header{"Retry-After": {"120"}},
				Body: gcpfake.ErrorBody(429, "tooManyRequests", "Too many requests")}},
			reason: provider.ReasonThrottled,
			check: func(t *testing.T, perr *provider.Error) {
				// The pause the 429 started may have run a little when
				// the retry finds it: what is left of it, on a busy machine.
				if perr.RetryAfter > 2*time.Minute || perr.RetryAfter < 2*time.Minute-5*time.Second {
					t.Errorf("RetryAfter = %v, want 2m", perr.RetryAfter)
				}
			},
		},
		{
			name:   "invalid JSON",
			faults: []gcpfake.Fault{{Endpoint: gcpfake.EndpointQuery, Status: 200, Body: `{"kind": bigquery}`}},
			reason: provider.ReasonMalformed,
			check:  contains("malformed response"),
		},
	}
}

func TestFailures(t *testing.T) {
	for _, tt := range failureCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, handDataset())
			for _, f := range tt.faults {
				e.fake.Inject(f)
			}
			p := e.provider(t, tt.edit)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			res, err := p.Fetch(ctx, []provider.Month{jan24})
			if err == nil {
				// A billing failure leaves the emissions served and
				// comes back as a partial failure.
				err = res.Partial
			}
			if err == nil {
				t.Fatal("Fetch succeeded, want an error")
			}
			perr, ok := errors.AsType[*provider.Error](err)
			if !ok {
				t.Fatalf("error %T (%v) is not a *provider.Error", err, err)
			}
			if perr.Reason != tt.reason {
				t.Errorf("reason = %s, want %s (%v)", perr.Reason, tt.reason, err)
			}
			if tt.check != nil {
				tt.check(t, perr)
			}
		})
	}
}

// TestRateLimitAs403IsRetried: BigQuery answers some rate limits with a
// 403, which the client retries like a 429 instead of reading it as a
// missing permission.
func TestRateLimitAs403IsRetried(t *testing.T) {
	want := fetch(t, newEnv(t, handDataset()).provider(t, nil), jan24)
	e := newEnv(t, handDataset())
	e.fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Status: 403,
		Body: gcpfake.ErrorBody(403, "rateLimitExceeded", "Exceeded rate limits: too many api requests per user per method")})
	if got := fetch(t, e.provider(t, nil), jan24); !reflect.DeepEqual(got, want) {
		t.Errorf("result after retry differs:\n got %+v\nwant %+v", got, want)
	}
	if n := e.fake.Requests(gcpfake.EndpointQuery); n != 3 {
		t.Errorf("jobs.query requests = %d, want the carbon and billing queries and one retry", n)
	}
}

// TestBillingFailureKeepsEmissions: emissions are served when only the
// billing query fails; the failure comes back in Result.Partial.
func TestBillingFailureKeepsEmissions(t *testing.T) {
	e := newEnv(t, handDataset())
	e.fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: "billing", Status: 403, Body: gcpfake.ErrorBody(403, "accessDenied", "Access Denied")})
	p := e.provider(t, nil)
	res, err := p.Fetch(t.Context(), []provider.Month{jan24})
	if err != nil {
		t.Fatalf("Fetch: %v, want the emissions and a partial failure", err)
	}
	if got := provider.ReasonOf(res.Partial); got != provider.ReasonPermission {
		t.Errorf("partial failure reason = %s (%v), want the billing query's permission error", got, res.Partial)
	}
	emissions := 0
	for _, r := range res.Records {
		if r.Has(provider.Cost) {
			t.Errorf("cost record after a failed billing query: %+v", r)
		}
		if r.Has(provider.Emissions) {
			emissions++
		}
	}
	if emissions == 0 {
		t.Error("no emission records after a failed billing query")
	}
}

// TestCarbonFailureCancelsBilling: a failed carbon query fails the fetch
// with its own error, not the cancellation it causes in the billing one.
func TestCarbonFailureCancelsBilling(t *testing.T) {
	e := newEnv(t, handDataset())
	e.fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: "carbon", Status: 403, Body: gcpfake.ErrorBody(403, "accessDenied", "Access Denied")})
	p := e.provider(t, nil)
	_, err := p.Fetch(t.Context(), []provider.Month{jan24})
	if got := provider.ReasonOf(err); got != provider.ReasonPermission {
		t.Errorf("reason = %s (%v), want the carbon query's permission error", got, err)
	}
}

func TestNoBillingTable(t *testing.T) {
	e := newEnv(t, handDataset())
	p := e.provider(t, func(o *gcp.Options) { o.BillingTable = "" })
	res := fetch(t, p, jan24)
	for _, r := range res.Records {
		if r.Has(provider.Cost) {
			t.Errorf("cost record without a billing table: %+v", r)
		}
	}
	if n := e.fake.Queries(gcpfake.KindBilling); n != 0 {
		t.Errorf("billing queries = %d, want 0", n)
	}
}

func TestEmptyMonths(t *testing.T) {
	e := newEnv(t, handDataset())
	res := fetch(t, e.provider(t, nil))
	if len(res.Records) != 0 || e.fake.Requests(gcpfake.EndpointQuery) != 0 {
		t.Errorf("no months: %d records, %d queries; want none", len(res.Records), e.fake.Requests(gcpfake.EndpointQuery))
	}
	// A month without data yields no records and no error.
	res = fetch(t, e.provider(t, nil), provider.NewMonth(2030, time.May))
	if len(res.Records) != 0 || res.Revisions != nil {
		t.Errorf("month without data: %+v", res)
	}
}

func TestNewValidation(t *testing.T) {
	base := gcp.Options{Project: "my-project", CarbonTable: "my-project.ds", WithoutAuthentication: true}
	tests := []struct {
		name string
		edit func(*gcp.Options)
		err  string
	}{
		{"defaults", nil, ""},
		{"full carbon table", func(o *gcp.Options) { o.CarbonTable = "other-project.carbon.carbon_footprint" }, ""},
		{"domain-scoped project", func(o *gcp.Options) {
			o.Project = "example.com:my-project"
			o.CarbonTable = "example.com:my-project.carbon"
			o.BillingTable = "example.com:my-project.billing.gcp_billing_export_v1_0A1B2C_3D4E5F_6A7B8C"
		}, ""},
		{"no project", func(o *gcp.Options) { o.Project = "" }, `project "": want a Google Cloud project id`},
		{"no carbon table", func(o *gcp.Options) { o.CarbonTable = "" }, `carbon table "": wrong number of parts (want project.dataset.table or project.dataset)`},
		{"injection", func(o *gcp.Options) { o.CarbonTable = "p-1234.ds.t` WHERE 1=1 --" }, "invalid table name"},
		{"bad dataset", func(o *gcp.Options) { o.CarbonTable = "my-project.my-ds" }, "invalid dataset id"},
		{"billing table needs three parts", func(o *gcp.Options) { o.BillingTable = "my-project.billing" }, `billing table "my-project.billing": wrong number of parts (want project.dataset.table)`},
		{"negative bytes", func(o *gcp.Options) { o.MaxBytesBilled = -1 }, "max bytes billed -1 is negative"},
		{"missing key file", func(o *gcp.Options) { o.WithoutAuthentication = false; o.CredentialsFile = "/nonexistent/key.json" },
			"gcp: credentials file /nonexistent/key.json"},
		{"key file and no auth", func(o *gcp.Options) { o.CredentialsFile = "/k.json" }, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base
			if tt.edit != nil {
				tt.edit(&opts)
			}
			p, err := gcp.New(t.Context(), opts)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("New error = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	p := newEnv(t, handDataset()).provider(t, nil)
	s := p.Schedule()
	if p.Name() != "gcp" {
		t.Errorf("name = %q", p.Name())
	}
	// Month M lands on the 15th of M+1.
	if got, want := s.PublishedAt(jan24), time.Date(2024, time.February, 15, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("January published at %v, want %v", got, want)
	}
	if got, want := s.FinalAt(jan24), time.Date(2024, time.March, 16, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("January final at %v, want %v", got, want)
	}
}

// TestServiceAccountKey runs fetches with a service-account key file: the
// token request and every query go through the instrumented client, the
// token is requested once and cached, and queries carry it.
func TestServiceAccountKey(t *testing.T) {
	acct, err := gcpfake.NewServiceAccount(project)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, handDataset())
	e.fake.RequireServiceAccount(acct)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyFile, acct.KeyFile(e.ts.URL+gcpfake.TokenPath), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	p := e.provider(t, func(o *gcp.Options) {
		o.WithoutAuthentication = false
		o.CredentialsFile = keyFile
		o.Observe = func(endpoint string, code int) {
			mu.Lock()
			defer mu.Unlock()
			seen[endpoint+" "+http.StatusText(code)]++
		}
	})
	fetch(t, p, jan24)
	fetch(t, p, jan24)
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"token OK": 1, "jobs.query OK": 4, "jobs.get OK": 4}; !reflect.DeepEqual(seen, want) {
		t.Errorf("observed %v, want %v", seen, want)
	}

	// Other key types are refused: they can name URLs or commands.
	external := filepath.Join(t.TempDir(), "external.json")
	if err := os.WriteFile(external, []byte(`{"type":"external_account","audience":"x","subject_token_type":"y","token_url":"http://127.0.0.1/","credential_source":{"executable":{"command":"/bin/true"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = gcp.New(t.Context(), gcp.Options{Project: project, CarbonTable: carbonTable, CredentialsFile: external})
	if err == nil || !strings.Contains(err.Error(), "credentials file") {
		t.Errorf("New with an external account file: %v, want an error", err)
	}
}

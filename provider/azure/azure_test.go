package azure_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
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

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

// canary is the client secret of every test. It must never appear in an
// error, in the provider's slog output, or in azcore's log.
const canary = "CANARY-secret-9b1f3e7d5c2a4b6e8d0f1a3c5e7b9d2f"

// jwtMarker begins every token the fake issues (base64 of `{"alg"`).
const jwtMarker = "eyJhbGci"

const (
	tenant   = "11111111-2222-4333-8444-555555555555"
	clientID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	sub1     = "00000000-0000-0000-0000-000000000001"
	sub2     = "00000000-0000-0000-0000-000000000002"
	sub3     = "00000000-0000-0000-0000-000000000003"
)

// logs receives the slog output of every provider under test and
// everything azcore and azidentity log (requests, responses, retries,
// authentication), which TestMain turns on before any test runs.
var logs logbuf.Buffer

// TestMain turns on azcore's and azidentity's log, which a process may,
// and checks after every test, the conformance suite's included, that it
// holds neither the client secret nor a token. The exporter's own outputs
// are the suite's to check; this log is Azure's.
func TestMain(m *testing.M) {
	azlog.SetListener(func(ev azlog.Event, msg string) { fmt.Fprintf(&logs, "[%s] %s\n", ev, msg) })
	code := m.Run()
	azlog.SetListener(nil)
	if err := checkLog(logs.String(), flag.Lookup("test.run").Value.String() != ""); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		code = 1
	}
	os.Exit(code)
}

// checkLog returns what is wrong with the log of a run, filtered or not.
func checkLog(out string, filtered bool) error {
	for _, leak := range []struct{ what, text string }{{"the client secret", canary}, {"an access token", jwtMarker}} {
		if _, after, found := strings.Cut(out, leak.text); found {
			line, _, _ := strings.Cut(after, "\n")
			return fmt.Errorf("%s appears in the log, before %q", leak.what, line)
		}
	}
	// A run filtered to a few tests or fuzz targets need not log what the
	// check looks for; the full run must, or the capture is broken.
	for _, want := range []string{"azure report page", "[Request]", "[Retry]"} {
		if !filtered && !strings.Contains(out, want) {
			return fmt.Errorf("the log has no %q: its capture is broken, and the leak check proves nothing", want)
		}
	}
	return nil
}

var (
	feb = provider.NewMonth(2025, time.February)
	mar = feb + 1
	apr = feb + 2
)

// observed counts what Options.Observe reports.
type observed struct {
	mu    sync.Mutex
	calls map[string]map[int]int
}

func (o *observed) observe(endpoint string, code int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls == nil {
		o.calls = map[string]map[int]int{}
	}
	if o.calls[endpoint] == nil {
		o.calls[endpoint] = map[int]int{}
	}
	o.calls[endpoint][code]++
}

func (o *observed) count(endpoint string, code int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[endpoint][code]
}

func (o *observed) total(endpoint string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.calls[endpoint] {
		n += c
	}
	return n
}

// env is a fake Azure (authority and ARM) on one httptest TLS server.
type env struct {
	ds   azurefake.Dataset
	fake *azurefake.Server
	ts   *httptest.Server
	obs  *observed
}

func newEnv(t *testing.T, ds azurefake.Dataset) *env {
	t.Helper()
	if ds.TenantID == "" {
		ds.TenantID = tenant
	}
	fake := azurefake.NewServer(ds, clientID, canary)
	ts := newTLSServer(t, fake)
	return &env{ds: ds, fake: fake, ts: ts, obs: &observed{}}
}

// newTLSServer serves h over TLS on loopback. Its error log is discarded:
// clients that close idle connections at the end of a test make it report
// handshake errors that mean nothing.
func newTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func (e *env) options() azure.Options {
	return azure.Options{
		TenantID:                tenant,
		Credential:              azure.CredentialClientSecret,
		ClientID:                clientID,
		ClientSecret:            canary,
		AuthorityHost:           e.ts.URL,
		ResourceManagerEndpoint: e.ts.URL,
		Subscriptions:           e.ds.SubscriptionIDs(),
		HTTPClient:              e.ts.Client(),
		Observe:                 e.obs.observe,
		RetryDelay:              time.Millisecond,
		MaxRetryDelay:           20 * time.Millisecond,
		Logger:                  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// provider builds a Provider for the fake with the options edits change.
func (e *env) provider(t *testing.T, edits ...func(*azure.Options)) *azure.Provider {
	t.Helper()
	opts := e.options()
	for _, edit := range edits {
		edit(&opts)
	}
	p, err := azure.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// fetch runs a fetch of months that must succeed.
func fetch(t *testing.T, p *azure.Provider, months ...provider.Month) provider.Result {
	t.Helper()
	res, err := fetchWithin(t, p, months)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return res
}

// fetchErr runs a fetch of months that must fail, and checks what every
// failure must satisfy: a *provider.Error that holds neither the client
// secret nor a token.
func fetchErr(t *testing.T, p *azure.Provider, months ...provider.Month) *provider.Error {
	t.Helper()
	_, err := fetchWithin(t, p, months)
	perr, ok := errors.AsType[*provider.Error](err)
	switch {
	case err == nil:
		t.Fatal("Fetch succeeded, want an error")
	case !ok:
		t.Fatalf("Fetch error %T (%v) is not a *provider.Error", err, err)
	case strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), jwtMarker):
		t.Fatalf("error leaks the client secret or a token: %v", err)
	}
	return perr
}

// fetchWithin runs a fetch under a deadline, as the refresher does.
func fetchWithin(t *testing.T, p *azure.Provider, months []provider.Month) (provider.Result, error) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return p.Fetch(ctx, months)
}

func item(sub, rg, name, typ, loc string, m provider.Month, s1, s2, s3 float64) azurefake.Item {
	return azurefake.Item{SubscriptionID: sub, ResourceGroup: rg, Name: name, ResourceType: typ, Location: loc, Month: m, Scope1: s1, Scope2: s2, Scope3: s3}
}

const (
	vms  = "microsoft.compute/virtualmachines"
	stor = "microsoft.storage/storageaccounts"
	aks  = "microsoft.containerservice/managedclusters"
	sqld = "microsoft.sql/servers/databases"
)

// smallDataset has two subscriptions and resources whose kg values are
// exact in binary, so that the expected grams are exact.
func smallDataset() azurefake.Dataset {
	return azurefake.Dataset{
		TenantID: tenant,
		Subscriptions: []azurefake.Subscription{
			{ID: sub1, DisplayName: "Production"},
			{ID: sub2, DisplayName: "Development"},
		},
		Items: []azurefake.Item{
			item(sub1, "rg-app", "vm1", vms, "east us", mar, 0.5, 2.25, 4),
			item(sub1, "rg-web", "vm2", vms, "east us", mar, 0.25, 1, 2),
			item(sub1, "rg-app", "st1", stor, "west europe", mar, 0, 0.125, 1.5),
			item(sub2, "rg-k8s", "aks1", aks, "west us 2", mar, 1, 8, 16),
			item(sub2, "rg-db", "db1", sqld, "uk south", mar, 0.0625, 0.5, 0.75),
			// Previous and next month: must not leak into March.
			item(sub1, "rg-app", "vm1", vms, "east us", feb, 100, 100, 100),
			item(sub1, "rg-app", "vm1", vms, "east us", apr, 200, 200, 200),
		},
	}
}

func TestAggregatesResources(t *testing.T) {
	e := newEnv(t, smallDataset())
	p := e.provider(t, func(o *azure.Options) {
		// Upper case and duplicates are normalised away.
		o.Subscriptions = []string{strings.ToUpper(sub2), sub1, " " + sub2 + " "}
	})
	res := fetch(t, p, mar)

	// Resources summed per subscription, type and ARM location; kgCO2e
	// of scopes 1, 2 and 3 in grams.
	var want []provider.Record
	for _, r := range []struct {
		account, service, location string
		grams                      [3]float64
	}{
		{sub1, vms, "eastus", [3]float64{750, 3250, 6000}},
		{sub1, stor, "westeurope", [3]float64{0, 125, 1500}},
		{sub2, aks, "westus2", [3]float64{1000, 8000, 16000}},
		{sub2, sqld, "uksouth", [3]float64{62.5, 500, 750}},
	} {
		for i, scope := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
			want = append(want, provider.Record{Provider: azure.Name, Account: r.account, Service: r.service, Location: r.location,
				Scope: scope, Month: mar, EmissionsGrams: r.grams[i], Known: provider.Emissions})
		}
	}
	if !reflect.DeepEqual(res.Records, want) {
		t.Errorf("records:\n got %+v\nwant %+v", res.Records, want)
	}
	// Names come from listing the subscriptions the identity can read.
	wantAccounts := []provider.Account{
		{Provider: "azure", ID: sub1, Name: "Production", ParentType: "tenant", ParentID: tenant},
		{Provider: "azure", ID: sub2, Name: "Development", ParentType: "tenant", ParentID: tenant},
	}
	if !reflect.DeepEqual(res.Accounts, wantAccounts) {
		t.Errorf("accounts = %+v, want %+v", res.Accounts, wantAccounts)
	}
	if len(res.Denied) != 0 {
		t.Errorf("denied = %+v", res.Denied)
	}

	// The request bodies: one ItemDetailsReport per scope for March, both
	// subscriptions lower-cased in one batch, the largest page.
	qs := e.fake.Queries()
	if len(qs) != 3 {
		t.Fatalf("report requests = %d, want 3", len(qs))
	}
	var gotScopes []string
	for _, q := range qs {
		if q.ReportType != "ItemDetailsReport" || q.CategoryType != "Resource" ||
			q.DateRange == nil || q.DateRange.Start != "2025-03-01" || q.DateRange.End != "2025-03-01" ||
			!slices.Equal(q.SubscriptionList, []string{sub1, sub2}) ||
			q.PageSize == nil || *q.PageSize != 5000 || q.OrderBy != "ItemName" || q.SortDirection != "Asc" ||
			q.SkipToken != "" || len(q.CarbonScopeList) != 1 {
			t.Errorf("query %+v", q)
		}
		gotScopes = append(gotScopes, q.CarbonScopeList...)
	}
	slices.Sort(gotScopes)
	if !slices.Equal(gotScopes, []string{"Scope1", "Scope2", "Scope3"}) {
		t.Errorf("scopes = %v, want one request per scope", gotScopes)
	}
	for _, b := range e.fake.Bodies(azurefake.OpReports) {
		if !strings.Contains(b, `"reportType":"ItemDetailsReport"`) || !strings.Contains(b, `"carbonScopeList":["Scope`) {
			t.Errorf("body %s", b)
		}
	}

	// Observe saw every request, token and discovery included.
	for _, c := range []struct {
		endpoint, op string
		want         int
	}{
		{azure.EndpointToken, azurefake.OpToken, 1},
		{azure.EndpointOpenID, azurefake.OpOpenID, 1},
		{azure.EndpointDateRange, azurefake.OpDateRange, 1},
		{azure.EndpointReports, azurefake.OpReports, 3},
		{azure.EndpointSubscriptions, azurefake.OpSubscriptions, 1},
	} {
		if got := e.obs.count(c.endpoint, http.StatusOK); got != c.want || e.fake.Requests(c.op) != c.want {
			t.Errorf("%s: observed %d, fake saw %d, want %d", c.endpoint, got, e.fake.Requests(c.op), c.want)
		}
	}
	if n := e.fake.Requests(azurefake.OpInstanceDiscovery); n != 0 {
		t.Errorf("instance discovery requests = %d, want 0 for a private authority", n)
	}

	if p.Name() != "azure" {
		t.Errorf("Name = %q", p.Name())
	}
	if s := p.Schedule(); s.PublishDelay != 18*24*time.Hour || s.SettleDelay != 30*24*time.Hour {
		t.Errorf("Schedule = %+v", s)
	}
	// Published by day 19 of the next month.
	if got := p.Schedule().PublishedAt(mar); !got.Equal(time.Date(2025, time.April, 19, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("PublishedAt(March) = %v", got)
	}
}

// pagingDataset has n resources in March in one subscription.
func pagingDataset(n int) azurefake.Dataset {
	ds := azurefake.Dataset{TenantID: tenant, Subscriptions: []azurefake.Subscription{{ID: sub1}}}
	types := []string{vms, stor, aks, sqld}
	locs := []string{"east us", "west europe", "north europe"}
	for i := range n {
		ds.Items = append(ds.Items, item(sub1, "rg", fmt.Sprintf("res-%03d", i), types[i%len(types)], locs[i%len(locs)], mar,
			float64(i)*0.125, float64(i)+0.5, float64(2*i)+0.25))
	}
	return ds
}

func TestSubscriptionBatches(t *testing.T) {
	ds := azurefake.Dataset{TenantID: tenant}
	for i := range 230 {
		id := fmt.Sprintf("00000000-0000-0000-0000-%012x", i+1)
		ds.Subscriptions = append(ds.Subscriptions, azurefake.Subscription{ID: id})
		ds.Items = append(ds.Items, item(id, "rg", "vm", vms, "east us", mar, 1, 2, 3))
	}
	e := newEnv(t, ds)
	res := fetch(t, e.provider(t), mar)

	qs := e.fake.Queries()
	if len(qs) != 9 {
		t.Fatalf("report requests = %d, want 3 batches × 3 scopes", len(qs))
	}
	perScope := map[string][]string{}
	var sizes []int
	for _, q := range qs {
		perScope[q.CarbonScopeList[0]] = append(perScope[q.CarbonScopeList[0]], q.SubscriptionList...)
		sizes = append(sizes, len(q.SubscriptionList))
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{30, 30, 30, 100, 100, 100, 100, 100, 100}) {
		t.Errorf("batch sizes = %v", sizes)
	}
	want := ds.SubscriptionIDs()
	slices.Sort(want)
	for sc, ids := range perScope {
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("%s: subscriptions requested do not cover each subscription exactly once", sc)
		}
	}
	if len(res.Records) != 230*3 || len(res.Accounts) != 230 {
		t.Errorf("records = %d, accounts = %d; want %d and 230", len(res.Records), len(res.Accounts), 230*3)
	}
}

func TestMonthSelection(t *testing.T) {
	first := provider.NewMonth(2024, time.January)
	last := provider.NewMonth(2025, time.June)
	ds := azurefake.Dataset{TenantID: tenant, Subscriptions: []azurefake.Subscription{{ID: sub1}}}
	for m := first; m <= last; m++ {
		ds.Items = append(ds.Items, item(sub1, "rg", "vm", vms, "east us", m, 1, float64(m-first), 3))
	}

	tests := []struct {
		name       string
		months     []provider.Month
		wantMonths []provider.Month
	}{
		{"none", nil, nil},
		{"latest", []provider.Month{last}, []provider.Month{last}},
		{"clamped to the last 12 published months", provider.Range(last-14, last+2), provider.Range(last-11, last)},
		{"unpublished only", []provider.Month{last + 1, last + 2}, nil},
		{"too old only", []provider.Month{first, last - 12}, nil},
		{"sparse and duplicated", []provider.Month{last - 3, last - 7, last - 3}, []provider.Month{last - 7, last - 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ds)
			res := fetch(t, e.provider(t), tt.months...)
			var got []provider.Month
			for _, r := range res.Records {
				if r.Scope == provider.Scope2 {
					got = append(got, r.Month)
					if r.EmissionsGrams != float64(r.Month-first)*1000 {
						t.Errorf("%s: %v g", r.Month, r.EmissionsGrams)
					}
				}
			}
			if !slices.Equal(got, tt.wantMonths) {
				t.Errorf("months = %v, want %v", got, tt.wantMonths)
			}
			wantDateRange := 1
			if len(tt.months) == 0 {
				wantDateRange = 0
			}
			if n := e.fake.Requests(azurefake.OpDateRange); n != wantDateRange {
				t.Errorf("date range requests = %d, want %d", n, wantDateRange)
			}
			if n := e.fake.Requests(azurefake.OpReports); n != 3*len(tt.wantMonths) {
				t.Errorf("report requests = %d, want %d", n, 3*len(tt.wantMonths))
			}
			for _, q := range e.fake.Queries() {
				if q.DateRange.Start != q.DateRange.End {
					t.Errorf("dateRange %+v: start must equal end", q.DateRange)
				}
			}
		})
	}
}

func TestRequestBudget(t *testing.T) {
	t.Run("known up front", func(t *testing.T) {
		e := newEnv(t, smallDataset())
		p := e.provider(t, func(o *azure.Options) { o.RequestBudget = 3 })
		perr := fetchErr(t, p, mar)
		if perr.Reason != provider.ReasonOther || !strings.Contains(perr.Error(), "request budget of 3") ||
			!strings.Contains(perr.Error(), "needs at least 4 ARM requests") {
			t.Errorf("error = %v (%s)", perr, perr.Reason)
		}
		if n := e.fake.Requests(azurefake.OpReports); n != 0 {
			t.Errorf("report requests = %d, want none", n)
		}
	})
	t.Run("paging runs out", func(t *testing.T) {
		e := newEnv(t, pagingDataset(25))
		p := e.provider(t, func(o *azure.Options) { o.RequestBudget = 6; o.PageSize = 9; o.Concurrency = 1 })
		perr := fetchErr(t, p, mar)
		if perr.Reason != provider.ReasonOther || !strings.Contains(perr.Error(), "request budget of 6 ARM requests per refresh exhausted") {
			t.Errorf("error = %v (%s)", perr, perr.Reason)
		}
		if n := e.fake.Requests(azurefake.OpDateRange) + e.fake.Requests(azurefake.OpReports); n != 6 {
			t.Errorf("ARM requests = %d, want the budget, 6", n)
		}
	})
	t.Run("retries count", func(t *testing.T) {
		e := newEnv(t, smallDataset())
		e.fake.Inject(azurefake.OpReports, azurefake.Fault{Status: 503, Times: 10})
		p := e.provider(t, func(o *azure.Options) { o.RequestBudget = 4; o.MaxRetries = 5; o.Concurrency = 1 })
		perr := fetchErr(t, p, mar)
		if perr.Reason != provider.ReasonOther || !strings.Contains(perr.Error(), "budget") {
			t.Errorf("error = %v (%s)", perr, perr.Reason)
		}
		if n := e.fake.Requests(azurefake.OpReports); n != 3 {
			t.Errorf("report attempts = %d, want 3 (budget 4 minus the date range)", n)
		}
	})
}

func TestListSubscriptions(t *testing.T) {
	ds := smallDataset()
	ds.Subscriptions = append(ds.Subscriptions,
		azurefake.Subscription{ID: sub3, DisplayName: "Sandbox", Denied: true, DenialReason: "Carbon Optimization Reader permission required"},
		azurefake.Subscription{ID: "00000000-0000-0000-0000-0000000000de", DisplayName: "Gone", State: "Deleted"},
		azurefake.Subscription{ID: "00000000-0000-0000-0000-0000000000d1", DisplayName: "Off", State: "Disabled"},
	)
	e := newEnv(t, ds)
	e.fake.SetSubscriptionsPageSize(2)
	const extra = "00000000-0000-0000-0000-0000000000ff" // configured, unknown to Azure
	p := e.provider(t, func(o *azure.Options) { o.Subscriptions = []string{extra}; o.ListSubscriptions = true })
	res := fetch(t, p, mar)

	if n := e.fake.Requests(azurefake.OpSubscriptions); n != 3 {
		t.Errorf("subscription list requests = %d, want 3 pages", n)
	}
	want := []provider.Account{
		{Provider: "azure", ID: sub1, Name: "Production", ParentType: "tenant", ParentID: tenant},
		{Provider: "azure", ID: sub2, Name: "Development", ParentType: "tenant", ParentID: tenant},
		{Provider: "azure", ID: sub3, Name: "Sandbox", ParentType: "tenant", ParentID: tenant},
		{Provider: "azure", ID: "00000000-0000-0000-0000-0000000000d1", Name: "Off", ParentType: "tenant", ParentID: tenant},
		{Provider: "azure", ID: extra, ParentType: "tenant", ParentID: tenant},
	}
	slices.SortFunc(want, func(a, b provider.Account) int { return strings.Compare(a.ID, b.ID) })
	if !reflect.DeepEqual(res.Accounts, want) {
		t.Errorf("accounts:\n got %+v\nwant %+v", res.Accounts, want)
	}
	for _, q := range e.fake.Queries() {
		if len(q.SubscriptionList) != 5 {
			t.Errorf("subscriptionList = %v, want the 4 listed (not deleted) and the configured one", q.SubscriptionList)
		}
	}
	var denied []string
	for _, d := range res.Denied {
		denied = append(denied, d.Account)
	}
	if !slices.Equal(denied, []string{sub3, extra}) {
		t.Errorf("denied = %+v", res.Denied)
	}
	if len(res.Records) != 12 {
		t.Errorf("records = %d, want 12", len(res.Records))
	}
}

func TestDeniedSubscription(t *testing.T) {
	ds := smallDataset()
	ds.Subscriptions[1].Denied = true
	ds.Subscriptions[1].DenialReason = "Carbon Optimization Reader permission required"
	e := newEnv(t, ds)
	var local logbuf.Buffer
	p := e.provider(t, func(o *azure.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, &local), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	for range 2 {
		res := fetch(t, p, mar)
		want := []provider.Denial{{Provider: "azure", Account: sub2, Reason: "Carbon Optimization Reader permission required"}}
		if !reflect.DeepEqual(res.Denied, want) {
			t.Errorf("denied = %+v, want %+v", res.Denied, want)
		}
		for _, r := range res.Records {
			if r.Account != sub1 {
				t.Errorf("record of a denied subscription: %+v", r)
			}
		}
		if len(res.Records) != 6 {
			t.Errorf("records = %d, want sub1's 6", len(res.Records))
		}
	}
	// A fetch that asks for no published month learned nothing about
	// access or accounts: nil tells the collector to keep what it has
	// (a fresh Provider after a restart must not report "none denied").
	if res := fetch(t, p, apr+1); res.Denied != nil || res.Accounts != nil {
		t.Errorf("without report requests: denied %+v, accounts %+v; want nil (unknown)", res.Denied, res.Accounts)
	}
	// Logged once per provider, with the reason.
	n := 0
	for l := range strings.Lines(local.String()) {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "denied access") && strings.Contains(l, sub2) && strings.Contains(l, "Carbon Optimization Reader permission required") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("denial logged %d times, want once", n)
	}

	t.Run("all denied", func(t *testing.T) {
		ds := smallDataset()
		for i := range ds.Subscriptions {
			ds.Subscriptions[i].Denied = true
		}
		ds.Subscriptions[0].DenialReason = "no role"
		e := newEnv(t, ds)
		perr := fetchErr(t, e.provider(t), mar)
		if perr.Reason != provider.ReasonPermission || !strings.Contains(perr.Error(), "no role") ||
			!strings.Contains(perr.Error(), "Carbon Optimization Reader") || !strings.Contains(perr.Error(), sub2) {
			t.Errorf("error = %v (%s)", perr, perr.Reason)
		}
	})
}

// armErr is an ARM error body.
func armErr(code, msg string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return string(b)
}

// failure is a fetch that must fail: op answers with fault (none when
// its Status is 0), or the options are edited to be wrong.
type failure struct {
	name       string
	op         string
	fault      azurefake.Fault
	edit       func(*azure.Options)
	wantReason provider.Reason
	wantRA     time.Duration
	wantMsg    []string
	// wantOp counts the requests of op, retries included (0: not
	// checked).
	wantOp int
}

// runFailures runs each failure against the small dataset and checks its
// reason, its Retry-After, its message, and that Observe saw every
// attempt the fake saw.
func runFailures(t *testing.T, tests []failure) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, smallDataset())
			if tt.fault.Status != 0 {
				e.fake.Inject(tt.op, tt.fault)
			}
			p := e.provider(t, func(o *azure.Options) {
				o.Concurrency = 1
				if tt.edit != nil {
					tt.edit(o)
				}
			})
			perr := fetchErr(t, p, mar)
			t.Logf("error: %v", perr)
			if perr.Reason != tt.wantReason {
				t.Errorf("reason = %s, want %s (%v)", perr.Reason, tt.wantReason, perr)
			}
			if perr.RetryAfter != tt.wantRA {
				t.Errorf("RetryAfter = %s, want %s", perr.RetryAfter, tt.wantRA)
			}
			if got := provider.ReasonOf(perr); got != tt.wantReason {
				t.Errorf("ReasonOf = %s", got)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(perr.Error(), s) {
					t.Errorf("error %q does not mention %q", perr.Error(), s)
				}
			}
			if strings.Contains(perr.Error(), "\n") {
				t.Errorf("error spans lines: %q", perr.Error())
			}
			if tt.wantOp > 0 {
				if got := e.fake.Requests(tt.op); got != tt.wantOp {
					t.Errorf("%s requests = %d, want %d", tt.op, got, tt.wantOp)
				}
			}
			// Every attempt the fake saw, Observe saw too.
			for op, ep := range map[string]string{
				azurefake.OpToken: azure.EndpointToken, azurefake.OpReports: azure.EndpointReports,
				azurefake.OpDateRange: azure.EndpointDateRange, azurefake.OpSubscriptions: azure.EndpointSubscriptions,
			} {
				if f, o := e.fake.Requests(op), e.obs.total(ep); f != o {
					t.Errorf("%s: fake saw %d requests, Observe %d", op, f, o)
				}
			}
		})
	}
}

// TestARMFailures: ARM's error answers, with their codes and hints.
func TestARMFailures(t *testing.T) {
	runFailures(t, []failure{
		{
			name: "throttled beyond the retry cap", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 429, Header: http.Header{"Retry-After": {"3600"}}, Body: armErr("TooManyRequests", "Rate limit exceeded.")},
			wantReason: provider.ReasonThrottled, wantRA: time.Hour, wantOp: 1,
			wantMsg: []string{"429", "throttled", "retry after 1h0m0s"},
		},
		{
			name: "date range unavailable", op: azurefake.OpDateRange,
			fault:      azurefake.Fault{Status: 503, Times: 100, Header: http.Header{"Retry-After": {"0"}}},
			edit:       func(o *azure.Options) { o.MaxRetries = -1 },
			wantReason: provider.ReasonServer, wantOp: 1,
			wantMsg: []string{"queryCarbonEmissionDataAvailableDateRange", "503"},
		},
		{
			name: "bad request", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 400, Body: armErr("BadRequest", "dateRange is outside the available range.")},
			wantReason: provider.ReasonBadRequest, wantOp: 1,
			wantMsg: []string{"400 Bad Request", "dateRange is outside the available range.", "[BadRequest]"},
		},
		{
			name: "not found", op: azurefake.OpDateRange,
			fault:      azurefake.Fault{Status: 404, Body: armErr("InvalidResourceType", "The resource type could not be found.")},
			wantReason: provider.ReasonNotFound, wantOp: 1,
			wantMsg: []string{"404", "not available at this resource manager endpoint"},
		},
		{
			name: "listing nextLink leaves the endpoint", op: azurefake.OpSubscriptions,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":[],"nextLink":"https://elsewhere.invalid/subscriptions?api-version=2022-12-01"}`},
			edit:       func(o *azure.Options) { o.ListSubscriptions = true },
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"nextLink leaves the resource manager endpoint"},
		},
		{
			name: "listing finds nothing", op: azurefake.OpSubscriptions,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":[]}`},
			edit:       func(o *azure.Options) { o.ListSubscriptions = true; o.Subscriptions = nil },
			wantReason: provider.ReasonPermission,
			wantMsg:    []string{"can list no subscriptions"},
		},
	})
}

// itemJSON is a Resource item of a report page, as ARM sends it.
const itemJSON = `{"dataType":"ResourceItemDetailsData","itemName":"vm1","categoryType":"Resource","latestMonthEmissions":1,"previousMonthEmissions":1,"subscriptionId":"` + sub1 + `","resourceGroup":"rg","resourceId":"/subscriptions/` + sub1 + `/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1","resourceType":"microsoft.compute/virtualmachines","location":"east us"}`

// TestMalformedAnswers: answers of the Microsoft.Carbon operations that
// decode but do not hold what the API defines.
func TestMalformedAnswers(t *testing.T) {
	runFailures(t, []failure{
		{
			name: "unknown dataType", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":[{"dataType":"ResourceItemDetailsDataV2","latestMonthEmissions":1,"previousMonthEmissions":1}]}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"malformed response", `dataType "ResourceItemDetailsDataV2"`, "ResourceItemDetailsData"},
		},
		{
			name: "dataType of another category", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":[{"dataType":"ItemDetailsData","itemName":"east us","categoryType":"Location","latestMonthEmissions":1,"previousMonthEmissions":1}]}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{`dataType "ItemDetailsData"`},
		},
		{
			name: "item without dataType", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":[{"latestMonthEmissions":1}]}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"without dataType"},
		},
		{
			name: "item without emissions", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":[` + strings.Replace(itemJSON, `"latestMonthEmissions":1,`, "", 1) + `]}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"without latestMonthEmissions", "vm1"},
		},
		{
			name: "no value", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Body: `{"subscriptionAccessDecisionList":[]}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"no value array"},
		},
		{
			name: "value is not an array", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Body: `{"value":{"dataType":"ResourceItemDetailsData"}}`},
			wantReason: provider.ReasonMalformed,
		},
		{
			name: "skipToken loops", op: azurefake.OpReports,
			fault:      azurefake.Fault{Status: 200, Times: 2, Body: `{"value":[` + itemJSON + `],"skipToken":"same"}`},
			edit:       func(o *azure.Options) { o.Concurrency = 1 },
			wantReason: provider.ReasonMalformed, wantOp: 2,
			wantMsg: []string{"skipToken repeats", "page 2"},
		},
		{
			name: "date range garbage", op: azurefake.OpDateRange,
			fault:      azurefake.Fault{Status: 200, Body: `{"startDate":"2025-13-01","endDate":"soon"}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"malformed response", "want yyyy-MM-dd"},
		},
		{
			name: "date range empty", op: azurefake.OpDateRange,
			fault:      azurefake.Fault{Status: 200, Body: ``},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"startDate or endDate missing"},
		},
		{
			name: "date range reversed", op: azurefake.OpDateRange,
			fault:      azurefake.Fault{Status: 200, Body: `{"startDate":"2025-03-01","endDate":"2024-03-01"}`},
			wantReason: provider.ReasonMalformed,
			wantMsg:    []string{"before startDate"},
		},
	})
}

// TestTokenFailures: Entra's answers to a wrong credential or a failing
// token endpoint.
func TestTokenFailures(t *testing.T) {
	runFailures(t, []failure{
		{
			name: "wrong client secret", op: azurefake.OpOther,
			edit:       func(o *azure.Options) { o.ClientSecret = canary + "-old" },
			wantReason: provider.ReasonAuth,
			wantMsg:    []string{"get token", "401", "AADSTS7000215", "client secret (its value, not its id)"},
		},
		{
			name: "unknown client id", op: azurefake.OpOther,
			edit:       func(o *azure.Options) { o.ClientID = "99999999-9999-4999-8999-999999999999" },
			wantReason: provider.ReasonAuth,
			wantMsg:    []string{"AADSTS700016", "not found in the directory"},
		},
		{
			name: "unknown tenant", op: azurefake.OpOther,
			edit:       func(o *azure.Options) { o.TenantID = "99999999-9999-4999-8999-999999999999" },
			wantReason: provider.ReasonAuth,
			wantMsg:    []string{"get token", "AADSTS90002"},
		},
		{
			name: "token endpoint down", op: azurefake.OpToken,
			fault:      azurefake.Fault{Status: 503, Times: 100, Body: `{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server is busy."}`},
			edit:       func(o *azure.Options) { o.MaxRetries = 1 },
			wantReason: provider.ReasonServer, wantOp: 2,
			wantMsg: []string{"get token", "503", "temporarily_unavailable"},
		},
		{
			name: "token endpoint throttles", op: azurefake.OpToken,
			fault:      azurefake.Fault{Status: 429, Times: 100, Header: http.Header{"Retry-After": {"120"}}, Body: `{"error":"throttled"}`},
			wantReason: provider.ReasonThrottled, wantRA: 2 * time.Minute, wantOp: 1,
		},
	})
}

// TestEchoedSecret checks the scrubbing of a secret that a server echoes
// back: Entra never does, but nothing we return may carry the secret even
// if it did.
func TestEchoedSecret(t *testing.T) {
	const echoed = "ECHOED-secret-4d3c2b1a0f9e8d7c"
	e := newEnv(t, smallDataset())
	e.fake.Inject(azurefake.OpToken, azurefake.Fault{Status: 401,
		Body: `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: ` + echoed + `"}`})
	p := e.provider(t, func(o *azure.Options) { o.ClientSecret = echoed })
	perr := fetchErr(t, p, mar)
	if strings.Contains(perr.Error(), echoed) || !strings.Contains(perr.Error(), "<secret>") {
		t.Errorf("error = %v", perr)
	}
}

func TestTokenRefresh(t *testing.T) {
	t.Run("revoked tokens", func(t *testing.T) {
		e := newEnv(t, smallDataset())
		p := e.provider(t)
		fetch(t, p, mar)
		e.fake.ExpireTokens()
		res := fetch(t, p, mar)
		if len(res.Records) != 12 {
			t.Errorf("records = %d", len(res.Records))
		}
		if n := e.fake.Requests(azurefake.OpToken); n != 2 {
			t.Errorf("token requests = %d, want 2 (one refresh)", n)
		}
		if n := e.obs.count(azure.EndpointDateRange, http.StatusUnauthorized); n != 1 {
			t.Errorf("observed 401s = %d, want 1", n)
		}
	})
	t.Run("token rejected once", func(t *testing.T) {
		e := newEnv(t, smallDataset())
		e.fake.Inject(azurefake.OpDateRange, azurefake.Fault{Status: 401, Body: armErr("InvalidAuthenticationToken", "The access token is invalid.")})
		p := e.provider(t)
		fetch(t, p, mar)
		if n := e.fake.Requests(azurefake.OpToken); n != 2 {
			t.Errorf("token requests = %d, want 2 (renewed credential)", n)
		}
		fetch(t, p, mar)
		if n := e.fake.Requests(azurefake.OpToken); n != 2 {
			t.Errorf("token requests = %d after another fetch, want the cached token reused", n)
		}
	})
	t.Run("short-lived tokens", func(t *testing.T) {
		e := newEnv(t, smallDataset())
		// An expired token is replaced before use, without a 401.
		e.fake.SetTokenTTL(2 * time.Second)
		p := e.provider(t)
		fetch(t, p, mar)
		// The first fetch's subscription listing (for names) runs on
		// its own ARM client, which asks the credential for a token of
		// its own; MSAL's cache does not serve tokens that expire in
		// less than five minutes.
		first := e.fake.Requests(azurefake.OpToken)
		time.Sleep(2050 * time.Millisecond)
		fetch(t, p, mar)
		if n := e.fake.Requests(azurefake.OpToken) - first; n != 1 {
			t.Errorf("token requests of the second fetch = %d, want 1", n)
		}
		if n := e.obs.count(azure.EndpointReports, http.StatusUnauthorized); n != 0 {
			t.Errorf("observed 401s = %d", n)
		}
	})
}

// writeCertificate writes a fresh self-signed RSA certificate and its key
// as PEM and returns the certificate.
func writeCertificate(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cloudcarbon test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	registered := filepath.Join(dir, "registered.pem")
	cert := writeCertificate(t, registered)
	other := filepath.Join(dir, "other.pem")
	writeCertificate(t, other)

	e := newEnv(t, smallDataset())
	e.fake.AddClientCertificate(cert)
	certOpts := func(path string) func(*azure.Options) {
		return func(o *azure.Options) {
			o.Credential = azure.CredentialClientCertificate
			o.ClientSecret = ""
			o.CertificatePath = path
		}
	}
	res := fetch(t, e.provider(t, certOpts(registered)), mar)
	if len(res.Records) != 12 {
		t.Errorf("records = %d", len(res.Records))
	}
	perr := fetchErr(t, e.provider(t, certOpts(other)), mar)
	if perr.Reason != provider.ReasonAuth || !strings.Contains(perr.Error(), "AADSTS700027") || !strings.Contains(perr.Error(), "certificate is registered") {
		t.Errorf("unregistered certificate: %v (%s)", perr, perr.Reason)
	}
}

func TestNewValidation(t *testing.T) {
	dir := t.TempDir()
	certPath := filepath.Join(dir, "cert.pem")
	writeCertificate(t, certPath)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := azure.Options{
		TenantID: tenant, Credential: azure.CredentialClientSecret, ClientID: clientID, ClientSecret: canary,
		Subscriptions: []string{sub1},
	}
	tests := []struct {
		name    string
		edit    func(*azure.Options)
		wantErr string // "" for success
	}{
		{"client secret", nil, ""},
		{"default credential", func(o *azure.Options) { *o = azure.Options{ListSubscriptions: true} }, ""},
		{"default credential with tenant", func(o *azure.Options) { *o = azure.Options{TenantID: tenant, Subscriptions: []string{sub1}} }, ""},
		{"certificate", func(o *azure.Options) {
			o.Credential, o.ClientSecret, o.CertificatePath = azure.CredentialClientCertificate, "", certPath
		}, ""},
		{"china", func(o *azure.Options) { o.Cloud = "china" }, ""},
		{"us government", func(o *azure.Options) { o.Cloud = "USGovernment" }, ""},
		{"default with a secret", func(o *azure.Options) { o.Credential = "default" }, "credential is default"},
		{"default with a client id", func(o *azure.Options) { *o = azure.Options{ClientID: clientID, ListSubscriptions: true} }, "AZURE_CLIENT_ID"},
		{"secret without tenant", func(o *azure.Options) { o.TenantID = "" }, "needs a tenant id and a client id"},
		{"secret without client id", func(o *azure.Options) { o.ClientID = "" }, "needs a tenant id and a client id"},
		{"empty secret", func(o *azure.Options) { o.ClientSecret = "" }, "client secret, and it is empty"},
		{"secret with a newline", func(o *azure.Options) { o.ClientSecret = canary + "\n" }, "whitespace"},
		{"secret and certificate", func(o *azure.Options) { o.CertificatePath = certPath }, "does not use a certificate"},
		{"certificate without path", func(o *azure.Options) { o.Credential, o.ClientSecret = azure.CredentialClientCertificate, "" }, "needs a certificate path"},
		{"certificate and secret", func(o *azure.Options) { o.Credential, o.CertificatePath = azure.CredentialClientCertificate, certPath }, "does not use a client secret"},
		{"certificate missing", func(o *azure.Options) {
			o.Credential, o.ClientSecret, o.CertificatePath = azure.CredentialClientCertificate, "", filepath.Join(dir, "missing.pem")
		}, "no such file"},
		{"certificate garbage", func(o *azure.Options) {
			o.Credential, o.ClientSecret, o.CertificatePath, o.CertificatePassword = azure.CredentialClientCertificate, "", garbage, canary
		}, "want PEM"},
		{"unknown credential", func(o *azure.Options) { o.Credential = "password" }, "unknown credential"},
		{"bad subscription", func(o *azure.Options) { o.Subscriptions = []string{"my-subscription"} }, `subscription id "my-subscription"`},
		{"no subscriptions", func(o *azure.Options) { o.Subscriptions = nil }, "no subscriptions"},
		{"unknown cloud", func(o *azure.Options) { o.Cloud = "germany" }, "unknown cloud"},
		{"http authority", func(o *azure.Options) { o.AuthorityHost = "http://login.example" }, "want an absolute https URL"},
		{"http endpoint", func(o *azure.Options) { o.ResourceManagerEndpoint = "http://arm.example" }, "want an absolute https URL"},
		{"endpoint with query", func(o *azure.Options) { o.ResourceManagerEndpoint = "https://arm.example/?x=1" }, "must not carry"},
		{"relative audience", func(o *azure.Options) { o.ResourceManagerAudience = "management" }, "want an absolute https URL"},
		{"page size", func(o *azure.Options) { o.PageSize = 5001 }, "page size 5001"},
		{"concurrency", func(o *azure.Options) { o.Concurrency = 100 }, "concurrency 100"},
		{"budget", func(o *azure.Options) { o.RequestBudget = -1 }, "request budget -1"},
		{"retry delay", func(o *azure.Options) { o.RetryDelay = -time.Second }, "retry delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base
			if tt.edit != nil {
				tt.edit(&opts)
			}
			p, err := azure.New(opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr == "" && p == nil:
				t.Fatal("New returned nil")
			case tt.wantErr != "" && err == nil:
				t.Fatalf("New succeeded, want an error mentioning %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestConcurrentFetches(t *testing.T) {
	e := newEnv(t, pagingDataset(30))
	p := e.provider(t, func(o *azure.Options) { o.PageSize = 7 })
	var wg sync.WaitGroup
	results := make([]provider.Result, 4)
	for i := range results {
		wg.Go(func() { results[i] = fetch(t, p, mar) })
	}
	wg.Wait()
	for _, r := range results[1:] {
		if !reflect.DeepEqual(r.Records, results[0].Records) {
			t.Fatal("concurrent fetches disagree")
		}
	}
}

// TestPlaceholders checks items that lack a dimension: they are kept
// under a placeholder (or the dimension recovered from resourceId) so that
// their emissions stay in the totals.
func TestPlaceholders(t *testing.T) {
	e := newEnv(t, smallDataset())
	body := `{"value":[` +
		`{"dataType":"ResourceItemDetailsData","itemName":"vm1","categoryType":"Resource","latestMonthEmissions":1,"previousMonthEmissions":0,"resourceGroup":"rg","resourceId":"/subscriptions/` + sub1 + `/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1","location":"east us"},` +
		`{"dataType":"ResourceItemDetailsData","itemName":"st1","categoryType":"Resource","latestMonthEmissions":2,"previousMonthEmissions":0,"subscriptionId":"` + strings.ToUpper(sub1) + `","resourceGroup":"rg","resourceId":"x","resourceType":"Microsoft.Storage/storageAccounts"},` +
		`{"dataType":"ResourceItemDetailsData","itemName":"mystery","categoryType":"Resource","latestMonthEmissions":4,"previousMonthEmissions":0,"resourceGroup":"","resourceId":""}` +
		`],"subscriptionAccessDecisionList":[{"subscriptionId":"` + sub1 + `","decision":"Allowed"}]}`
	e.fake.Inject(azurefake.OpReports, azurefake.Fault{Status: 200, Body: body, Times: 3})
	res := fetch(t, e.provider(t), mar)
	var got []string
	for _, r := range res.Records {
		if r.Scope == provider.Scope1 {
			got = append(got, fmt.Sprintf("%s|%s|%s|%v", r.Account, r.Service, r.Location, r.EmissionsGrams))
		}
	}
	want := []string{
		sub1 + "|" + vms + "|eastus|1000",
		sub1 + "|" + stor + "|unknown|2000",
		"none|unknown|unknown|4000",
	}
	if !slices.Equal(got, want) {
		t.Errorf("records:\n got %q\nwant %q", got, want)
	}
}

package ibm_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// costProvider is e's provider with the usage reports on e's server too.
func (e *env) costProvider(t *testing.T, edit func(*ibm.Options)) *ibm.Provider {
	t.Helper()
	return e.provider(t, func(o *ibm.Options) {
		o.UsageReportsURL, o.EnterpriseUsageReportsURL = e.ts.URL, e.ts.URL
		if edit != nil {
			edit(o)
		}
	})
}

func readCosts(t *testing.T, p *ibm.Provider, months ...provider.Month) []provider.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	recs, err := p.ReadCosts(ctx, months)
	if err != nil {
		t.Fatalf("ReadCosts: %v", err)
	}
	for _, r := range recs {
		if r.Known != provider.Cost || r.Provider != "ibm" || r.Scope != provider.ScopeNone || r.Location != ibm.Unknown {
			t.Errorf("not a cost record of no location: %+v", r)
		}
	}
	return recs
}

// costErr runs a cost read that must fail, without the API key in its
// error.
func costErr(t *testing.T, p *ibm.Provider, months ...provider.Month) *provider.Error {
	t.Helper()
	_, err := p.ReadCosts(t.Context(), months)
	perr, ok := err.(*provider.Error)
	if !ok {
		t.Fatalf("ReadCosts error %T (%v), want a *provider.Error", err, err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("error leaks the API key: %v", err)
	}
	return perr
}

func costRec(account, service string, m provider.Month, usd float64) provider.Record {
	return provider.Record{Provider: "ibm", Account: account, Service: service, Location: ibm.Unknown,
		Scope: provider.ScopeNone, Month: m, CostUSD: usd, Known: provider.Cost}
}

// accountDataset is a standard account: carbon in January, cost in
// January and February, a service with free-tier usage, another account's
// cost the key may not read.
func accountDataset() ibmfake.Dataset {
	return ibmfake.Dataset{
		Rows: []ibmfake.Row{
			{AccountID: acct, Service: "Code Engine", Location: "Dallas", ResourceGroupID: "rg", Month: jan, CarbonEmission: 100, EnergyConsumption: 300},
			{AccountID: acct, Service: "Cloud Object Storage", Location: "London", ResourceGroupID: "rg", Month: jan, CarbonEmission: 50, EnergyConsumption: 200},
		},
		Costs: []ibmfake.CostRow{
			{AccountID: acct, Service: "Code Engine", Location: "Dallas", Month: jan, BillableUSD: 10.25, NonBillableUSD: 1},
			{AccountID: acct, Service: "Code Engine", Location: "London", Month: jan, BillableUSD: 2.5},
			{AccountID: acct, Service: "Cloud Object Storage", Location: "London", Month: jan, BillableUSD: 4},
			{AccountID: acct, Service: "Code Engine", Location: "Dallas", Month: feb, BillableUSD: 3.125},
		},
	}
}

// TestAccountSummaryCosts: a standard account's cost is its summaries'
// billable cost per resource, one request per month, of the account the
// IAM token names, labelled with the carbon data's service names; free
// tier and support are left out.
func TestAccountSummaryCosts(t *testing.T) {
	e := newEnv(t, accountDataset(), nil)
	var mu sync.Mutex
	var paths []string
	p := e.costProvider(t, func(o *ibm.Options) {
		o.Observe = func(endpoint string, code int) {
			mu.Lock()
			defer mu.Unlock()
			paths = append(paths, endpoint)
		}
	})
	got := readCosts(t, p, feb, jan, mar)
	want := []provider.Record{
		costRec(acct, "Cloud Object Storage", jan, 4),
		costRec(acct, "Code Engine", jan, 12.75),
		costRec(acct, "Code Engine", feb, 3.125),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records:\n got %+v\nwant %+v", got, want)
	}
	if n := e.fake.Requests(ibmfake.AccountSummaryPath); n != 3 {
		t.Errorf("%d account summary requests for three months, want 3", n)
	}
	if n := e.fake.Requests(ibmfake.CarbonPath) + e.fake.Requests(ibmfake.EnterpriseUsagePath); n != 0 {
		t.Errorf("%d requests of other APIs", n)
	}
	mu.Lock()
	slices.Sort(paths)
	if want := []string{"iam_token", "usage_account_summary", "usage_account_summary", "usage_account_summary"}; !slices.Equal(paths, want) {
		t.Errorf("observed %v, want %v", paths, want)
	}
	mu.Unlock()

	// The services are the carbon records' services of the account.
	carbon := map[[2]string]bool{}
	for _, r := range fetch(t, p, jan).Records {
		carbon[[2]string{r.Account, r.Service}] = true
	}
	for _, r := range got {
		if r.Month == jan && !carbon[[2]string{r.Account, r.Service}] {
			t.Errorf("cost of %s/%s, which the carbon data does not name", r.Account, r.Service)
		}
	}
}

// TestAccountSummaryWithoutResources: a summary without
// account_resources gives the account's cost under service Unknown; one
// with neither is malformed, and so is one of another month or account.
func TestAccountSummaryWithoutResources(t *testing.T) {
	for _, tt := range []struct {
		name   string
		body   string
		want   []provider.Record
		reason provider.Reason
	}{
		{"account total", `{"account_id":"` + acct + `","month":"2024-01","resources":{"billable_cost":42.5,"non_billable_cost":3}}`,
			[]provider.Record{costRec(acct, ibm.Unknown, jan, 42.5)}, ""},
		{"no usage", `{"account_id":"` + acct + `","month":"2024-01","account_resources":[],"resources":{"billable_cost":0}}`,
			[]provider.Record{}, ""},
		{"neither", `{"account_id":"` + acct + `","month":"2024-01"}`, nil, provider.ReasonMalformed},
		{"another month", `{"account_id":"` + acct + `","month":"2023-12","account_resources":[]}`, nil, provider.ReasonMalformed},
		{"another account", `{"account_id":"` + acct2 + `","month":"2024-01","account_resources":[]}`, nil, provider.ReasonMalformed},
		{"not JSON", `{"account_id":`, nil, provider.ReasonMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, accountDataset(), nil)
			e.fake.Inject(ibmfake.AccountSummaryPath, ibmfake.Fault{Status: http.StatusOK, Body: tt.body})
			p := e.costProvider(t, nil)
			if tt.reason != "" {
				if perr := costErr(t, p, jan); perr.Reason != tt.reason {
					t.Errorf("reason %s (%v), want %s", perr.Reason, perr, tt.reason)
				}
				return
			}
			if got := readCosts(t, p, jan); (len(got) > 0 || len(tt.want) > 0) && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("records %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestEnterpriseCosts: an enterprise's cost is its accounts' billable
// cost, from the Enterprise Usage Reports API, the account groups under
// it walked, every page read; an account group's is its accounts', an
// enterprise account's its own. The accounts are the carbon data's.
func TestEnterpriseCosts(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := ibmfake.Demo(now)
	last := ibmfake.LatestPublished(now)
	byAccount := func(m provider.Month, under string) map[string]float64 {
		out := map[string]float64{}
		for _, a := range ds.Entities {
			if a.Type != ibmfake.TypeAccount {
				continue
			}
			one := ibmfake.Dataset{Entities: ds.Entities, Costs: ds.Costs}
			if usd, ok := one.CostTotal(m, a.ID); ok && (under == "" || isUnder(ds, a.ID, under)) {
				out[a.ID] = usd
			}
		}
		return out
	}
	var groups []string
	var anAccount string
	for _, e := range ds.Entities {
		switch e.Type {
		case ibmfake.TypeAccountGroup:
			groups = append(groups, e.ID)
		case ibmfake.TypeAccount:
			anAccount = e.ID
		}
	}
	for _, tt := range []struct {
		name     string
		scope    func(*ibm.Options)
		under    string
		pageMax  int
		requests int
	}{
		// The enterprise's children (two account groups and an
		// account), then each group's two accounts.
		{"enterprise", func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID }, "", 0, 3},
		{"enterprise, pages of one", func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID }, "", 1, 3 + 2 + 2},
		{"account group", func(o *ibm.Options) { o.EnterpriseGroupID = groups[0] }, groups[0], 0, 1},
		{"enterprise account", func(o *ibm.Options) { o.EnterpriseAccountID = anAccount }, anAccount, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ds, nil)
			e.fake.SetPageMax(tt.pageMax)
			p := e.costProvider(t, tt.scope)
			months := []provider.Month{last, last + 1}
			got := map[provider.Month]map[string]float64{}
			for _, r := range readCosts(t, p, months...) {
				if r.Service != ibm.Unknown {
					t.Errorf("an enterprise cost record names a service: %+v", r)
				}
				if got[r.Month] == nil {
					got[r.Month] = map[string]float64{}
				}
				got[r.Month][r.Account] += r.CostUSD
			}
			for _, m := range months {
				want := byAccount(m, tt.under)
				if len(want) == 0 || !equalCosts(got[m], want) {
					t.Errorf("%s: cost by account %v, want %v", m, got[m], want)
				}
			}
			if n := e.fake.Requests(ibmfake.EnterpriseUsagePath); n != tt.requests*len(months) {
				t.Errorf("%d usage report requests, want %d per month", n, tt.requests)
			}
			// The accounts are those of the carbon data.
			carbon := map[string]bool{}
			for _, r := range fetch(t, p, last).Records {
				carbon[r.Account] = true
			}
			if accounts := slices.Sorted(maps.Keys(got[last])); !reflect.DeepEqual(accounts, slices.Sorted(maps.Keys(carbon))) {
				t.Errorf("cost accounts %v, carbon accounts %v", accounts, slices.Sorted(maps.Keys(carbon)))
			}
		})
	}
}

func isUnder(ds ibmfake.Dataset, id, ancestor string) bool {
	parent := map[string]string{}
	for _, e := range ds.Entities {
		parent[e.ID] = e.ParentID
	}
	for n := 0; id != "" && n <= len(ds.Entities); id, n = parent[id], n+1 {
		if id == ancestor {
			return true
		}
	}
	return false
}

func equalCosts(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !near(g, w) {
			return false
		}
	}
	return true
}

// TestEnterprisePagingFaults: the Enterprise Usage Reports API's offset is
// sent back as given, and next links that do not move or carry no offset
// are malformed answers, not loops.
func TestEnterprisePagingFaults(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := ibmfake.Demo(now)
	m := ibmfake.LatestPublished(now)
	page := func(next string) string {
		b, _ := json.Marshal(map[string]any{"limit": 100, "reports": []any{map[string]any{
			"entity_id": ds.Entities[len(ds.Entities)-1].ID, "entity_type": "account", "month": m.String(), "billable_cost": 1.5,
		}}, "next": map[string]any{"href": next}})
		return string(b)
	}
	for _, tt := range []struct {
		name string
		body []string
		want string
	}{
		{"next without offset", []string{page("https://elsewhere.example/v1/resource-usage-reports?limit=100")}, "without an offset"},
		{"next does not advance", []string{page("/v1/resource-usage-reports?offset=abc"), page("/v1/resource-usage-reports?offset=abc")}, "does not advance"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ds, nil)
			for _, b := range tt.body {
				e.fake.Inject(ibmfake.EnterpriseUsagePath, ibmfake.Fault{Status: http.StatusOK, Body: b})
			}
			perr := costErr(t, e.costProvider(t, func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID }), m)
			if perr.Reason != provider.ReasonMalformed || !strings.Contains(perr.Error(), tt.want) {
				t.Errorf("got %s (%v), want malformed saying %q", perr.Reason, perr, tt.want)
			}
		})
	}
}

// TestCostFailures: the usage reports' own error answers are classified
// with their message and code, a denied permission naming the role the
// API needs.
func TestCostFailures(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := ibmfake.Demo(now)
	m := ibmfake.LatestPublished(now)
	for _, tt := range []struct {
		name   string
		scope  func(*ibm.Options)
		path   string
		fault  ibmfake.Fault
		reason provider.Reason
		want   []string
	}{
		{"summary forbidden", nil, ibmfake.AccountSummaryPath, ibmfake.UsageErrorFault(http.StatusForbidden), provider.ReasonPermission,
			[]string{"403 Forbidden", "[not_authorized]", ibm.AccountSummaryPermission}},
		{"enterprise forbidden", func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID }, ibmfake.EnterpriseUsagePath,
			ibmfake.UsageErrorFault(http.StatusForbidden), provider.ReasonPermission, []string{ibm.EnterpriseUsagePermission}},
		{"enterprise unknown", func(o *ibm.Options) { o.EnterpriseID = strings.Repeat("0", 32) }, "", ibmfake.Fault{}, provider.ReasonPermission,
			[]string{"You are not authorized to view the usage reports of " + strings.Repeat("0", 32), ibm.EnterpriseUsagePermission}},
		{"enterprise not found", func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID }, ibmfake.EnterpriseUsagePath,
			ibmfake.UsageErrorFault(http.StatusNotFound), provider.ReasonNotFound, []string{"check the configured enterprise"}},
		{"dependency failure", func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID }, ibmfake.EnterpriseUsagePath,
			ibmfake.Fault{Status: http.StatusFailedDependency, Body: `{"errors":[{"code":"dependency_failure","message":"The entity does not have a billing unit."}],"status_code":424}`},
			provider.ReasonBadRequest, []string{"The entity does not have a billing unit. [dependency_failure]"}},
		{"summary throttled", nil, ibmfake.AccountSummaryPath,
			ibmfake.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}, Body: ibmfake.UsageErrorFault(429).Body, Times: 10},
			provider.ReasonThrottled, []string{"429", "retry after 1h0m0s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			quietSDKLog(t)
			e := newEnv(t, ds, nil)
			if tt.path != "" {
				e.fake.Inject(tt.path, tt.fault)
			}
			perr := costErr(t, e.costProvider(t, tt.scope), m)
			if perr.Reason != tt.reason {
				t.Errorf("reason %s (%v), want %s", perr.Reason, perr, tt.reason)
			}
			for _, s := range tt.want {
				if !strings.Contains(perr.Error(), s) {
					t.Errorf("error %q does not say %q", perr, s)
				}
			}
		})
	}
}

// TestProvisionalConfig: only the provider of a source that asks for
// provisional months is a cost feed; the usage reports' endpoints are
// IBM's unless set, and checked as the others are.
func TestProvisionalConfig(t *testing.T) {
	for _, provisional := range []bool{false, true} {
		cfg := ibm.Config{Name: "ibm", APIKey: provider.Secret(canary), Provisional: provisional}
		c := &checker{has: map[string]bool{}}
		cfg.Check(c)
		if cfg.UsageReportsURL != "" || cfg.EnterpriseUsageReportsURL != "" || len(c.errs) > 0 {
			t.Errorf("usage reports URLs %q, %q; errors %q", cfg.UsageReportsURL, cfg.EnterpriseUsageReportsURL, c.errs)
		}
		p, err := cfg.New(t.Context(), provider.Env{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.(provider.CostFeed); ok != provisional {
			t.Errorf("provisional: %v: the provider is a cost feed: %v", provisional, ok)
		}
	}
	c := &checker{has: map[string]bool{}}
	cfg := ibm.Config{Name: "ibm", APIKey: provider.Secret(canary), UsageReportsURL: "ftp://billing.example", EnterpriseUsageReportsURL: "https://u:p@x.example"}
	cfg.Check(c)
	if len(c.errs) != 2 || !strings.HasPrefix(c.errs[0], "usage_reports_url: ") || !strings.HasPrefix(c.errs[1], "enterprise_usage_reports_url: ") {
		t.Errorf("errors %q", c.errs)
	}
}

// TestDemoCostFeed: the demo source asks for provisional months, and its
// cost feed reads every month from the latest published ones to now.
func TestDemoCostFeed(t *testing.T) {
	now := time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)
	d, err := ibm.Plugin().Demo(t.Context(), now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	entry := d.Entries[0]
	if entry["provisional"] != true {
		t.Fatalf("the demo entry does not ask for provisional months: %v", entry)
	}
	url := entry["api_url"].(string)
	p, err := ibm.New(ibm.Options{APIKey: entry["api_key"].(string), APIURL: url, IAMURL: url, UsageReportsURL: url,
		EnterpriseUsageReportsURL: url, EnterpriseID: entry["enterprise_id"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	ds := ibmfake.Demo(now)
	last, cur := ibmfake.LatestPublished(now), provider.MonthOf(now)
	got := map[provider.Month]float64{}
	for _, r := range readCosts(t, p, provider.Range(last-7, cur)...) {
		got[r.Month] += r.CostUSD
	}
	if months, want := slices.Sorted(maps.Keys(got)), provider.Range(last-7, cur); !reflect.DeepEqual(months, want) {
		t.Errorf("months with cost %v, want %v", months, want)
	}
	for m, usd := range got {
		if want, _ := ds.CostTotal(m, ""); !near(usd, want) {
			t.Errorf("%s: %v, want %v", m, usd, want)
		}
	}
}

// TestTokenWithoutAccount: a standard account's cost needs the account
// the IAM token names; a token that names none is a malformed answer,
// and no summary is asked for.
func TestTokenWithoutAccount(t *testing.T) {
	e := newEnv(t, ibmfake.Dataset{}, nil)
	perr := costErr(t, e.costProvider(t, nil), jan)
	if perr.Reason != provider.ReasonMalformed || !strings.Contains(perr.Error(), "names no account") {
		t.Errorf("got %s (%v)", perr.Reason, perr)
	}
	if n := e.fake.Requests(ibmfake.AccountSummaryPath); n != 0 {
		t.Errorf("%d summary requests", n)
	}
}

package ibm_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

// canary is the API key of every test. It must never appear in an error,
// in the provider's slog output, or in go-sdk-core's global log.
const canary = "CANARY-apikey-7f3c9d1e5b2a4f60c8e1d3b5a7f9c2e4"

// echoedKey is the key of the one test where the server echoes the key
// back; see TestFailures.
const echoedKey = "ECHOED-apikey-0c1d2e3f4a5b6c7d8e9f"

// jwtMarker begins every token the fake issues (base64 of `{"alg"`).
const jwtMarker = "eyJhbGci"

// logs receives the slog output of every provider under test and
// go-sdk-core's global logger, which TestMain turns up to debug level (its
// most talkative) before any test runs.
var logs logbuf.Buffer

func TestMain(m *testing.M) {
	l := log.New(&logs, "", 0)
	core.SetLogger(core.NewLogger(core.LevelDebug, l, l))
	code := m.Run()
	out := logs.String()
	if strings.Contains(out, canary) {
		fmt.Fprintln(os.Stderr, "FAIL: the API key appears in log output")
		for l := range strings.Lines(out) {
			if strings.Contains(l, canary) {
				fmt.Fprint(os.Stderr, "  ", l)
			}
		}
		code = 1
	}
	if strings.Contains(out, jwtMarker) {
		fmt.Fprintln(os.Stderr, "FAIL: an access token appears in log output")
		code = 1
	}
	// A run filtered to benchmarks or a few tests need not log what the
	// check looks for; the full run must, or the capture is broken.
	filtered := flag.Lookup("test.run").Value.String() != ""
	if !filtered && (!strings.Contains(out, "ibm carbon_emissions page") || !strings.Contains(out, "[Debug]")) {
		fmt.Fprintln(os.Stderr, "FAIL: log capture did not work; the leak check above proves nothing")
		code = 1
	}
	os.Exit(code)
}

// quietSDKLog turns go-sdk-core's global logger down to errors until tb
// ends. TestMain turns its debug dumps on for the leak check; they redact
// every response body with regular expressions, which at a few hundred
// pages would dominate a benchmark and slow a test under -race tenfold.
// No test runs in parallel, so swapping the global logger is safe.
func quietSDKLog(tb testing.TB) {
	loud := core.GetLogger()
	core.SetLogger(core.NewLogger(core.LevelError, log.New(io.Discard, "", 0), log.New(io.Discard, "", 0)))
	tb.Cleanup(func() { core.SetLogger(loud) })
}

const (
	acct  = "0123456789abcdef0123456789abcdef"
	acct2 = "fedcba9876543210fedcba9876543210"
)

var (
	jan = provider.NewMonth(2024, time.January)
	feb = jan + 1
	mar = jan + 2
)

// env is a fake IBM cloud on an httptest server.
type env struct {
	fake *ibmfake.Server
	ts   *httptest.Server
}

// newEnv serves ds through wrap (nil for none). wrap runs after the
// server's Close is registered, so cleanups wrap registers run first and
// can free blocked handlers.
func newEnv(t *testing.T, ds ibmfake.Dataset, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	return newEnvKey(t, ds, canary, wrap)
}

func newEnvKey(t *testing.T, ds ibmfake.Dataset, key string, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	fake := ibmfake.NewServer(ds, key)
	ts := httptest.NewUnstartedServer(fake)
	t.Cleanup(ts.Close)
	if wrap != nil {
		ts.Config.Handler = wrap(fake)
	}
	ts.Start()
	return &env{fake: fake, ts: ts}
}

func (e *env) options() ibm.Options {
	return ibm.Options{
		APIKey:           canary,
		APIURL:           e.ts.URL,
		IAMURL:           e.ts.URL,
		HTTPClient:       e.ts.Client(),
		MaxRetryInterval: time.Millisecond,
		Logger:           slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) provider(t *testing.T, edit func(*ibm.Options)) *ibm.Provider {
	t.Helper()
	opts := e.options()
	if edit != nil {
		edit(&opts)
	}
	p, err := ibm.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func fetch(t *testing.T, p *ibm.Provider, months ...provider.Month) provider.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.Fetch(ctx, months)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return res
}

// fetchErr runs a fetch that must fail, and checks what every failure must
// satisfy: a *provider.Error without the API key.
func fetchErr(t *testing.T, ctx context.Context, p *ibm.Provider, months ...provider.Month) *provider.Error {
	t.Helper()
	_, err := p.Fetch(ctx, months)
	if err == nil {
		t.Fatal("Fetch succeeded, want an error")
	}
	var perr *provider.Error
	if !errors.As(err, &perr) {
		t.Fatalf("Fetch error %T (%v) is not a *provider.Error", err, err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("error leaks the API key: %v", err)
	}
	return perr
}

func rec(account, service, location string, m provider.Month, grams, joules float64, known provider.Quantity) provider.Record {
	return provider.Record{
		Provider: "ibm", Account: account, Service: service, Location: location,
		Scope: provider.ScopeUnspecified, Month: m,
		EmissionsGrams: grams, EnergyJoules: joules, Known: known,
	}
}

const both = provider.Emissions | provider.Energy

func TestAggregatesResourceGroups(t *testing.T) {
	ds := ibmfake.Dataset{Rows: []ibmfake.Row{
		{AccountID: acct, Service: "Cloud Object Storage", Location: "Washington DC", ResourceGroupID: "rg1", Month: jan, CarbonEmission: 1500.5, EnergyConsumption: 100.25},
		{AccountID: acct, Service: "Cloud Object Storage", Location: "Washington DC", ResourceGroupID: "rg2", Month: jan, CarbonEmission: 250.25, EnergyConsumption: 50.5},
		{AccountID: acct, Service: "Cloud Object Storage", Location: "Dallas", ResourceGroupID: "rg1", Month: jan, CarbonEmission: 10, EnergyConsumption: 1},
		{AccountID: acct, Service: "Kubernetes Service", Location: "Washington DC", ResourceGroupID: "rg1", Month: jan, CarbonEmission: 7, EnergyConsumption: 2},
		{AccountID: acct, Service: "Cloud Object Storage", Location: "Washington DC", ResourceGroupID: "rg1", Month: feb, CarbonEmission: 3, EnergyConsumption: 4},
		{AccountID: acct, Service: "Cloud Object Storage", Location: "Washington DC", ResourceGroupID: "rg1", Month: mar, CarbonEmission: 99, EnergyConsumption: 99},
	}}
	e := newEnv(t, ds, nil)
	p := e.provider(t, func(o *ibm.Options) { o.AccountName = "my-account" })
	res := fetch(t, p, jan, feb)

	want := []provider.Record{
		rec(acct, "Cloud Object Storage", "dallas", jan, 10, 3600, both),
		rec(acct, "Cloud Object Storage", "washington-dc", jan, 1750.75, 150.75*3600, both),
		rec(acct, "Kubernetes Service", "washington-dc", jan, 7, 7200, both),
		rec(acct, "Cloud Object Storage", "washington-dc", feb, 3, 14400, both),
	}
	if !reflect.DeepEqual(res.Records, want) {
		t.Errorf("records:\n got %+v\nwant %+v", res.Records, want)
	}
	wantAccounts := []provider.Account{{Provider: "ibm", ID: acct, Name: "my-account"}}
	if !reflect.DeepEqual(res.Accounts, wantAccounts) {
		t.Errorf("accounts = %+v, want %+v", res.Accounts, wantAccounts)
	}
	if got := e.fake.Requests(ibmfake.CarbonPath); got != 1 {
		t.Errorf("carbon requests = %d, want 1 (one range, one page)", got)
	}
	if p.Name() != "ibm" {
		t.Errorf("Name = %q", p.Name())
	}
	if s := p.Schedule(); s.PublishDelay != 16*24*time.Hour || s.SettleDelay != 30*24*time.Hour {
		t.Errorf("Schedule = %+v", s)
	}
}

// pagingDataset has n rows in one month, carbon i+1 and energy 2(i+1).
func pagingDataset(n int) ibmfake.Dataset {
	var ds ibmfake.Dataset
	for i := range n {
		ds.Rows = append(ds.Rows, ibmfake.Row{
			AccountID: acct, Service: fmt.Sprintf("svc-%03d", i), Location: "Dallas", ResourceGroupID: "rg",
			Month: jan, CarbonEmission: float64(i + 1), EnergyConsumption: float64(2 * (i + 1)),
		})
	}
	return ds
}

func TestPaging(t *testing.T) {
	tests := []struct {
		rows, wantPages int
	}{
		{0, 1},
		{1, 1},
		{100, 1},
		{101, 2},
		{250, 3},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.rows), func(t *testing.T) {
			ds := pagingDataset(tt.rows)
			e := newEnv(t, ds, nil)
			res := fetch(t, e.provider(t, nil), jan)
			if got := e.fake.Requests(ibmfake.CarbonPath); got != tt.wantPages {
				t.Errorf("pages = %d, want %d", got, tt.wantPages)
			}
			if len(res.Records) != tt.rows {
				t.Fatalf("records = %d, want %d", len(res.Records), tt.rows)
			}
			var grams, joules float64
			for _, r := range res.Records {
				grams += r.EmissionsGrams
				joules += r.EnergyJoules
			}
			c, en := ds.Total(jan)
			if grams != c*ibm.GramsPerCarbonEmission || joules != en*ibm.JoulesPerEnergyConsumption {
				t.Errorf("totals = %v g, %v J; want %v g, %v J", grams, joules, c, en*3600)
			}
		})
	}
}

// TestDemoEnterprise reads the demo enterprise end to end: paging over
// several hundred rows, per-month totals, and the account _info data.
func TestDemoEnterprise(t *testing.T) {
	now := time.Date(2025, time.June, 20, 12, 0, 0, 0, time.UTC)
	ds := ibmfake.Demo(now)
	byName := map[string]ibmfake.Entity{}
	for _, en := range ds.Entities {
		byName[en.Name] = en
	}
	last := ibmfake.LatestPublished(now)
	months := []provider.Month{last - 1, last}

	t.Run("enterprise", func(t *testing.T) {
		e := newEnv(t, ds, nil)
		p := e.provider(t, func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID; o.AccountName = "ignored" })
		res := fetch(t, p, months...)
		checkTotals(t, ds, res, months, nil)
		// 2 months of > 100 rows each, plus the accounts query.
		if got := e.fake.Requests(ibmfake.CarbonPath); got < 4 {
			t.Errorf("carbon requests = %d, want paging (>= 4)", got)
		}
		want := []provider.Account{}
		for _, name := range []string{"prod-payments", "prod-web", "data-platform", "staging", "sandbox"} {
			a := byName[name]
			pt := "account_group"
			if a.ParentID == ds.EnterpriseID {
				pt = "enterprise"
			}
			want = append(want, provider.Account{Provider: "ibm", ID: a.ID, Name: name, ParentType: pt, ParentID: a.ParentID, ParentName: a.ParentName})
		}
		slices.SortFunc(want, func(a, b provider.Account) int { return strings.Compare(a.ID, b.ID) })
		if !reflect.DeepEqual(res.Accounts, want) {
			t.Errorf("accounts:\n got %+v\nwant %+v", res.Accounts, want)
		}
		if byName["data-platform"].ParentID != ds.EnterpriseID || byName["sandbox"].ParentName != "Non-Production" {
			t.Errorf("demo hierarchy changed; update this test")
		}
		checkAccountsCoverRecords(t, res)
	})

	t.Run("account group", func(t *testing.T) {
		e := newEnv(t, ds, nil)
		group := byName["Production"]
		p := e.provider(t, func(o *ibm.Options) { o.EnterpriseGroupID = group.ID })
		res := fetch(t, p, months...)
		inGroup := map[string]bool{byName["prod-payments"].ID: true, byName["prod-web"].ID: true}
		checkTotals(t, ds, res, months, inGroup)
		if len(res.Accounts) != 2 {
			t.Fatalf("accounts = %+v, want the 2 production accounts", res.Accounts)
		}
		for _, a := range res.Accounts {
			if !inGroup[a.ID] || a.Name == "" || a.ParentType != "account_group" || a.ParentID != group.ID || a.ParentName != "Production" {
				t.Errorf("account %+v", a)
			}
		}
		checkAccountsCoverRecords(t, res)
	})

	t.Run("enterprise account", func(t *testing.T) {
		e := newEnv(t, ds, nil)
		sandbox := byName["sandbox"]
		p := e.provider(t, func(o *ibm.Options) { o.EnterpriseAccountID = sandbox.ID })
		res := fetch(t, p, months...)
		checkTotals(t, ds, res, months, map[string]bool{sandbox.ID: true})
		// Names come from the entity fields of the data rows; no
		// extra query.
		want := []provider.Account{{Provider: "ibm", ID: sandbox.ID, Name: "sandbox", ParentID: sandbox.ParentID, ParentName: "Non-Production"}}
		if !reflect.DeepEqual(res.Accounts, want) {
			t.Errorf("accounts = %+v, want %+v", res.Accounts, want)
		}
		if got := e.fake.Requests(ibmfake.CarbonPath); got != 1 {
			t.Errorf("carbon requests = %d, want 1", got)
		}
	})
}

// checkTotals compares per-month sums of res with the dataset's rows of the
// given accounts (all when nil).
func checkTotals(t *testing.T, ds ibmfake.Dataset, res provider.Result, months []provider.Month, accounts map[string]bool) {
	t.Helper()
	for _, m := range months {
		var wantC, wantE float64
		for _, r := range ds.Rows {
			if r.Month == m && (accounts == nil || accounts[r.AccountID]) {
				wantC += r.CarbonEmission
				wantE += r.EnergyConsumption
			}
		}
		var gotG, gotJ float64
		for _, r := range res.Records {
			if r.Month == m {
				gotG += r.EmissionsGrams
				gotJ += r.EnergyJoules
				if r.Known != both || r.Scope != provider.ScopeUnspecified || r.Provider != "ibm" {
					t.Errorf("record %+v", r)
				}
			}
		}
		if wantC == 0 || !near(gotG, wantC) || !near(gotJ, wantE*3600) {
			t.Errorf("%s: got %v g %v J, want %v g %v J", m, gotG, gotJ, wantC, wantE*3600)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

func checkAccountsCoverRecords(t *testing.T, res provider.Result) {
	t.Helper()
	have := map[string]bool{}
	for _, a := range res.Accounts {
		have[a.ID] = true
	}
	for _, r := range res.Records {
		if !have[r.Account] {
			t.Errorf("record account %q has no Account entry", r.Account)
		}
	}
}

func TestMonthSelection(t *testing.T) {
	var ds ibmfake.Dataset
	for m := jan; m < jan+6; m++ {
		ds.Rows = append(ds.Rows, ibmfake.Row{AccountID: acct, Service: "Code Engine", Location: "Tokyo", ResourceGroupID: "rg", Month: m, CarbonEmission: float64(m - jan + 1), EnergyConsumption: 1})
	}
	var mu sync.Mutex
	var queries []url.Values
	e := newEnv(t, ds, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == ibmfake.CarbonPath {
				mu.Lock()
				queries = append(queries, r.URL.Query())
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	res := fetch(t, e.provider(t, nil), jan+4, jan+1, jan+2, jan+1)
	var got []provider.Month
	for _, r := range res.Records {
		got = append(got, r.Month)
	}
	if want := []provider.Month{jan + 1, jan + 2, jan + 4}; !slices.Equal(got, want) {
		t.Errorf("months = %v, want %v", got, want)
	}
	wantQ := [][]string{{"gte:2024-02", "lte:2024-03"}, {"gte:2024-05", "lte:2024-05"}}
	if len(queries) != len(wantQ) {
		t.Fatalf("queries = %v, want one per contiguous run", queries)
	}
	for i, q := range queries {
		if !slices.Equal(q["month"], wantQ[i]) || q.Get("group_by") != "none" || q.Get("limit") != "100" || q.Get("offset") != "0" {
			t.Errorf("query %d = %v", i, q)
		}
	}

	if res := fetch(t, e.provider(t, nil)); len(res.Records) != 0 || len(res.Accounts) != 0 {
		t.Errorf("no months: %+v", res)
	}
}

// docServer serves IBM's documented example payloads verbatim: file for the
// data query, accounts for the group_by=enterprise_account query. Requests
// for a later page get an empty last page, since the examples' next links
// point past them.
func docServer(t *testing.T, file, accounts string) (*env, *[]url.Values) {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	data := read(file)
	var acc []byte
	if accounts != "" {
		acc = read(accounts)
	}
	var mu sync.Mutex
	var queries []url.Values
	e := newEnv(t, ibmfake.Dataset{}, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != ibmfake.CarbonPath {
				fake.ServeHTTP(w, r)
				return
			}
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "+jwtMarker) {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			q := r.URL.Query()
			mu.Lock()
			queries = append(queries, q)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if q.Get("offset") != "0" {
				fmt.Fprintf(w, `{"carbon_emissions":[],"offset":%s,"limit":%s,"total_count":2}`, q.Get("offset"), q.Get("limit"))
				return
			}
			body := data
			if q.Get("group_by") == "enterprise_account" {
				body = acc
			}
			_, _ = w.Write(body)
		})
	})
	return e, &queries
}

func TestDocumentedExamples(t *testing.T) {
	const x = "x2x261x8x5x84xxxx49x4891xx077xx9" // IBM's placeholder id
	jan23, feb23 := provider.NewMonth(2023, time.January), provider.NewMonth(2023, time.February)
	unknownRecs := func(account string, c1, c2 float64) []provider.Record {
		return []provider.Record{
			rec(account, ibm.Unknown, ibm.Unknown, jan23, c1, 5000*3600, both),
			rec(account, ibm.Unknown, ibm.Unknown, feb23, c2, 5000*3600, both),
		}
	}
	enterpriseParent := provider.Account{Provider: "ibm", ID: x, ParentType: "enterprise", ParentID: x, ParentName: "Sales"}
	tests := []struct {
		name, file, accounts string
		opts                 func(*ibm.Options)
		months               []provider.Month
		want                 []provider.Record
		wantAccounts         []provider.Account
		wantReason           provider.Reason
		wantErr              string
	}{
		{
			name: "grouped by month", file: "group_by_month.json",
			opts:         func(o *ibm.Options) { o.AccountName = "sales" },
			want:         unknownRecs(x, 2000, 680),
			wantAccounts: []provider.Account{{Provider: "ibm", ID: x, Name: "sales"}},
		},
		{
			name: "grouped by month, one month requested", file: "group_by_month.json",
			months:       []provider.Month{feb23},
			want:         unknownRecs(x, 2000, 680)[1:],
			wantAccounts: []provider.Account{{Provider: "ibm", ID: x}},
		},
		{
			name: "grouped by location", file: "group_by_location.json",
			want: []provider.Record{
				rec(x, ibm.Unknown, "dallas", jan23, 2000, 5000*3600, both),
				rec(x, ibm.Unknown, "washington-dc", jan23, 2000, 5000*3600, both),
			},
			wantAccounts: []provider.Account{{Provider: "ibm", ID: x}},
		},
		{
			// Rows grouped by service or resource group have no
			// month.value; as a group_by=none answer that is broken.
			name: "grouped by service", file: "group_by_service.json",
			wantReason: provider.ReasonMalformed, wantErr: "row without month.value",
		},
		{
			name: "grouped by resource group", file: "group_by_resource_group.json",
			wantReason: provider.ReasonMalformed, wantErr: "row without month.value",
		},
		{
			name: "enterprise account", file: "enterprise_account_by_month.json",
			opts: func(o *ibm.Options) { o.EnterpriseAccountID = x; o.AccountName = "fallback" },
			want: unknownRecs(x, 2000, 2000),
			wantAccounts: []provider.Account{{Provider: "ibm", ID: x, Name: "Sales-Dallas",
				ParentID: x, ParentName: "Sales-US"}},
		},
		{
			name: "account group", file: "enterprise_group_by_month.json", accounts: "enterprise_by_enterprise_account.json",
			opts:         func(o *ibm.Options) { o.EnterpriseGroupID = x },
			want:         unknownRecs(x, 2000, 2000),
			wantAccounts: []provider.Account{enterpriseParent},
		},
		{
			name: "enterprise", file: "enterprise_by_month.json", accounts: "enterprise_by_enterprise_account.json",
			opts:         func(o *ibm.Options) { o.EnterpriseID = x },
			want:         unknownRecs(x, 2000, 2000),
			wantAccounts: []provider.Account{enterpriseParent},
		},
		{
			// Rows without account_id whose entity is the
			// enterprise go to the placeholder account.
			name: "enterprise grouped by account group", file: "enterprise_by_enterprise_group.json", accounts: "enterprise_by_enterprise_account.json",
			opts: func(o *ibm.Options) { o.EnterpriseID = x },
			want: unknownRecs(provider.AccountPlaceholder, 2000, 2000),
			wantAccounts: []provider.Account{
				{Provider: "ibm", ID: provider.AccountPlaceholder},
				enterpriseParent,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, queries := docServer(t, tt.file, tt.accounts)
			p := e.provider(t, tt.opts)
			months := tt.months
			if months == nil {
				months = []provider.Month{jan23, feb23}
			}
			if tt.wantReason != "" {
				perr := fetchErr(t, context.Background(), p, months...)
				if perr.Reason != tt.wantReason || !strings.Contains(perr.Error(), tt.wantErr) {
					t.Errorf("error = %v (%s), want %s containing %q", perr, perr.Reason, tt.wantReason, tt.wantErr)
				}
				return
			}
			res := fetch(t, p, months...)
			if !reflect.DeepEqual(res.Records, tt.want) {
				t.Errorf("records:\n got %+v\nwant %+v", res.Records, tt.want)
			}
			if !reflect.DeepEqual(res.Accounts, tt.wantAccounts) {
				t.Errorf("accounts:\n got %+v\nwant %+v", res.Accounts, tt.wantAccounts)
			}
			// The examples' next links (offset=20&limit=10, with a
			// mangled month filter) are followed by offset and limit
			// only; our own filter is kept.
			q := *queries
			if len(q) < 2 || q[1].Get("offset") != "20" || q[1].Get("limit") != "10" ||
				!slices.Equal(q[1]["month"], q[0]["month"]) || q[1].Get("group_by") != q[0].Get("group_by") {
				t.Errorf("queries = %v", q)
			}
		})
	}
}

// TestNextLinks checks that paging cannot be turned into a loop or a
// request to another host.
func TestNextLinks(t *testing.T) {
	row := `{"account_id":"` + acct + `","carbon_emission":1,"energy_consumption":1,"service":"s","location":"Dallas","month":{"value":"2024-01"}}`
	tests := []struct {
		name       string
		next       func(offset int) string // "" for none
		wantPages  int
		wantReason provider.Reason
	}{
		{"relative link", func(o int) string {
			if o >= 2 {
				return ""
			}
			return fmt.Sprintf("/v1/carbon_emissions?offset=%d&limit=1", o+1)
		}, 3, ""},
		{"other host is not contacted", func(o int) string {
			if o >= 1 {
				return ""
			}
			return "https://evil.example.com/v1/carbon_emissions?offset=1&limit=100"
		}, 2, ""},
		{"link that does not advance", func(o int) string { return "/v1/carbon_emissions?offset=0&limit=100" }, 1, provider.ReasonMalformed},
		{"link without offset", func(o int) string { return "/v1/carbon_emissions?limit=100" }, 1, provider.ReasonMalformed},
		{"link that goes back", func(o int) string {
			if o == 0 {
				return "/v1/carbon_emissions?offset=5"
			}
			return "/v1/carbon_emissions?offset=1"
		}, 2, provider.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			pages := 0
			e := newEnv(t, ibmfake.Dataset{}, func(fake http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != ibmfake.CarbonPath {
						fake.ServeHTTP(w, r)
						return
					}
					mu.Lock()
					pages++
					mu.Unlock()
					o, _ := strconv.Atoi(r.URL.Query().Get("offset"))
					next := ""
					if n := tt.next(o); n != "" {
						next = `,"next":{"href":"` + n + `"}`
					}
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"carbon_emissions":[%s],"total_count":3%s}`, row, next)
				})
			})
			p := e.provider(t, nil)
			if tt.wantReason == "" {
				res := fetch(t, p, jan)
				if len(res.Records) != 1 || res.Records[0].EmissionsGrams != float64(tt.wantPages) {
					t.Errorf("records = %+v", res.Records)
				}
			} else if perr := fetchErr(t, context.Background(), p, jan); perr.Reason != tt.wantReason {
				t.Errorf("reason = %s (%v), want %s", perr.Reason, perr, tt.wantReason)
			}
			if pages != tt.wantPages {
				t.Errorf("pages = %d, want %d", pages, tt.wantPages)
			}
		})
	}
}

// TestPagePlans checks when pages are fetched in parallel: only when the
// first page predicts the others (offset paging with our limit and a
// plausible total_count). Whatever the server says, rows are visited as
// its next links lead, as a sequential fetch would.
func TestPagePlans(t *testing.T) {
	const rows = 250
	consistent := func(o, l int) string {
		if o+l >= rows {
			return ""
		}
		return fmt.Sprintf("/v1/carbon_emissions?offset=%d&limit=%d", o+l, l)
	}
	tests := []struct {
		name         string
		total        string // total_count, "" for none
		noLimit      bool   // the answer does not echo limit
		next         func(offset, limit int) string
		wantVisited  []int // offsets of the pages whose rows count
		wantRequests int
		// upTo: wantRequests is a bound; requests fetched ahead that were
		// not sent when the walk ended are not sent.
		upTo         bool
		wantParallel bool
	}{
		{name: "consistent", total: "250", next: consistent,
			wantVisited: []int{0, 100, 200}, wantRequests: 3, wantParallel: true},
		{name: "no total_count", next: consistent,
			wantVisited: []int{0, 100, 200}, wantRequests: 3},
		{name: "limit not echoed", total: "250", noLimit: true, next: consistent,
			wantVisited: []int{0, 100, 200}, wantRequests: 3},
		{name: "total_count below the rows", total: "150", next: consistent,
			wantVisited: []int{0, 100, 200}, wantRequests: 3},
		{name: "total_count above the rows", total: "1000", next: consistent,
			wantVisited: []int{0, 100, 200}, wantRequests: 10, upTo: true, wantParallel: true},
		{name: "total_count beyond the page bound", total: "1000000000000", next: consistent,
			wantVisited: []int{0, 100, 200}, wantRequests: 3},
		{name: "first link skips a page", total: "250", next: func(o, l int) string {
			if o == 0 {
				return "/v1/carbon_emissions?offset=200&limit=100"
			}
			return consistent(o, l)
		}, wantVisited: []int{0, 200}, wantRequests: 2},
		{name: "later link strays", total: "250", next: func(o, l int) string {
			if o == 100 {
				return "/v1/carbon_emissions?offset=150&limit=100"
			}
			return consistent(o, l)
		}, wantVisited: []int{0, 100, 150}, wantRequests: 4, wantParallel: true},
	}
	quietSDKLog(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			requests, inFlight, maxInFlight := 0, 0, 0
			e := newEnv(t, ibmfake.Dataset{}, func(fake http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != ibmfake.CarbonPath {
						fake.ServeHTTP(w, r)
						return
					}
					mu.Lock()
					requests++
					inFlight++
					maxInFlight = max(maxInFlight, inFlight)
					mu.Unlock()
					defer func() {
						mu.Lock()
						inFlight--
						mu.Unlock()
					}()
					o, _ := strconv.Atoi(r.URL.Query().Get("offset"))
					l, _ := strconv.Atoi(r.URL.Query().Get("limit"))
					if o > 0 {
						// Hold later pages so that parallel ones overlap.
						time.Sleep(20 * time.Millisecond)
					}
					var b strings.Builder
					b.WriteString(`{"carbon_emissions":[`)
					for i := o; i < min(o+l, rows); i++ {
						if i > o {
							b.WriteString(",")
						}
						fmt.Fprintf(&b, `{"account_id":%q,"carbon_emission":%d,"energy_consumption":1,"service":"svc-%03d","location":"Dallas","month":{"value":"2024-01"}}`, acct, i+1, i)
					}
					fmt.Fprintf(&b, `],"offset":%d`, o)
					if !tt.noLimit {
						fmt.Fprintf(&b, `,"limit":%d`, l)
					}
					if tt.total != "" {
						b.WriteString(`,"total_count":` + tt.total)
					}
					if n := tt.next(o, l); n != "" {
						b.WriteString(`,"next":{"href":"` + n + `"}`)
					}
					b.WriteString("}")
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, b.String())
				})
			})
			res := fetch(t, e.provider(t, nil), jan)

			var wantGrams float64
			distinct := map[int]bool{}
			for _, o := range tt.wantVisited {
				for i := o; i < min(o+100, rows); i++ {
					wantGrams += float64(i + 1)
					distinct[i] = true
				}
			}
			var grams float64
			for _, r := range res.Records {
				grams += r.EmissionsGrams
			}
			if len(res.Records) != len(distinct) || grams != wantGrams {
				t.Errorf("%d records, %v g; want %d, %v g", len(res.Records), grams, len(distinct), wantGrams)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tt.upTo && (requests < len(tt.wantVisited) || requests > tt.wantRequests):
				t.Errorf("requests = %d, want %d to %d", requests, len(tt.wantVisited), tt.wantRequests)
			case !tt.upTo && requests != tt.wantRequests:
				t.Errorf("requests = %d, want %d", requests, tt.wantRequests)
			}
			if parallel := maxInFlight > 1; parallel != tt.wantParallel {
				t.Errorf("%d requests in flight at once; want parallel %v", maxInFlight, tt.wantParallel)
			}
		})
	}
}

// TestPageFailure checks that a page failing while others are in flight
// fails the fetch at once with its own error, not with the cancellation
// of the others.
func TestPageFailure(t *testing.T) {
	e := newEnv(t, pagingDataset(1000), func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch offset := r.URL.Query().Get("offset"); {
			case r.URL.Path != ibmfake.CarbonPath || offset == "0":
			case offset == "500":
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, readFile(t, "error_403.json"))
				return
			default:
				// Other pages answer only long after the test's patience.
				select {
				case <-time.After(time.Minute):
				case <-r.Context().Done():
					return
				}
			}
			fake.ServeHTTP(w, r)
		})
	})
	start := time.Now()
	perr := fetchErr(t, context.Background(), e.provider(t, nil), jan)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("fetch failed after %v, want at once", d)
	}
	if perr.Reason != provider.ReasonPermission || !strings.Contains(perr.Error(), "offset=500: 403 Forbidden") {
		t.Errorf("error = %v (%s), want the 403 of offset 500", perr, perr.Reason)
	}
}

func TestTokenRefreshOn401(t *testing.T) {
	e := newEnv(t, pagingDataset(3), nil)
	p := e.provider(t, nil)
	fetch(t, p, jan)
	fetch(t, p, jan)
	if iam, data := e.fake.Requests(ibmfake.TokenPath), e.fake.Requests(ibmfake.CarbonPath); iam != 1 || data != 2 {
		t.Fatalf("token reuse: iam=%d data=%d, want 1 and 2", iam, data)
	}

	// The cached token is revoked: one 401, one new token, success.
	e.fake.ExpireTokens()
	res := fetch(t, p, jan)
	if len(res.Records) != 3 {
		t.Errorf("records = %d", len(res.Records))
	}
	if iam, data := e.fake.Requests(ibmfake.TokenPath), e.fake.Requests(ibmfake.CarbonPath); iam != 2 || data != 4 {
		t.Errorf("after revocation: iam=%d data=%d, want 2 and 4", iam, data)
	}

	// A 401 that persists with the new token is an auth failure, after
	// exactly one refresh.
	e.fake.Inject(ibmfake.CarbonPath, ibmfake.Fault{Status: 401, Body: readFile(t, "error_401.json"), Times: 5})
	perr := fetchErr(t, context.Background(), p, jan)
	if perr.Reason != provider.ReasonAuth || !strings.Contains(perr.Error(), "401 Unauthorized: Token not specified.") {
		t.Errorf("persistent 401: %v (%s)", perr, perr.Reason)
	}
	if iam, data := e.fake.Requests(ibmfake.TokenPath), e.fake.Requests(ibmfake.CarbonPath); iam != 3 || data != 6 {
		t.Errorf("persistent 401: iam=%d data=%d, want 3 and 6", iam, data)
	}
}

func TestShortLivedTokens(t *testing.T) {
	e := newEnv(t, pagingDataset(250), nil)
	// Tokens within go-sdk-core's 10s expiry window are never reused.
	e.fake.SetTokenTTL(5 * time.Second)
	fetch(t, e.provider(t, nil), jan)
	if iam := e.fake.Requests(ibmfake.TokenPath); iam != 3 {
		t.Errorf("iam requests = %d, want one per page (3)", iam)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFailures(t *testing.T) {
	retryAt := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		faults     map[string]ibmfake.Fault
		opts       func(*ibm.Options)
		wantReason provider.Reason
		wantMsg    []string
		wantAfter  [2]time.Duration // inclusive range
		wantData   int              // carbon_emissions attempts
		wantIAM    int
		// key replaces canary as the API key: go-sdk-core's debug
		// log, which TestMain enables, dumps response bodies, so a
		// key the server echoes shows up there by design.
		key string
	}{
		{
			name:       "403",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 403, Body: readFile(t, "error_403.json")}},
			wantReason: provider.ReasonPermission,
			wantMsg: []string{"ibm: GET /v1/carbon_emissions?group_by=none&offset=0: 403 Forbidden: " +
				"An authenticated access token without proper access to carbon calculator was provided. " +
				"(needs the Viewer role on Billing, or Usage report viewer on the enterprise)"},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "400",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 400, Body: `{"status":"400","error":"Bad Request","message":"Invalid group_by."}`}},
			wantReason: provider.ReasonBadRequest, wantMsg: []string{"400 Bad Request: Invalid group_by."},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "404 without a body",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 404}},
			wantReason: provider.ReasonNotFound, wantMsg: []string{"404 Not Found"},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "500 after retries",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 500, Body: `{"message":"Carbon calculator is currently unavailable."}`, Times: 10}},
			opts:       func(o *ibm.Options) { o.MaxRetries = 2 },
			wantReason: provider.ReasonServer, wantMsg: []string{"500 Internal Server Error: Carbon calculator is currently unavailable."},
			wantData: 3, wantIAM: 1,
		},
		{
			name:       "500 with retries disabled",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 502, Body: "<html>bad gateway</html>", Header: http.Header{"Content-Type": {"text/html"}}}},
			opts:       func(o *ibm.Options) { o.MaxRetries = -1 },
			wantReason: provider.ReasonServer, wantMsg: []string{"502 Bad Gateway"},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "429 asking for longer than we wait",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 429, Header: http.Header{"Retry-After": {"120"}}, Times: 10}},
			wantReason: provider.ReasonThrottled, wantMsg: []string{"429 Too Many Requests", "retry after 2m0s"},
			wantAfter: [2]time.Duration{120 * time.Second, 120 * time.Second},
			wantData:  1, wantIAM: 1,
		},
		{
			name:       "429 with an HTTP-date Retry-After",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 429, Header: http.Header{"Retry-After": {retryAt}}, Times: 10}},
			wantReason: provider.ReasonThrottled,
			wantAfter:  [2]time.Duration{time.Minute, 2 * time.Minute},
			wantData:   1, wantIAM: 1,
		},
		{
			name:       "429 without Retry-After, retried",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 429, Times: 10}},
			wantReason: provider.ReasonThrottled,
			wantData:   4, wantIAM: 1,
		},
		{
			name:       "429 with Retry-After 0, retried",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 429, Header: http.Header{"Retry-After": {"0"}}, Times: 10}},
			opts:       func(o *ibm.Options) { o.MaxRetries = 1 },
			wantReason: provider.ReasonThrottled,
			wantData:   2, wantIAM: 1,
		},
		{
			name:       "truncated JSON",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 200, Body: `{"carbon_emissions":[{"account_id":"ab`}},
			wantReason: provider.ReasonMalformed, wantMsg: []string{"malformed response"},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "not JSON",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 200, Body: `<html>login</html>`, Header: http.Header{"Content-Type": {"text/html"}}}},
			wantReason: provider.ReasonMalformed,
			wantData:   1, wantIAM: 1,
		},
		{
			name:       "empty 200",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 200}},
			wantReason: provider.ReasonMalformed,
			wantData:   1, wantIAM: 1,
		},
		{
			name:       "JSON without carbon_emissions",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 200, Body: `{"hello":"world"}`}},
			wantReason: provider.ReasonMalformed, wantMsg: []string{"no carbon_emissions array"},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "bad month in a row",
			faults:     map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 200, Body: `{"carbon_emissions":[{"carbon_emission":1,"month":{"value":"2024-13"}}]}`}},
			wantReason: provider.ReasonMalformed, wantMsg: []string{`invalid month "2024-13"`},
			wantData: 1, wantIAM: 1,
		},
		{
			name:       "wrong API key",
			opts:       func(o *ibm.Options) { o.APIKey = canary + "-wrong" },
			wantReason: provider.ReasonAuth,
			wantMsg:    []string{"ibm: POST /identity/token: 400 Bad Request: Provided API key could not be found. [BXNIM0415E]"},
			wantData:   0, wantIAM: 1,
		},
		{
			name:       "IAM throttled",
			faults:     map[string]ibmfake.Fault{ibmfake.TokenPath: {Status: 429, Header: http.Header{"Retry-After": {"60"}}, Body: `{"errorCode":"BXNIM0436E","errorMessage":"Too many requests."}`}},
			wantReason: provider.ReasonThrottled, wantMsg: []string{"Too many requests."},
			wantAfter: [2]time.Duration{time.Minute, time.Minute},
			wantData:  0, wantIAM: 1,
		},
		{
			name:       "IAM down",
			faults:     map[string]ibmfake.Fault{ibmfake.TokenPath: {Status: 503, Body: "down"}},
			wantReason: provider.ReasonServer, wantMsg: []string{"503 Service Unavailable"},
			wantData: 0, wantIAM: 1,
		},
		{
			// Not the key's fault: IAM's answer is broken.
			name:       "IAM answers 200 without a token",
			faults:     map[string]ibmfake.Fault{ibmfake.TokenPath: {Status: 200, Body: `{}`}},
			wantReason: provider.ReasonMalformed, wantMsg: []string{"without an access token"},
			wantData: 0, wantIAM: 1,
		},
		{
			name:       "IAM answer truncated",
			faults:     map[string]ibmfake.Fault{ibmfake.TokenPath: ibmfake.Truncated(`{"access_token":"eyJ`)},
			wantReason: provider.ReasonMalformed,
			wantData:   0, wantIAM: 1,
		},
		{
			name: "server echoes the API key",
			faults: map[string]ibmfake.Fault{ibmfake.CarbonPath: {Status: 403,
				Body: `{"status":"403","error":"Forbidden","message":"key ` + echoedKey + ` lacks access"}`}},
			wantReason: provider.ReasonPermission, wantMsg: []string{"key <secret> lacks access"},
			wantData: 1, wantIAM: 1, key: echoedKey,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := cmp.Or(tt.key, canary)
			e := newEnvKey(t, pagingDataset(3), key, nil)
			for path, f := range tt.faults {
				e.fake.Inject(path, f)
			}
			p := e.provider(t, func(o *ibm.Options) {
				o.APIKey = key
				if tt.opts != nil {
					tt.opts(o)
				}
			})
			perr := fetchErr(t, context.Background(), p, jan)
			if strings.Contains(perr.Error(), key) {
				t.Errorf("error leaks the API key: %v", perr)
			}
			if perr.Reason != tt.wantReason {
				t.Errorf("reason = %s, want %s (%v)", perr.Reason, tt.wantReason, perr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(perr.Error(), m) {
					t.Errorf("error %q does not contain %q", perr.Error(), m)
				}
			}
			if perr.RetryAfter < tt.wantAfter[0] || perr.RetryAfter > tt.wantAfter[1] {
				t.Errorf("RetryAfter = %v, want %v..%v", perr.RetryAfter, tt.wantAfter[0], tt.wantAfter[1])
			}
			if got := e.fake.Requests(ibmfake.CarbonPath); got != tt.wantData {
				t.Errorf("carbon attempts = %d, want %d", got, tt.wantData)
			}
			if got := e.fake.Requests(ibmfake.TokenPath); got != tt.wantIAM {
				t.Errorf("IAM attempts = %d, want %d", got, tt.wantIAM)
			}
		})
	}
}

// TestRetryAfterPausesEveryPage checks that a Retry-After answered to one
// of the pages in flight holds back every later request of the source,
// not just the retry of that page, and that a Retry-After longer than
// MaxRetryInterval still fails the fetch at once.
func TestRetryAfterPausesEveryPage(t *testing.T) {
	const concurrency = 4
	tests := []struct {
		name       string
		retryAfter string
		maxRetry   time.Duration
		wantReason provider.Reason // "" for success
		wantPause  time.Duration
	}{
		{"pause honoured by every worker", "1", 5 * time.Second, "", time.Second},
		{"pause longer than MaxRetryInterval", "120", time.Second, provider.ReasonThrottled, 0},
	}
	quietSDKLog(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu          sync.Mutex
				arrivals    []time.Time
				inFlight    int
				throttled   bool
				throttledAt time.Time
			)
			e := newEnv(t, pagingDataset(800), func(fake http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != ibmfake.CarbonPath {
						fake.ServeHTTP(w, r)
						return
					}
					offset := r.URL.Query().Get("offset")
					mu.Lock()
					arrivals = append(arrivals, time.Now())
					inFlight++
					throttle := offset == "200" && !throttled
					throttled = throttled || throttle
					mu.Unlock()
					defer func() {
						mu.Lock()
						inFlight--
						mu.Unlock()
					}()
					if throttle {
						// Answer once every worker has a page in flight, so
						// that the others are mid-request when the pause
						// begins and would go on at once without it.
						for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
							mu.Lock()
							n := inFlight
							mu.Unlock()
							if n >= concurrency {
								break
							}
						}
						mu.Lock()
						throttledAt = time.Now()
						mu.Unlock()
						w.Header().Set("Retry-After", tt.retryAfter)
						w.WriteHeader(http.StatusTooManyRequests)
						return
					}
					if offset != "0" {
						// Keep the other pages in flight past the 429.
						select {
						case <-time.After(100 * time.Millisecond):
						case <-r.Context().Done():
							return
						}
					}
					fake.ServeHTTP(w, r)
				})
			})
			p := e.provider(t, func(o *ibm.Options) { o.PageConcurrency = concurrency; o.MaxRetryInterval = tt.maxRetry })

			if tt.wantReason != "" {
				start := time.Now()
				perr := fetchErr(t, context.Background(), p, jan)
				if d := time.Since(start); perr.Reason != tt.wantReason || perr.RetryAfter != 120*time.Second || d > 5*time.Second {
					t.Errorf("error %v (%s, retry after %v) after %v; want %s with the server's Retry-After, at once",
						perr, perr.Reason, perr.RetryAfter, d, tt.wantReason)
				}
				// A fetch within the pause sends nothing: it fails at
				// once with what is left of the delay, so that the
				// caller's backoff waits rather than a refresh that could
				// only time out, and IBM is never asked sooner.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				before := e.fake.Requests(ibmfake.CarbonPath)
				again := fetchErr(t, ctx, p, jan)
				if again.Reason != provider.ReasonThrottled || again.RetryAfter < 100*time.Second || again.RetryAfter > 120*time.Second {
					t.Errorf("next fetch: %v (%s, retry after %v), want throttled for the rest of the pause", again, again.Reason, again.RetryAfter)
				}
				if n := e.fake.Requests(ibmfake.CarbonPath) - before; n != 0 {
					t.Errorf("next fetch sent %d requests within the pause", n)
				}
				return
			}

			res := fetch(t, p, jan)
			checkTotals(t, pagingDataset(800), res, []provider.Month{jan}, nil)
			mu.Lock()
			defer mu.Unlock()
			if got := len(arrivals); got != 8+1 {
				t.Errorf("carbon requests = %d, want 8 pages and 1 retry", got)
			}
			after := 0
			for _, a := range arrivals {
				if !a.After(throttledAt) {
					continue
				}
				after++
				if d := a.Sub(throttledAt); d < tt.wantPause {
					t.Errorf("a request arrived %v after the 429, within its Retry-After of %v", d, tt.wantPause)
				}
			}
			// The retried page and the 3 pages not yet asked for.
			if after != 4 {
				t.Errorf("%d requests after the 429, want 4", after)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	type obs struct {
		endpoint string
		code     int
	}
	var mu sync.Mutex
	var got []obs
	e := newEnv(t, pagingDataset(3), nil)
	e.fake.Inject(ibmfake.CarbonPath, ibmfake.Fault{Status: 500, Times: 2})
	p := e.provider(t, func(o *ibm.Options) {
		o.Observe = func(endpoint string, code int) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, obs{endpoint, code})
		}
	})
	fetch(t, p, jan)
	e.fake.ExpireTokens()
	fetch(t, p, jan)
	want := []obs{
		{"iam_token", 200}, {"carbon_emissions", 500}, {"carbon_emissions", 500}, {"carbon_emissions", 200},
		{"carbon_emissions", 401}, {"iam_token", 200}, {"carbon_emissions", 200},
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("observed %v\nwant     %v", got, want)
	}
}

// hang blocks requests to path until the client gives up or the test
// ends.
func hang(t *testing.T, path string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == path {
				// Only once the body is read does the server watch
				// the connection and cancel r.Context() on hang-up.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestContext(t *testing.T) {
	tests := []struct {
		name       string
		hangPath   string
		cancel     bool
		wantReason provider.Reason
		wantIs     error
	}{
		{"data request times out", ibmfake.CarbonPath, false, provider.ReasonTimeout, context.DeadlineExceeded},
		{"token request times out", ibmfake.TokenPath, false, provider.ReasonTimeout, context.DeadlineExceeded},
		{"canceled", ibmfake.CarbonPath, true, provider.ReasonCanceled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, pagingDataset(3), hang(t, tt.hangPath))
			p := e.provider(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if tt.cancel {
				go func() { time.Sleep(50 * time.Millisecond); cancel() }()
			}
			start := time.Now()
			perr := fetchErr(t, ctx, p, jan)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("fetch returned after %v, long after the deadline", d)
			}
			if perr.Reason != tt.wantReason || !errors.Is(perr, tt.wantIs) {
				t.Errorf("error = %v (%s), want %s wrapping %v", perr, perr.Reason, tt.wantReason, tt.wantIs)
			}
		})
	}
}

func TestNetworkFailure(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there any more
	p, err := ibm.New(ibm.Options{APIKey: canary, APIURL: url, IAMURL: url, MaxRetries: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	perr := fetchErr(t, context.Background(), p, jan)
	if perr.Reason != provider.ReasonNetwork {
		t.Errorf("reason = %s (%v), want %s", perr.Reason, perr, provider.ReasonNetwork)
	}
}

func TestConcurrentFetches(t *testing.T) {
	e := newEnv(t, pagingDataset(120), nil)
	p := e.provider(t, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if i == 2 {
				e.fake.ExpireTokens()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := p.Fetch(ctx, []provider.Month{jan})
			if err != nil {
				t.Errorf("Fetch: %v", err)
			} else if len(res.Records) != 120 {
				t.Errorf("records = %d", len(res.Records))
			}
		})
	}
	wg.Wait()
}

func TestNewValidation(t *testing.T) {
	id := strings.Repeat("a1", 16)
	tests := []struct {
		name    string
		opts    ibm.Options
		wantErr string
	}{
		{"defaults", ibm.Options{APIKey: canary}, ""},
		{"all options", ibm.Options{APIKey: canary, APIURL: "https://private.api.carbon-calculator.cloud.ibm.com/", IAMURL: "https://private.iam.cloud.ibm.com/identity/token",
			EnterpriseID: id, AccountName: "x", MaxRetries: -1, MaxRetryInterval: time.Second}, ""},
		{"empty key", ibm.Options{}, "API key is empty"},
		{"blank key", ibm.Options{APIKey: "  "}, "API key is empty"},
		{"quoted key", ibm.Options{APIKey: `"` + canary + `"`}, "leading or trailing"},
		{"key with newline", ibm.Options{APIKey: canary + "\n"}, "leading or trailing"},
		{"relative API URL", ibm.Options{APIKey: canary, APIURL: "api.example.com"}, "absolute http(s) URL"},
		{"API URL with query", ibm.Options{APIKey: canary, APIURL: "https://api.example.com/?x=1"}, "must not carry"},
		{"bad IAM URL", ibm.Options{APIKey: canary, IAMURL: "ftp://iam.example.com"}, "absolute http(s) URL"},
		{"two scopes", ibm.Options{APIKey: canary, EnterpriseID: id, EnterpriseAccountID: id}, "at most one"},
		{"bad enterprise id", ibm.Options{APIKey: canary, EnterpriseGroupID: "Sales-US"}, `enterprise group ID "Sales-US"`},
		{"negative interval", ibm.Options{APIKey: canary, MaxRetryInterval: -time.Second}, "negative"},
		{"pages one by one", ibm.Options{APIKey: canary, PageConcurrency: 1}, ""},
		{"most pages at once", ibm.Options{APIKey: canary, PageConcurrency: ibm.MaxPageConcurrency}, ""},
		{"negative page concurrency", ibm.Options{APIKey: canary, PageConcurrency: -1}, "page concurrency -1: want 1 to 32"},
		{"page concurrency too high", ibm.Options{APIKey: canary, PageConcurrency: 33}, "page concurrency 33: want 1 to 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ibm.New(tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New error = %v, want %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), canary):
				t.Errorf("New error leaks the key: %v", err)
			}
		})
	}
}

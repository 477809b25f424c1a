package gcp_test

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

func readCosts(t *testing.T, p *gcp.Provider, months ...provider.Month) []provider.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	recs, err := p.ReadCosts(ctx, months)
	if err != nil {
		t.Fatalf("ReadCosts: %v", err)
	}
	return recs
}

// labelKey is a record's series labels.
type labelKey struct{ account, service, location string }

func keyOf(r provider.Record) labelKey { return labelKey{r.Account, r.Service, r.Location} }

// TestCostsAreTheBillingQuery: the cost feed runs the billing query alone,
// with the partition window of each contiguous run of months, the
// configured bytes limit and location, and its own job label; its
// records are Fetch's cost records, and nothing else.
func TestCostsAreTheBillingQuery(t *testing.T) {
	e := newEnv(t, handDataset())
	p := e.provider(t, nil)
	got := readCosts(t, p, mar24, jan24, feb24, mar24, dec22)

	lag := gcp.BillingExportLag
	want := []gcpfake.QueryInfo{
		{Kind: "billing", Months: []provider.Month{dec22}, PartitionStart: dec22.Start(), PartitionEnd: dec22.End().Add(lag)},
		{Kind: "billing", Months: []provider.Month{jan24, feb24, mar24}, PartitionStart: jan24.Start(), PartitionEnd: mar24.End().Add(lag)},
	}
	if queries := feedQueries(t, e, "cost"); !reflect.DeepEqual(queries, want) {
		t.Errorf("queries:\n got %+v\nwant %+v", queries, want)
	}
	if n := e.fake.Queries(gcpfake.KindCarbon); n != 0 {
		t.Errorf("%d carbon queries for cost", n)
	}

	// The same records as Fetch's cost records of the same months.
	res := fetch(t, newEnv(t, handDataset()).provider(t, nil), dec22, jan24, feb24, mar24)
	var fetched []provider.Record
	for _, r := range res.Records {
		if r.Has(provider.Cost) {
			fetched = append(fetched, r)
		}
	}
	if !reflect.DeepEqual(got, fetched) {
		t.Errorf("cost feed records:\n got %+v\nwant Fetch's %+v", got, fetched)
	}
	for _, r := range got {
		if r.Known != provider.Cost || r.Provider != "gcp" || r.Scope != provider.ScopeNone || r.EmissionsGrams != 0 {
			t.Errorf("not a cost record: %+v", r)
		}
	}
	// January: the row exported after the window does not count, the
	// one without a project is the placeholder's, zones are their region.
	wantJan := map[labelKey]float64{
		{"web", "Compute Engine", "us-central1"}: float64(-400_000)/1e6/0.8 + float64(1_000_001-1-200_000+3_333_333+666_667)/1e6/0.9,
		{"none", "Cloud Support", "global"}:      float64(29_000_000) / 1e6 / 0.9,
	}
	gotJan := map[labelKey]float64{}
	for _, r := range got {
		if r.Month == jan24 {
			gotJan[keyOf(r)] += r.CostUSD
		}
	}
	if !reflect.DeepEqual(gotJan, wantJan) {
		t.Errorf("January's cost %v, want %v", gotJan, wantJan)
	}
}

// TestCostLabelsMatchCarbon: every cost series of the demo whose project,
// service and location have emissions carries exactly the carbon
// series' labels (zones fold into their region, multi-regions are lower
// case), so that emissions per dollar are computed per series; and the
// months past the carbon export have cost.
func TestCostLabelsMatchCarbon(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := gcpfake.Sample(now, 3)
	ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
	p := newEnv(t, ds).provider(t, nil)
	last := gcpfake.LatestPublished(now)
	res := fetch(t, p, last)
	carbon := map[labelKey]bool{}
	for _, r := range res.Records {
		if r.Has(provider.Emissions) {
			carbon[keyOf(r)] = true
		}
	}
	costs := readCosts(t, p, last, last+1)
	matched, total := 0, 0
	for _, r := range costs {
		if r.Month != last {
			continue
		}
		total++
		if carbon[keyOf(r)] {
			matched++
		}
	}
	// The support fee is the one cost series without emissions.
	if total == 0 || matched != total-1 {
		t.Errorf("%d of %d cost series of %s carry carbon labels; want all but the support fee", matched, total, last)
	}
	for k := range carbon {
		if k.account == provider.AccountPlaceholder {
			continue // the deleted project's footprint has no billing
		}
		if !slices.ContainsFunc(costs, func(r provider.Record) bool { return r.Month == last && keyOf(r) == k }) {
			t.Errorf("carbon series %v has no cost series", k)
		}
	}
	if !slices.ContainsFunc(costs, func(r provider.Record) bool { return r.Month == last+1 && r.CostUSD > 0 }) {
		t.Errorf("no cost for %s, the month being published next", last+1)
	}
}

// TestCostsMonthToDate: asked for the current month, the feed reads the
// rows exported so far, in the partitions of that month and the lag
// after it, in one query with the month before.
func TestCostsMonthToDate(t *testing.T) {
	now := time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
	ds := gcpfake.Sample(now, 2)
	ds.Project, ds.CarbonTable, ds.BillingTable = project, carbonTable, billingTable
	e := newEnv(t, ds)
	cur := provider.MonthOf(now)
	got := map[provider.Month]float64{}
	for _, r := range readCosts(t, e.provider(t, nil), cur-1, cur) {
		got[r.Month] += r.CostUSD
	}
	want := map[provider.Month]float64{cur - 1: ds.Served(cur - 1)[provider.Cost], cur: ds.Served(cur)[provider.Cost]}
	for m, usd := range want {
		if usd <= 0 || !near(got[m], usd) {
			t.Errorf("%s: cost %v, want the fake's %v", m, got[m], usd)
		}
	}
	q := e.fake.QueryLog()
	if len(q) != 1 || !q[0].PartitionStart.Equal((cur - 1).Start()) || !q[0].PartitionEnd.Equal(cur.End().Add(gcp.BillingExportLag)) {
		t.Errorf("queries %+v, want one over %s..%s", q, cur-1, cur)
	}
}

func near(a, b float64) bool {
	return a == b || (a-b)/max(abs(a), abs(b)) < 1e-9 && (b-a)/max(abs(a), abs(b)) < 1e-9
}

func abs(f float64) float64 { return max(f, -f) }

// billingFeeds are the readers of the billing export besides Fetch, for
// the tests they share: the endpoint prefix of their requests, the kind
// of their queries in the fake and the bytes the fake bills per row.
var billingFeeds = []struct {
	name, prefix, kind string
	rowBytes           float64
	read               func(context.Context, *gcp.Provider, []provider.Month) error
}{
	{"cost feed", "costs.", gcpfake.KindBilling, 140, func(ctx context.Context, p *gcp.Provider, ms []provider.Month) error {
		_, err := p.ReadCosts(ctx, ms)
		return err
	}},
	{"tag feed", "tags.", gcpfake.KindTags, 140 + 60, func(ctx context.Context, p *gcp.Provider, ms []provider.Month) error {
		_, err := p.ReadTagCosts(ctx, ms, "team")
		return err
	}},
}

// TestFeedEndpointsObserved: each feed's requests are observed under
// their own endpoint names, and the bytes its queries process counted.
func TestFeedEndpointsObserved(t *testing.T) {
	for _, f := range billingFeeds {
		t.Run(f.name, func(t *testing.T) {
			e := newEnv(t, handTagged())
			ob := &observed{}
			p := e.provider(t, ob.observe)
			e.fake.SetIncompletePolls(1)
			if err := f.read(t.Context(), p, []provider.Month{jan24}); err != nil {
				t.Fatal(err)
			}
			fetch(t, p, jan24)
			ob.mu.Lock()
			defer ob.mu.Unlock()
			calls, processed := ob.calls, ob.processed
			want := map[string]int{
				f.prefix + "jobs.query OK":           1,
				f.prefix + "jobs.getQueryResults OK": 2,
				f.prefix + "jobs.get OK":             1,
				"jobs.query OK":                      2,
				"jobs.getQueryResults OK":            4,
				"jobs.get OK":                        2,
			}
			if !reflect.DeepEqual(calls, want) {
				t.Errorf("observed %v, want %v", calls, want)
			}
			// The feed's query and the billing query over January's six
			// rows, the carbon query over five (the fake's model).
			if want := 6*f.rowBytes + 6*140 + 5*160; processed != want {
				t.Errorf("bytes processed = %v, want %v", processed, want)
			}
		})
	}
}

// TestFeedFailures: each feed's failures are classified as Fetch's, say
// whose they are, and a denied permission names the roles on the billing
// export's dataset.
func TestFeedFailures(t *testing.T) {
	denied := gcpfake.ErrorBody(http.StatusForbidden, "accessDenied", "Access Denied: Table test-project:billing_export.x: User does not have permission to query table")
	for _, f := range billingFeeds {
		for _, tt := range []struct {
			name   string
			fault  gcpfake.Fault
			edit   func(*gcp.Options)
			reason provider.Reason
			want   []string
		}{
			{"permission", gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: f.kind, Status: http.StatusForbidden, Body: denied},
				nil, provider.ReasonPermission,
				[]string{f.name + ": billing query", "roles/bigquery.jobUser on project test-project", "roles/bigquery.dataViewer on dataset test-project.billing_export"}},
			{"bytes billed", gcpfake.Fault{}, func(o *gcp.Options) { o.MaxBytesBilled = 1 << 20 }, provider.ReasonBadRequest,
				[]string{f.name, "max_bytes_billed (1048576 bytes)"}},
			{"missing table", gcpfake.Fault{}, func(o *gcp.Options) { o.BillingTable = billingTable + "_x" }, provider.ReasonNotFound,
				[]string{f.name, "Billing export"}},
			{"no billing table", gcpfake.Fault{}, func(o *gcp.Options) { o.BillingTable = "" }, provider.ReasonBadRequest,
				[]string{"billing_table"}},
		} {
			t.Run(f.name+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, handTagged())
				if tt.fault.Status != 0 {
					e.fake.Inject(tt.fault)
				}
				err := f.read(t.Context(), e.provider(t, tt.edit), []provider.Month{jan24})
				if got := provider.ReasonOf(err); got != tt.reason {
					t.Fatalf("reason %s (%v), want %s", got, err, tt.reason)
				}
				for _, s := range tt.want {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			})
		}
	}
}

// TestProvisionalConfig: a source that asks for provisional months needs
// the billing export.
func TestProvisionalConfig(t *testing.T) {
	c := &checker{has: map[string]bool{}}
	cfg := gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon", Provisional: true}
	cfg.Check(c)
	if want := []string{`provisional: gcp entry "gcp" asks for provisional months, which are estimated from the cost in the billing export: set billing_table`}; !reflect.DeepEqual(c.errors, want) {
		t.Errorf("errors %q, want %q", c.errors, want)
	}
	// TestFeedsByConfig checks which feeds each entry's provider is.
}

// TestDemoCostFeed: the demo source asks for provisional months, and its
// cost feed reads every month of the demo's billing export, those after
// its carbon export included.
func TestDemoCostFeed(t *testing.T) {
	now := time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)
	d := startDemo(t, now)
	if d.Entries[0]["provisional"] != true {
		t.Fatalf("the demo entry does not ask for provisional months: %v", d.Entries[0])
	}
	ds := gcpfake.Demo(now)
	p := newProvider(t, gcp.Options{Project: ds.Project, CarbonTable: ds.CarbonTable, BillingTable: ds.BillingTable,
		Location: ds.Location, Endpoint: d.Entries[0]["endpoint"].(string), WithoutAuthentication: true}, nil)
	last, cur := gcpfake.LatestPublished(now), provider.MonthOf(now)
	got := map[provider.Month]float64{}
	for _, r := range readCosts(t, p, provider.Range(last-7, cur)...) {
		got[r.Month] += r.CostUSD
	}
	if months, want := slices.Sorted(maps.Keys(got)), provider.Range(last-7, cur); !reflect.DeepEqual(months, want) {
		t.Errorf("months with cost %v, want %v", months, want)
	}
	for m, usd := range got {
		if want := ds.Served(m)[provider.Cost]; !near(usd, want) {
			t.Errorf("%s: %v, want %v", m, usd, want)
		}
	}
}

// feedQueries returns the queries e's fake was sent, by partition window,
// without their job ids, bounds and location, having checked those: the
// default max_bytes_billed, the dataset's location and the job label of
// the feed, label.
func feedQueries(t *testing.T, e *env, label string) []gcpfake.QueryInfo {
	t.Helper()
	var queries []gcpfake.QueryInfo
	for _, q := range e.fake.QueryLog() {
		if q.MaxBytesBilled != gcp.DefaultMaxBytesBilled || q.Location != "US" || !maps.Equal(q.Labels, map[string]string{"cloudcarbon_query": label}) {
			t.Errorf("%s query: max bytes %d, location %q, labels %v", q.Kind, q.MaxBytesBilled, q.Location, q.Labels)
		}
		q.JobID, q.MaxBytesBilled, q.Location, q.Labels = "", 0, "", nil
		queries = append(queries, q)
	}
	slices.SortFunc(queries, func(a, b gcpfake.QueryInfo) int { return a.PartitionStart.Compare(b.PartitionStart) })
	return queries
}

// startDemo starts the demo's fake as of now, stopped with the test.
func startDemo(t *testing.T, now time.Time) *provider.Demo {
	t.Helper()
	d, err := gcp.Plugin().Demo(t.Context(), now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

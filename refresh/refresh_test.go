package refresh

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/scrapetest"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

var testSchedule = provider.Schedule{PublishDelay: 16 * 24 * time.Hour, SettleDelay: 30 * 24 * time.Hour}

func month(s string) provider.Month {
	m, err := provider.ParseMonth(s)
	if err != nil {
		panic(err)
	}
	return m
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func testOptions(now time.Time) Options {
	return Options{
		Interval: 6 * time.Hour, IdleInterval: 24 * time.Hour, Timeout: time.Minute,
		BackoffMin: time.Minute, BackoffMax: time.Hour, MaxConcurrency: 1, History: 3,
		Now: func() time.Time { return now },
	}
}

func TestPlan(t *testing.T) {
	withData := func(fetched string) *store.MonthData {
		md := store.NewMonthData([]provider.Record{{Provider: "ibm", EmissionsGrams: 1, Known: provider.Emissions}})
		md.FetchedAt = date(fetched)
		return md
	}
	empty := func(fetched string) *store.MonthData { return &store.MonthData{FetchedAt: date(fetched)} }
	tests := []struct {
		name      string
		now       string
		months    map[string]*store.MonthData
		wantFetch []string
		wantNext  string
	}{
		{
			name: "first run fetches every month in the window that is due",
			now:  "2026-11-22T10:00:00Z",
			// Window: history 3 + 1 months ending with October.
			wantFetch: []string{"2026-07", "2026-08", "2026-09", "2026-10"},
		},
		{
			name: "final months are never fetched again",
			now:  "2026-11-22T10:00:00Z",
			months: map[string]*store.MonthData{
				"2026-07": withData("2026-10-01T00:00:00Z"), // final at 2026-09-16
				"2026-08": withData("2026-10-20T00:00:00Z"), // final at 2026-10-16
				"2026-09": withData("2026-11-22T09:00:00Z"), // open, fetched an hour ago
				"2026-10": withData("2026-11-22T09:00:00Z"),
			},
			wantNext: "2026-11-23T09:00:00Z", // idle interval after the open months' fetch
		},
		{
			name: "a due month without data is polled at the fast interval",
			now:  "2026-11-15T10:00:00Z",
			months: map[string]*store.MonthData{
				"2026-07": withData("2026-10-01T00:00:00Z"),
				"2026-08": withData("2026-10-20T00:00:00Z"),
				"2026-09": withData("2026-11-15T00:00:00Z"),
				"2026-10": empty("2026-11-15T09:00:00Z"), // expected 2026-11-17
			},
			wantNext: "2026-11-15T15:00:00Z",
		},
		{
			name: "an open month is fetched once more when it becomes final",
			now:  "2026-12-17T01:00:00Z",
			months: map[string]*store.MonthData{
				"2026-08": withData("2026-10-20T00:00:00Z"),
				"2026-09": withData("2026-12-16T20:00:00Z"), // final since 2026-11-16
				"2026-10": withData("2026-12-16T20:00:00Z"), // final at 2026-12-17T00:00
				"2026-11": empty("2026-12-16T20:00:00Z"),    // due 2026-12-17, polled every 6h
			},
			wantFetch: []string{"2026-10"},
		},
		{
			name: "an unpublished month is planned for shortly before its publication",
			now:  "2026-11-13T10:00:00Z",
			months: map[string]*store.MonthData{
				"2026-07": withData("2026-10-01T00:00:00Z"),
				"2026-08": withData("2026-10-20T00:00:00Z"),
				"2026-09": withData("2026-11-13T09:00:00Z"), // open, next poll 2026-11-14T09:00
			},
			// October is expected on 2026-11-17 and polled from 3 days before.
			wantNext: "2026-11-14T00:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &store.SourceData{Months: map[provider.Month]*store.MonthData{}}
			for m, md := range tt.months {
				d.Months[month(m)] = md
			}
			o := testOptions(date(tt.now))
			fetch, next := plan(date(tt.now), testSchedule, d, &o)
			var got []string
			for _, m := range fetch {
				got = append(got, m.String())
			}
			if !slices.Equal(got, tt.wantFetch) {
				t.Errorf("fetch = %v, want %v", got, tt.wantFetch)
			}
			if tt.wantNext != "" && !next.Equal(date(tt.wantNext)) {
				t.Errorf("next = %v, want %v", next, tt.wantNext)
			}
		})
	}
}

// fakeProvider stands in for a cloud client in refresh tests; provider
// packages test their clients over HTTP.
type fakeProvider struct {
	mu       sync.Mutex
	calls    [][]provider.Month
	err      error
	records  func(m provider.Month) []provider.Record
	revision string
	denied   []provider.Denial
	closed   int
}

func (f *fakeProvider) Name() string                { return "ibm" }
func (f *fakeProvider) Schedule() provider.Schedule { return testSchedule }
func (f *fakeProvider) Fetch(_ context.Context, months []provider.Month) (provider.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, slices.Clone(months))
	if f.err != nil {
		return provider.Result{}, f.err
	}
	res := provider.Result{Denied: f.denied}
	for _, m := range months {
		res.Records = append(res.Records, f.records(m)...)
		if f.revision != "" {
			if res.Revisions == nil {
				res.Revisions = map[provider.Month]string{}
			}
			res.Revisions[m] = f.revision
		}
	}
	res.Accounts = []provider.Account{{Provider: "ibm", ID: "acc1", Name: "prod", ParentType: "enterprise", ParentID: "ent1", ParentName: "Example Corp"}}
	return res, nil
}

func (f *fakeProvider) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func (f *fakeProvider) closeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *fakeProvider) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// sampleRecords yields two services in two locations; values grow by month
// so that every month is distinguishable in the history.
func sampleRecords(m provider.Month) []provider.Record {
	base := float64(m.Month()) * 1000
	return []provider.Record{
		{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: base + 1, EnergyJoules: 3600 * (base + 1), Known: provider.Emissions | provider.Energy},
		{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: 10, EnergyJoules: 36000, Known: provider.Emissions | provider.Energy},
		{Provider: "ibm", Account: "acc1", Service: "Kubernetes Service", Location: "frankfurt", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: base + 2, Known: provider.Emissions},
	}
}

// newTestStore wires a store, its exposition and the refresh metrics as
// the exporter does. What it returns gathers what /metrics serves.
func newTestStore(t testing.TB, history int, state *store.StateFile) (*store.Store, *Metrics, scrapetest.Gatherer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, []provider.Plugin{{Name: "ibm", Counters: []provider.Counter{{Name: "bigquery_bytes_processed_total", Help: "Bytes processed by BigQuery queries, as reported by the jobs; BigQuery bills by this figure."}}}})
	var s *store.Store
	expo := exposition.New(history, func() *store.Snapshot { return s.Snapshot() }, discardLogger())
	s = store.New(store.Options{State: state, Registerer: reg, Logger: discardLogger(), OnData: expo.Refresh})
	reg.MustRegister(expo.Freshness())
	return s, m, scrapetest.Gatherer{H: expo.Handler(reg, exposition.HandlerOpts{})}
}

func configure(s *store.Store, srcs ...Source) {
	keys := make([]store.Key, 0, len(srcs))
	for _, src := range srcs {
		keys = append(keys, store.Key{Name: src.Name, Provider: src.Provider.Name(), Identity: src.Identity})
	}
	s.Configure(keys, nil)
}

func newTestRefresher(s *store.Store, m *Metrics, p provider.Provider, o *Options) *refresher {
	src := Source{Name: "ibm", Identity: "ibm|test", Provider: p}
	configure(s, src)
	return &refresher{src: src, store: s, metrics: m, opts: o, sem: make(chan struct{}, 1),
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestRefreshKeepsLastGoodDataOnFailure(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	fp := &fakeProvider{records: sampleRecords}
	s, m, reg := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)

	r.refresh(t.Context())
	before := s.Snapshot()
	if got := testutil.ToFloat64(m.refreshes.WithLabelValues("ibm", "ibm")); got != 1 {
		t.Fatalf("refreshes = %v, want 1", got)
	}
	want := `
# HELP cloudcarbon_emissions_grams Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods). Latest month the provider has published.
# TYPE cloudcarbon_emissions_grams gauge
cloudcarbon_emissions_grams{account="acc1",location="dallas",provider="ibm",scope="unspecified",service="Code Engine"} 10011
cloudcarbon_emissions_grams{account="acc1",location="frankfurt",provider="ibm",scope="unspecified",service="Kubernetes Service"} 10002
# HELP cloudcarbon_refresh_success Whether the latest refresh of the source succeeded (1) or failed (0).
# TYPE cloudcarbon_refresh_success gauge
cloudcarbon_refresh_success{provider="ibm",source="ibm"} 1
`
	if err := testutil.GatherAndCompare(reg, stringsReader(want), "cloudcarbon_emissions_grams", "cloudcarbon_refresh_success"); err != nil {
		t.Fatal(err)
	}

	// The open months fail to refresh a day later.
	now = now.Add(25 * time.Hour)
	fp.err = &provider.Error{Reason: provider.ReasonThrottled, RetryAfter: 2 * time.Hour, Err: errors.New("429 Too Many Requests")}
	r.refresh(t.Context())
	after := s.Snapshot()
	if got, want := after.Sources["ibm"].Months[month("2026-10")], before.Sources["ibm"].Months[month("2026-10")]; got != want {
		t.Errorf("month data replaced after a failed refresh")
	}
	want = `
# HELP cloudcarbon_emissions_grams Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods). Latest month the provider has published.
# TYPE cloudcarbon_emissions_grams gauge
cloudcarbon_emissions_grams{account="acc1",location="dallas",provider="ibm",scope="unspecified",service="Code Engine"} 10011
cloudcarbon_emissions_grams{account="acc1",location="frankfurt",provider="ibm",scope="unspecified",service="Kubernetes Service"} 10002
# HELP cloudcarbon_refresh_success Whether the latest refresh of the source succeeded (1) or failed (0).
# TYPE cloudcarbon_refresh_success gauge
cloudcarbon_refresh_success{provider="ibm",source="ibm"} 0
`
	if err := testutil.GatherAndCompare(reg, stringsReader(want), "cloudcarbon_emissions_grams", "cloudcarbon_refresh_success"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.refreshErrors.WithLabelValues("ibm", "ibm", "throttled")); got != 1 {
		t.Errorf("throttled errors = %v, want 1", got)
	}
	d := after.Sources["ibm"]
	if !d.LastSuccess.Equal(date("2026-11-22T10:00:00Z")) {
		t.Errorf("last success = %v, want the first refresh", d.LastSuccess)
	}
	// Retry-After (2h) outweighs the first backoff step (1m).
	if got := d.NextRefresh.Sub(now); got != 2*time.Hour {
		t.Errorf("next refresh in %v, want the Retry-After of 2h", got)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	o := testOptions(time.Time{})
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		if got := o.backoff(i+1, 0); got != want {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, want)
		}
	}
	if got := o.backoff(1, 3*time.Hour); got != 3*time.Hour {
		t.Errorf("backoff with Retry-After = %v, want 3h", got)
	}
	o.Jitter = 0.1
	for range 100 {
		if got := o.backoff(3, 0); got < 216*time.Second || got > 264*time.Second {
			t.Fatalf("jittered backoff %v outside 4m ±10%%", got)
		}
	}
}

func TestSecondRefreshFetchesOnlyOpenMonths(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	fp := &fakeProvider{records: sampleRecords}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	now = now.Add(25 * time.Hour)
	o.Now = func() time.Time { return now }
	r.refresh(t.Context())
	if len(fp.calls) != 2 {
		t.Fatalf("provider calls = %d, want 2", len(fp.calls))
	}
	// July to September were final when first fetched; October may still
	// change until 2026-12-17.
	if got, want := fp.calls[1], []provider.Month{month("2026-10")}; !slices.Equal(got, want) {
		t.Errorf("second refresh fetched %v, want %v", got, want)
	}
}

func TestRestatementIsCounted(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	fp := &fakeProvider{records: sampleRecords, revision: "7"}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	now = now.Add(25 * time.Hour)
	r.refresh(t.Context()) // same revision: no restatement
	fp.revision = "8"
	now = now.Add(25 * time.Hour)
	r.refresh(t.Context()) // October again, under model version 8
	if got := testutil.ToFloat64(m.restatements.WithLabelValues("ibm", "ibm")); got != 1 {
		t.Errorf("restatements = %v, want 1", got)
	}
	if got := s.Snapshot().Sources["ibm"].Months[month("2026-10")].Revision; got != "8" {
		t.Errorf("stored revision %q, want 8", got)
	}
}

// TestRestatementRefetchesStoredMonthsOnce: when the provider serves an
// open month under a new model version, every other stored month is
// fetched again once, its values replaced, the restatement counted once;
// the next refresh without a change fetches no closed month.
func TestRestatementRefetchesStoredMonthsOnce(t *testing.T) {
	now := date("2027-01-10T10:00:00Z")
	o := testOptions(now)
	o.History = 6
	o.Now = func() time.Time { return now }
	scale := 1.0
	fp := &fakeProvider{revision: "v1", records: func(m provider.Month) []provider.Record {
		recs := sampleRecords(m)
		for i := range recs {
			recs[i].EmissionsGrams *= scale
		}
		return recs
	}}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	stored := len(s.Snapshot().Sources["ibm"].Months)
	closed := func() (n int) {
		for mo, md := range s.Snapshot().Sources["ibm"].Months {
			if !md.FetchedAt.Before(testSchedule.FinalAt(mo)) {
				n++
			}
		}
		return n
	}
	if closed() == 0 {
		t.Fatal("the test needs months that are final")
	}

	// The open months come back under v2 with other values.
	fp.revision, scale = "v2", 2
	now = now.Add(25 * time.Hour)
	r.refresh(t.Context())
	calls := fp.callCount()
	if got := testutil.ToFloat64(m.restatements.WithLabelValues("ibm", "ibm")); got != 1 {
		t.Fatalf("restatements = %v after the model change, want 1", got)
	}
	// The next refresh fetches every other stored month, once.
	now = now.Add(time.Minute)
	r.refresh(t.Context())
	if fp.callCount() != calls+1 {
		t.Fatalf("calls = %d, want one refetch", fp.callCount()-calls)
	}
	fp.mu.Lock()
	refetched := len(fp.calls[len(fp.calls)-1])
	fp.mu.Unlock()
	d := s.Snapshot().Sources["ibm"]
	if refetched+len(fp.calls[calls-1]) < stored {
		t.Errorf("refetched %d months, want the %d stored ones not fetched under v2", refetched, stored-len(fp.calls[calls-1]))
	}
	for mo, md := range d.Months {
		if md.Revision != "v2" {
			t.Errorf("month %s still under %q", mo, md.Revision)
		}
		if want := sampleRecords(mo)[0].EmissionsGrams * 2; md.Record(0).EmissionsGrams != want {
			t.Errorf("month %s: %v, want the restated %v", mo, md.Record(0).EmissionsGrams, want)
		}
	}
	if got := testutil.ToFloat64(m.restatements.WithLabelValues("ibm", "ibm")); got != 1 {
		t.Errorf("restatements = %v after the refetch, want still 1", got)
	}
	if d.Refetching {
		t.Error("still refetching after every month came back")
	}

	// No change: nothing closed is fetched again.
	now = now.Add(25 * time.Hour)
	r.refresh(t.Context())
	fp.mu.Lock()
	last := fp.calls[len(fp.calls)-1]
	fp.mu.Unlock()
	for _, mo := range last {
		if md := d.Months[mo]; !md.FetchedAt.Before(testSchedule.FinalAt(mo)) {
			t.Errorf("closed month %s fetched again without a change", mo)
		}
	}
	if got := testutil.ToFloat64(m.restatements.WithLabelValues("ibm", "ibm")); got != 1 {
		t.Errorf("restatements = %v, want 1", got)
	}
}

// TestRestatementsGoToTheLedger: every stored month the provider serves
// again under a new model version leaves its superseded figures, both
// versions and the time in the source's ledger, and the months keep the
// time they were first published.
func TestRestatementsGoToTheLedger(t *testing.T) {
	now := date("2027-01-10T10:00:00Z")
	o := testOptions(now)
	o.History = 6
	o.Now = func() time.Time { return now }
	scale := 1.0
	fp := &fakeProvider{revision: "v1", records: func(m provider.Month) []provider.Record {
		recs := sampleRecords(m)
		for i := range recs {
			recs[i].EmissionsGrams *= scale
		}
		return recs
	}}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	first := now
	before := s.Snapshot().Sources["ibm"]

	fp.revision, scale = "v2", 2
	now = now.Add(25 * time.Hour)
	restated := now
	r.refresh(t.Context())
	now = now.Add(time.Minute)
	r.refresh(t.Context()) // the other stored months, again
	d := s.Snapshot().Sources["ibm"]
	if d.Ledger == nil || len(d.Ledger.Entries) != len(before.Months) {
		t.Fatalf("ledger %+v, want an entry for each of the %d months", d.Ledger, len(before.Months))
	}
	for _, e := range d.Ledger.Entries {
		old := before.Months[e.Month]
		if e.Cause != store.CauseModelVersion || e.OldRevision != "v1" || e.NewRevision != "v2" || e.At.Before(restated) ||
			!slices.Equal(e.Superseded, old.Summary()) || !e.OldFirstSeen.Equal(first) {
			t.Errorf("entry %+v", e)
		}
		if got := d.Months[e.Month].FirstSeen; !got.Equal(first) {
			t.Errorf("%s first seen %v, want %v", e.Month, got, first)
		}
	}
	if before.Ledger != nil {
		t.Error("the ledger of an earlier snapshot changed")
	}
}

func TestRegainedAccessRefetchesStoredMonths(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	fp := &fakeProvider{records: sampleRecords, denied: []provider.Denial{{Provider: "ibm", Account: "acc9", Reason: "no role"}}}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	now = now.Add(25 * time.Hour)
	fp.denied = []provider.Denial{} // the role was granted
	r.refresh(t.Context())
	now = now.Add(time.Minute)
	r.refresh(t.Context())
	if len(fp.calls) != 3 {
		t.Fatalf("calls = %d, want 3", len(fp.calls))
	}
	// The third refresh asks again for the closed months stored before;
	// October came with the refresh that saw the access.
	if got, want := fp.calls[2], []provider.Month{month("2026-07"), month("2026-08"), month("2026-09")}; !slices.Equal(got, want) {
		t.Errorf("after access was granted the refresh fetched %v, want %v", got, want)
	}
}

// TestCostAloneDoesNotPublishAMonth: a billing export holds a month's cost
// before the carbon export holds its emissions. That month must not become
// the latest (the emission families would empty) and must still be polled
// at the fast interval while its emissions are due.
func TestCostAloneDoesNotPublishAMonth(t *testing.T) {
	now := date("2026-11-15T10:00:00Z") // October is due on 2026-11-17, polled from the 14th
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	fp := &fakeProvider{records: func(m provider.Month) []provider.Record {
		cost := provider.Record{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Month: m, CostUSD: 5, Known: provider.Cost}
		if m == month("2026-10") {
			return []provider.Record{cost}
		}
		return append(sampleRecords(m), cost)
	}}
	s, m, reg := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())

	d := s.Snapshot().Sources["ibm"]
	if latest, _ := d.LatestMonth(); latest != month("2026-09") {
		t.Errorf("latest month %s, want 2026-09: cost alone published October", latest)
	}
	if n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams"); err != nil || n != 2 {
		t.Errorf("emission series = %d, %v; want the 2 of September", n, err)
	}
	if got, want := d.NextRefresh, now.Add(o.Interval); !got.Equal(want) {
		t.Errorf("next refresh %v, want %v: October's emissions are due, poll fast", got, want)
	}
}

// TestUnknownAccessKeepsDenials: a fetch that learned nothing about access
// (nil Denied, as a fresh Azure client reports before any month is due)
// neither clears the denied metric nor counts as access regained.
func TestUnknownAccessKeepsDenials(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	denied := []provider.Denial{{Provider: "ibm", Account: "acc9", Reason: "no role"}}
	fp := &fakeProvider{records: sampleRecords, denied: denied}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	now = now.Add(25 * time.Hour)
	fp.denied = nil
	r.refresh(t.Context())
	now = now.Add(time.Minute)
	r.refresh(t.Context())
	if len(fp.calls) != 2 {
		t.Errorf("calls = %d, want 2: unknown access refetched stored months", len(fp.calls))
	}
	if got := s.Snapshot().Sources["ibm"].Denied; !slices.Equal(got, denied) {
		t.Errorf("denied = %+v, want the earlier %+v", got, denied)
	}
}

func TestSpreadIsAFractionOfTheInterval(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Jitter = 0.1 // of the 6h interval: ±36m, however far the planned time
	planned := now.Add(10 * 24 * time.Hour)
	for range 200 {
		got := o.spread(planned, now)
		if d := got.Sub(planned); d < -36*time.Minute || d > 36*time.Minute {
			t.Fatalf("spread moved %v by %v, want at most ±36m", planned, d)
		}
	}
	if got := o.spread(now.Add(time.Minute), now); got.Before(now) {
		t.Errorf("spread planned %v, before now", got)
	}
}

// TestPartialFetchKeepsLastGoodCost: when only a secondary query fails
// (GCP billing), the emissions are stored, the last good cost is kept, the
// failure is counted and the months are asked for again.
func TestPartialFetchKeepsLastGoodCost(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	withCost := func(m provider.Month) []provider.Record {
		return append(sampleRecords(m), provider.Record{Provider: "ibm", Account: "acc1", Service: "Code Engine",
			Location: "dallas", Month: m, CostUSD: 7, Known: provider.Cost})
	}
	fp := &fakeProvider{records: withCost}
	s, m, reg := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())

	now = now.Add(25 * time.Hour)
	p := &partialProvider{fakeProvider: fakeProvider{records: func(m provider.Month) []provider.Record {
		recs := sampleRecords(m)
		for i := range recs {
			recs[i].EmissionsGrams *= 2
		}
		return recs
	}}}
	r.src.Provider = p
	r.refresh(t.Context())

	want := `
# HELP cloudcarbon_billing_cost_usd Billing cost net of credits for the same month as the emissions, in US dollars. Latest month the provider has published.
# TYPE cloudcarbon_billing_cost_usd gauge
cloudcarbon_billing_cost_usd{account="acc1",location="dallas",provider="ibm",service="Code Engine"} 7
# HELP cloudcarbon_emissions_grams Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods). Latest month the provider has published.
# TYPE cloudcarbon_emissions_grams gauge
cloudcarbon_emissions_grams{account="acc1",location="dallas",provider="ibm",scope="unspecified",service="Code Engine"} 20022
cloudcarbon_emissions_grams{account="acc1",location="frankfurt",provider="ibm",scope="unspecified",service="Kubernetes Service"} 20004
# HELP cloudcarbon_refresh_success Whether the latest refresh of the source succeeded (1) or failed (0).
# TYPE cloudcarbon_refresh_success gauge
cloudcarbon_refresh_success{provider="ibm",source="ibm"} 0
`
	if err := testutil.GatherAndCompare(reg, stringsReader(want), "cloudcarbon_billing_cost_usd", "cloudcarbon_emissions_grams", "cloudcarbon_refresh_success"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.refreshErrors.WithLabelValues("ibm", "ibm", "permission")); got != 1 {
		t.Errorf("permission errors = %v, want 1", got)
	}
	if fetch, _ := plan(now, testSchedule, s.Snapshot().Sources["ibm"], &o); !slices.Contains(fetch, month("2026-10")) {
		t.Errorf("after a partial fetch October is not due again: %v", fetch)
	}
}

// partialProvider fetches emissions but fails its secondary query.
type partialProvider struct{ fakeProvider }

func (p *partialProvider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	res, err := p.fakeProvider.Fetch(ctx, months)
	res.Partial = &provider.Error{Reason: provider.ReasonPermission, Err: errors.New("billing: 403")}
	return res, err
}

// TestFailureLogSaysWhetherDataIsServed: "serving the last good data" is
// only true when there is some.
func TestFailureLogSaysWhetherDataIsServed(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	fp := &fakeProvider{records: sampleRecords, err: errors.New("connection refused")}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	var logs logbuf.Buffer
	r.logger = slog.New(slog.NewTextHandler(&logs, nil))

	r.refresh(t.Context())
	if got := logs.String(); !strings.Contains(got, "Refresh failed; no data yet") || strings.Contains(got, "last good data") {
		t.Errorf("first failure logged %q, want no claim of data served", got)
	}

	fp.err = nil
	now = now.Add(time.Hour)
	r.refresh(t.Context())
	fp.err = errors.New("connection refused")
	now = now.Add(25 * time.Hour)
	r.refresh(t.Context())
	if got := logs.String(); !strings.Contains(got, "Refresh failed; serving the last good data") {
		t.Errorf("failure after a success logged %q", got)
	}
}

// TestScheduleOnlyRefreshKeepsGeneration: a refresh with nothing due, or a
// failed one, changes no data and so must not make the exposition render.
func TestScheduleOnlyRefreshKeepsGeneration(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.Now = func() time.Time { return now }
	fp := &fakeProvider{records: sampleRecords}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	first, _ := s.Get("ibm")

	now = now.Add(time.Hour) // nothing due
	r.refresh(t.Context())
	fp.err = errors.New("connection refused")
	now = now.Add(25 * time.Hour) // October due, and failing
	r.refresh(t.Context())
	after, _ := s.Get("ibm")
	if fp.callCount() != 2 {
		t.Fatalf("calls = %d, want 2", fp.callCount())
	}
	if after.Generation != first.Generation {
		t.Errorf("generation moved from %d to %d without a data change", first.Generation, after.Generation)
	}
	if after.LastOK || !after.LastAttempt.Equal(now) {
		t.Errorf("failed attempt not recorded: ok %v, last attempt %v", after.LastOK, after.LastAttempt)
	}
}

// TestManagerClosesReplacedSources: Apply and Stop release the clients
// they drop, once each, after their refresher has stopped.
func TestManagerClosesReplacedSources(t *testing.T) {
	s, m, _ := newTestStore(t, 3, nil)
	mgr := NewManager(s, m, discardLogger())
	o := testOptions(date("2026-11-22T10:00:00Z"))
	first := &fakeProvider{records: sampleRecords}
	mgr.Apply(t.Context(), []Source{{Name: "ibm", Identity: "a", Provider: first}}, o, nil)
	waitFor(t, "a first refresh", func() bool {
		d, _ := s.Get("ibm")
		return d.Attempted
	})

	second := &fakeProvider{records: sampleRecords}
	mgr.Apply(t.Context(), []Source{{Name: "ibm", Identity: "a", Provider: second}}, o, nil)
	if first.closeCount() != 1 || second.closeCount() != 0 {
		t.Errorf("after a reload: first closed %d times, second %d", first.closeCount(), second.closeCount())
	}
	if d, _ := s.Get("ibm"); len(d.Months) == 0 {
		t.Error("a reload with the same identity dropped the data")
	}
	mgr.Stop()
	if first.closeCount() != 1 || second.closeCount() != 1 {
		t.Errorf("after Stop: first closed %d times, second %d", first.closeCount(), second.closeCount())
	}
	calls := first.callCount() + second.callCount()
	time.Sleep(20 * time.Millisecond)
	if got := first.callCount() + second.callCount(); got != calls {
		t.Errorf("providers called after Stop")
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRetentionFetchesOlderMonthsAfterTheWindow: months kept for reports
// beyond the exposed history are fetched by the refreshes after the one
// that fills the history window, never before it, and kept; each refresh
// of them asks for at most as many months as the window holds, the newest
// first, so that none holds more of a provider's answer than the first.
func TestRetentionFetchesOlderMonthsAfterTheWindow(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.History, o.Retention = 3, 8
	fp := &fakeProvider{records: sampleRecords}
	s, m, _ := newTestStore(t, 3, nil)
	r := newTestRefresher(s, m, fp, &o)
	for range 2 {
		r.refresh(t.Context())
		if next := s.Snapshot().Sources["ibm"].NextRefresh; next.After(now) {
			t.Errorf("after %d refreshes the next is at %s, want at once for the older months", len(fp.calls), next)
		}
	}
	r.refresh(t.Context())
	r.refresh(t.Context()) // nothing left to fetch
	fp.mu.Lock()
	calls := slices.Clone(fp.calls)
	fp.mu.Unlock()
	if len(calls) != 3 {
		t.Fatalf("calls = %v, want the window, then the older months in two", calls)
	}
	first, last := window(now, o.History)
	kept, _ := window(now, o.Retention)
	if want := provider.Range(first, last); !slices.Equal(calls[0], want) {
		t.Errorf("first refresh fetched %v, want the history window %v", calls[0], want)
	}
	newer := first - provider.Month(o.History+1)
	if want := provider.Range(newer, first-1); !slices.Equal(calls[1], want) {
		t.Errorf("second refresh fetched %v, want the newest older months %v", calls[1], want)
	}
	if want := provider.Range(kept, newer-1); !slices.Equal(calls[2], want) {
		t.Errorf("third refresh fetched %v, want the oldest months %v", calls[2], want)
	}
	if got := len(s.Snapshot().Sources["ibm"].Months); got != int(last-kept)+1 {
		t.Errorf("%d months stored, want %d", got, int(last-kept)+1)
	}
}

// TestWhatIsNotDataIsLeftOut is the one policy for every cloud: a value
// that is not a finite number, or negative where the quantity cannot be
// (all but cost), is left out of the data, counted by reason and logged,
// and the rest of the answer is served; so is a record of another
// provider. A negative cost (credits) is data.
func TestWhatIsNotDataIsLeftOut(t *testing.T) {
	tests := []struct {
		name       string
		spoil      func(recs []provider.Record) []provider.Record
		wantReason string
		wantGone   provider.Quantity // what the first record no longer carries
		wantDelta  int               // records served, against the sample's
	}{
		{"not finite", func(r []provider.Record) []provider.Record { r[0].EmissionsGrams = math.Inf(1); return r }, "not_finite", provider.Emissions, 0},
		{"NaN energy", func(r []provider.Record) []provider.Record { r[0].EnergyJoules = math.NaN(); return r }, "not_finite", provider.Energy, 0},
		{"negative emissions", func(r []provider.Record) []provider.Record { r[0].EmissionsGrams = -1; return r }, "negative", provider.Emissions, 0},
		{"another provider", func(r []provider.Record) []provider.Record { r[0].Provider = "gcp"; return r }, "wrong_provider", 0, -1},
		{"negative cost is data", func(r []provider.Record) []provider.Record {
			return append(r, provider.Record{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Month: r[0].Month, CostUSD: -3, Known: provider.Cost})
		}, "", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := date("2026-11-22T10:00:00Z")
			o := testOptions(now)
			fp := &fakeProvider{records: func(m provider.Month) []provider.Record { return tt.spoil(sampleRecords(m)) }}
			path := filepath.Join(t.TempDir(), "state.json")
			s, m, _ := newTestStore(t, 3, store.NewStateFile(path))
			r := newTestRefresher(s, m, fp, &o)
			r.refresh(t.Context())
			d := s.Snapshot().Sources["ibm"]
			if !d.LastOK {
				t.Fatal("the refresh failed; the rest of the answer must be served")
			}
			for _, reason := range []string{"not_finite", "negative", "wrong_provider"} {
				want := 0.0
				if reason == tt.wantReason {
					want = float64(len(d.Months))
				}
				if got := testutil.ToFloat64(m.rejected.WithLabelValues("ibm", "ibm", reason)); got != want {
					t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
				}
			}
			for mo, md := range d.Months {
				if want := len(sampleRecords(mo)) + tt.wantDelta; md.Len() != want {
					t.Errorf("%s: %d records, want %d", mo, md.Len(), want)
				}
				for rec := range md.All() {
					for _, qi := range provider.Quantities() {
						if v := *qi.Value(&rec); math.IsNaN(v) || math.IsInf(v, 0) || v < 0 && !qi.MayBeNegative {
							t.Errorf("%s: %s %v served", mo, qi.Name, v)
						}
					}
					if rec.Provider != "ibm" {
						t.Errorf("%s: a record of %s served", mo, rec.Provider)
					}
				}
				if md.Record(0).Known&tt.wantGone != 0 {
					t.Errorf("%s: first record still carries %b", mo, tt.wantGone)
				}
			}
			if err := s.Flush(); err != nil {
				t.Errorf("state file: %v", err)
			}
		})
	}
}

// TestAccountsOfOlderMonthsKeepTheirNames: a refresh of recent months that
// names only the accounts it saw keeps the names of the accounts that
// appear only in older stored months, and drops those no month holds.
func TestAccountsOfOlderMonthsKeepTheirNames(t *testing.T) {
	s, _, _ := newTestStore(t, 3, nil)
	s.Configure([]store.Key{{Name: "ibm", Provider: "ibm", Identity: "i"}}, nil)
	s.Update("ibm", store.Data, func(d *store.SourceData) {
		d.Months[month("2026-08")] = store.NewMonthData([]provider.Record{{Provider: "ibm", Account: "old", Month: month("2026-08")}})
		d.Accounts = []provider.Account{{Provider: "ibm", ID: "old", Name: "Old account"}, {Provider: "ibm", ID: "gone", Name: "Gone"}}
	})
	d := s.Snapshot().Sources["ibm"]
	got := mergeAccounts(d, []provider.Account{{Provider: "ibm", ID: "acc1", Name: "prod"}})
	var names []string
	for _, a := range got {
		names = append(names, a.ID+"="+a.Name)
	}
	if want := []string{"acc1=prod", "old=Old account"}; !slices.Equal(names, want) {
		t.Errorf("accounts %v, want %v", names, want)
	}
}

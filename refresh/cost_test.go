package refresh

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/scrapetest"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// costProvider is a fakeProvider whose source reads cost too: 10 dollars
// per 1,000 grams of its sample emissions, in every month to now.
type costProvider struct {
	*fakeProvider
	mu        sync.Mutex
	costCalls [][]provider.Month
	costErr   error
}

func (c *costProvider) Costs(_ context.Context, months []provider.Month) ([]provider.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.costCalls = append(c.costCalls, slices.Clone(months))
	if c.costErr != nil {
		return nil, c.costErr
	}
	var out []provider.Record
	for _, m := range months {
		for _, r := range sampleRecords(m) {
			out = append(out, provider.Record{Provider: "ibm", Account: r.Account, Service: r.Service, Location: r.Location,
				Month: m, CostUSD: r.EmissionsGrams / 100, Known: provider.Cost})
		}
	}
	return out, nil
}

func (c *costProvider) costCallCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.costCalls)
}

// costEnv is what a test of a source that reads cost works with: a
// clock at 2026-11-22 10:00 that the test moves, options on it, and a
// store with a state file, wired as the exporter wires it.
type costEnv struct {
	now  time.Time
	o    *Options
	path string
	s    *store.Store
	m    *Metrics
	reg  scrapetest.Gatherer
}

func newCostEnv(t *testing.T) *costEnv {
	e := &costEnv{now: date("2026-11-22T10:00:00Z"), path: filepath.Join(t.TempDir(), "state.json")}
	o := testOptions(e.now)
	o.History, o.Retention = 13, 13
	o.Now = func() time.Time { return e.now }
	e.o = &o
	e.s, e.m, e.reg = newTestStore(t, 13, store.NewStateFile(e.path))
	return e
}

// TestProvisionalMonths: a provisional source reads the cost of the
// months after the latest published one (to date) and of recent
// published ones; the exposition serves the estimates, by basis, and the
// backtest; a restart from the state file reads nothing until due; a
// denied cost feed keeps the published data and says so.
func TestProvisionalMonths(t *testing.T) {
	e := newCostEnv(t)
	o, path, s, m, reg := e.o, e.path, e.s, e.m, e.reg
	// October is due on 2026-11-17 (testSchedule); November runs to date.
	fp := &costProvider{fakeProvider: &fakeProvider{records: func(mo provider.Month) []provider.Record {
		if mo >= month("2026-11") {
			return nil
		}
		return sampleRecords(mo)
	}}}
	src := Source{Name: "ibm", Identity: "ibm|test", Provider: fp, Provisional: true}
	configure(s, src)
	r := &refresher{src: src, store: s, metrics: m, opts: o, sem: make(chan struct{}, 1), logger: discardLogger()}
	r.refresh(t.Context())
	d, _ := s.Get("ibm")
	if latest, _ := d.LatestMonth(); latest != month("2026-10") {
		t.Fatalf("latest published month %s", latest)
	}
	if fp.costCallCount() != 1 {
		t.Fatalf("%d cost reads in the first refresh, want 1", fp.costCallCount())
	}
	first, last := costWindow(e.now, testSchedule, month("2026-10"))
	if got := len(d.Costs); got != int(last-first+1) || d.Costs[month("2026-11")] == nil {
		t.Errorf("%d months of cost held, want %s to %s", got, first, last)
	}
	text := string(reg.Body())
	// November: 2,000 g of cost-equivalent at 10 g/$ for each key.
	for _, want := range []string{
		`cloudcarbon_provisional_emissions_grams{account="acc1",basis="location",location="dallas",month="2026-11",months_ahead="1",provider="ibm",scope="unspecified",service="Code Engine"}`,
		`cloudcarbon_provisional_backtest_error_ratio{method="location",provider="ibm",source="ibm"}`,
		`cloudcarbon_cost_refresh_success{provider="ibm",source="ibm"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if strings.Contains(text, `cloudcarbon_provisional_emissions_grams{account="acc1",basis="location",location="dallas",month="2026-10"`) {
		t.Error("a published month is served as provisional")
	}

	// A restart from the state file reads nothing until a month is due.
	s2, m2, _ := newTestStore(t, 13, store.NewStateFile(path))
	fp2 := &costProvider{fakeProvider: &fakeProvider{records: sampleRecords}}
	src2 := Source{Name: "ibm", Identity: "ibm|test", Provider: fp2, Provisional: true}
	keys := []store.Key{{Name: "ibm", Provider: "ibm", Identity: "ibm|test"}}
	s2.Configure(keys, s2.LoadState())
	r2 := &refresher{src: src2, store: s2, metrics: m2, opts: o, sem: make(chan struct{}, 1), logger: discardLogger()}
	if wait := r2.nextWait(); wait <= 0 || fp2.costCallCount() != 0 || fp2.callCount() != 0 {
		t.Errorf("restart: next in %s, %d cost reads, %d fetches; want none due", wait, fp2.costCallCount(), fp2.callCount())
	}

	// A denied cost feed: the published data stays, the denial counts.
	e.now = e.now.Add(7 * time.Hour)
	fp.costErr = &provider.Error{Reason: provider.ReasonPermission, Err: fmt.Errorf("needs the cost permission")}
	r.refresh(t.Context())
	d, _ = s.Get("ibm")
	if !d.LastOK || d.CostOK || len(d.Months) == 0 {
		t.Errorf("after a denied cost read: last ok %v, cost ok %v, %d months", d.LastOK, d.CostOK, len(d.Months))
	}
	if text := string(reg.Body()); !strings.Contains(text, `cloudcarbon_refresh_errors_total{provider="ibm",reason="permission",source="ibm"} 1`) ||
		!strings.Contains(text, `cloudcarbon_cost_refresh_success{provider="ibm",source="ibm"} 0`) {
		t.Errorf("the denied cost read is not reported")
	}
}

// TestRealizedError: when the provider publishes a month that was
// estimated, the estimate served is kept against the published figure.
func TestRealizedError(t *testing.T) {
	now := date("2026-11-10T10:00:00Z") // October not published yet
	o := testOptions(now)
	o.History, o.Retention = 13, 13
	o.Now = func() time.Time { return now }
	s, m, reg := newTestStore(t, 13, nil)
	published := month("2026-09")
	fp := &costProvider{fakeProvider: &fakeProvider{records: func(mo provider.Month) []provider.Record {
		if mo > published {
			return nil
		}
		recs := sampleRecords(mo)
		for i := range recs {
			recs[i].EmissionsGrams *= 1.1 // 10% more than the cost says
		}
		return recs
	}}}
	src := Source{Name: "ibm", Identity: "ibm|test", Provider: fp, Provisional: true}
	configure(s, src)
	r := &refresher{src: src, store: s, metrics: m, opts: &o, sem: make(chan struct{}, 1), logger: discardLogger()}
	r.refresh(t.Context())
	now, published = date("2026-11-18T10:00:00Z"), month("2026-10")
	r.refresh(t.Context())
	d, _ := s.Get("ibm")
	if len(d.Realized) != 1 || d.Realized[0].Month != month("2026-10") {
		t.Fatalf("realized %+v, want October's", d.Realized)
	}
	if text := string(reg.Body()); !strings.Contains(text, `cloudcarbon_provisional_realized_error_ratio{method="location",month="2026-10",provider="ibm",source="ibm"}`) {
		t.Errorf("/metrics has no realized error:\n%s", text)
	}
}

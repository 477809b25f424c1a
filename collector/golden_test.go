package collector

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenStore holds one refresh of sample data plus a second source whose
// refresh failed, so that every family the collector renders appears.
func goldenStore(t *testing.T) (*prometheus.Registry, *Metrics) {
	t.Helper()
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	s, m, reg := newTestStore(t, 3, nil)
	ok := &fakeProvider{revision: "1", denied: []provider.Denial{{Provider: provider.IBM, Account: "acc3", Reason: "MissingPermissions"}}, records: func(mo provider.Month) []provider.Record {
		recs := sampleRecords(mo)
		// A provider with both methods and cost, to cover every family.
		recs = append(recs,
			provider.Record{Provider: provider.IBM, Account: "acc2", Service: "Compute Engine", Location: "us-central1", Scope: provider.Scope2, Month: mo,
				EmissionsGrams: 500, MarketBasedGrams: 120, Known: provider.Emissions | provider.EmissionsMarketBased},
			provider.Record{Provider: provider.IBM, Account: "acc2", Service: "Compute Engine", Location: "us-central1", Month: mo,
				CostUSD: 12.5, Known: provider.Cost})
		return recs
	}}
	failing := &fakeProvider{err: &provider.Error{Reason: provider.ReasonPermission, Err: fmt.Errorf("403")}}
	srcs := []Source{{Name: "ibm-ok", Identity: "a", Provider: ok}, {Name: "ibm-denied", Identity: "b", Provider: failing}}
	s.Configure(srcs, nil)
	m.BytesObserver(provider.IBM, "ibm-ok")(2048)
	for _, src := range srcs {
		m.initSource(src.Provider.Name(), src.Name)
		r := &refresher{src: src, store: s, metrics: m, opts: &o, sem: make(chan struct{}, 1), logger: discardLogger()}
		r.refresh(t.Context())
	}
	return reg, m
}

func TestExpositionGolden(t *testing.T) {
	reg, _ := goldenStore(t)
	rec := newRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, newGetRequest())
	got := rec.Body.Bytes()
	golden := filepath.Join("testdata", "collector.prom")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("exposition differs from %s (go test ./collector -run Golden -update to accept):\n%s", golden, got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// BenchmarkScrape measures a scrape of 100,000 data series from a
// snapshot, end to end through the promhttp handler: gathering, sorting
// and text encoding.
func BenchmarkScrape(b *testing.B) {
	reg, n := benchRegistry(b, 100_000)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true})
	b.ReportMetric(float64(n), "series")
	b.ReportAllocs()
	for b.Loop() {
		rec := newRecorder()
		h.ServeHTTP(rec, newGetRequest())
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkRender measures building a snapshot's metrics: the work done
// once per refresh, never on the scrape path.
func BenchmarkRender(b *testing.B) {
	sources := benchSources(100_000)
	b.ReportAllocs()
	for b.Loop() {
		render(sources, 1)
	}
}

// benchSources returns one month of records that render to `series`
// current series with a history of one month (so each record yields a
// current and a history series: series/2 records).
func benchSources(series int) map[string]*SourceData {
	m := provider.NewMonth(2026, time.October)
	recs := make([]provider.Record, 0, series/2)
	for i := range series / 2 {
		recs = append(recs, provider.Record{
			Provider: provider.GCP, Account: fmt.Sprintf("project-%04d", i/50), Service: fmt.Sprintf("service-%02d", i%50/5),
			Location: fmt.Sprintf("region-%d", i%5), Scope: provider.Scope2, Month: m,
			EmissionsGrams: float64(i), Known: provider.Emissions,
		})
	}
	return map[string]*SourceData{"gcp": {Name: "gcp", Provider: provider.GCP,
		Months: map[provider.Month]*MonthData{m: {Records: recs}}}}
}

func benchRegistry(b *testing.B, series int) (*prometheus.Registry, int) {
	b.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := NewStore(1, nil, m, discardLogger())
	s.mu.Lock()
	s.sources = benchSources(series)
	s.publish()
	s.mu.Unlock()
	reg.MustRegister(NewCollector(s))
	n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams", "cloudcarbon_history_emissions_grams")
	if err != nil {
		b.Fatal(err)
	}
	return reg, n
}

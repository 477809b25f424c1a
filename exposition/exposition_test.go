package exposition

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

func month(s string) provider.Month {
	m, err := provider.ParseMonth(s)
	if err != nil {
		panic(err)
	}
	return m
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// sampleRecords yields two services in two locations; values grow by month
// so that every month is distinguishable in the history.
func sampleRecords(m provider.Month) []provider.Record {
	base := float64(m.Month()) * 1000
	return []provider.Record{
		{Provider: provider.IBM, Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: base + 1, EnergyJoules: 3600 * (base + 1), Known: provider.Emissions | provider.Energy},
		{Provider: provider.IBM, Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: 10, EnergyJoules: 36000, Known: provider.Emissions | provider.Energy},
		{Provider: provider.IBM, Account: "acc1", Service: "Kubernetes Service", Location: "frankfurt", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: base + 2, Known: provider.Emissions},
	}
}

// newTestExposition wires a store and its exposition as the exporter does.
func newTestExposition(t testing.TB, history int) (*store.Store, *Exposition, *prometheus.Registry) {
	t.Helper()
	var s *store.Store
	e := New(history, func() *store.Snapshot { return s.Snapshot() }, discardLogger())
	s = store.New(store.Options{OnData: e.Refresh})
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	return s, e, reg
}

var ibmKey = store.Key{Name: "ibm", Provider: provider.IBM, Identity: "ibm|test"}

func withMonths(last provider.Month, n int) func(d *store.SourceData) {
	return func(d *store.SourceData) {
		for m := last - provider.Month(n) + 1; m <= last; m++ {
			d.Months[m] = &store.MonthData{Records: sampleRecords(m)}
		}
	}
}

// TestScheduleUpdateDoesNotReRender: a refresh attempt that changed no
// data only moves the freshness families, which are built per scrape.
func TestScheduleUpdateDoesNotReRender(t *testing.T) {
	s, e, reg := newTestExposition(t, 3)
	s.Configure([]store.Key{ibmKey}, nil)
	s.Update("ibm", store.Data, withMonths(month("2026-10"), 3))
	rendered := e.rendered.Load()
	if n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams"); err != nil || n != 2 {
		t.Fatalf("emission series = %d, %v; want 2", n, err)
	}

	next := time.Date(2026, time.November, 23, 10, 0, 0, 0, time.UTC)
	s.Update("ibm", store.Schedule, func(d *store.SourceData) {
		d.NextRefresh, d.LastAttempt, d.LastOK, d.LastDuration = next, next.Add(-time.Hour), false, 2*time.Second
	})
	if e.rendered.Load() != rendered {
		t.Error("a schedule update re-rendered the data")
	}
	want := fmt.Sprintf(`
# HELP cloudcarbon_next_refresh_timestamp_seconds When the next refresh of the source is planned, as a Unix timestamp.
# TYPE cloudcarbon_next_refresh_timestamp_seconds gauge
cloudcarbon_next_refresh_timestamp_seconds{provider="ibm",source="ibm"} %d
# HELP cloudcarbon_refresh_duration_seconds Duration of the latest refresh of the source.
# TYPE cloudcarbon_refresh_duration_seconds gauge
cloudcarbon_refresh_duration_seconds{provider="ibm",source="ibm"} 2
`, next.Unix())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cloudcarbon_next_refresh_timestamp_seconds", "cloudcarbon_refresh_duration_seconds"); err != nil {
		t.Errorf("freshness after a schedule update: %v", err)
	}

	s.Update("ibm", store.Data, withMonths(month("2026-11"), 1))
	if e.rendered.Load() == rendered {
		t.Fatal("a data update did not re-render")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cloudcarbon_emissions_grams Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods). Latest month the provider has published.
# TYPE cloudcarbon_emissions_grams gauge
cloudcarbon_emissions_grams{account="acc1",location="dallas",provider="ibm",scope="unspecified",service="Code Engine"} 11011
cloudcarbon_emissions_grams{account="acc1",location="frankfurt",provider="ibm",scope="unspecified",service="Kubernetes Service"} 11002
`), "cloudcarbon_emissions_grams"); err != nil {
		t.Errorf("after a data update: %v", err)
	}

	// Refresh without a change, as when two updates race to call it.
	rendered = e.rendered.Load()
	e.Refresh()
	if e.rendered.Load() != rendered {
		t.Error("Refresh re-rendered unchanged data")
	}
}

// TestRemovedSourceIsReRendered: a reload that drops a source drops its
// data even though no remaining source's generation moved.
func TestRemovedSourceIsReRendered(t *testing.T) {
	s, _, reg := newTestExposition(t, 3)
	other := store.Key{Name: "other", Provider: provider.IBM, Identity: "other"}
	s.Configure([]store.Key{ibmKey, other}, nil)
	s.Update("other", store.Data, withMonths(month("2026-10"), 1))
	if n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams"); err != nil || n != 2 {
		t.Fatalf("emission series = %d, %v; want 2", n, err)
	}
	s.Configure([]store.Key{ibmKey}, nil)
	if n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams", "cloudcarbon_months_stored"); err != nil || n != 1 {
		t.Errorf("series after the source was removed = %d, %v; want only ibm's months_stored", n, err)
	}
}

// TestLatestMonthIsPerProvider: with two sources of one provider, one a
// month behind, the data families hold the newer month only and
// months_ago means the same month for both.
func TestLatestMonthIsPerProvider(t *testing.T) {
	withMonths := func(name string, last provider.Month) *store.SourceData {
		d := &store.SourceData{Name: name, Provider: provider.IBM, Months: map[provider.Month]*store.MonthData{}}
		for m := last - 2; m <= last; m++ {
			recs := sampleRecords(m)
			for i := range recs {
				recs[i].Account = name
			}
			d.Months[m] = &store.MonthData{Records: recs}
		}
		return d
	}
	sources := map[string]*store.SourceData{
		"current": withMonths("current", month("2026-10")),
		"behind":  withMonths("behind", month("2026-09")),
	}
	for _, mt := range render(sources, 3).metrics {
		var pb dto.Metric
		if err := mt.Write(&pb); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["months_ago"] == "0" && labels["month"] != "2026-10" {
			t.Errorf("months_ago 0 is %s for %s, want 2026-10", labels["month"], labels["account"])
		}
		if strings.Contains(mt.Desc().String(), `"cloudcarbon_emissions_grams"`) && labels["account"] == "behind" {
			t.Errorf("the lagging source's September is in the latest-month family")
		}
	}
}

// TestInvalidLabelsAreDropped: a series whose label value is not UTF-8
// is left out, and the rest of the scrape still works.
func TestInvalidLabelsAreDropped(t *testing.T) {
	s, _, reg := newTestExposition(t, 3)
	s.Configure([]store.Key{ibmKey}, nil)
	s.Update("ibm", store.Data, func(d *store.SourceData) {
		withMonths(month("2026-10"), 1)(d)
		d.Months[month("2026-10")].Records[0].Service = "bad\xff"
	})
	// Three label sets: the invalid one and the two of sampleRecords.
	if n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams"); err != nil || n != 2 {
		t.Errorf("emission series = %d, %v; want the 2 valid ones", n, err)
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
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkRender measures rendering the data metrics: the work done
// once per data change, never on the scrape path.
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
func benchSources(series int) map[string]*store.SourceData {
	m := provider.NewMonth(2026, time.October)
	recs := make([]provider.Record, 0, series/2)
	for i := range series / 2 {
		recs = append(recs, provider.Record{
			Provider: provider.GCP, Account: fmt.Sprintf("project-%04d", i/50), Service: fmt.Sprintf("service-%02d", i%50/5),
			Location: fmt.Sprintf("region-%d", i%5), Scope: provider.Scope2, Month: m,
			EmissionsGrams: float64(i), Known: provider.Emissions,
		})
	}
	return map[string]*store.SourceData{"gcp": {Name: "gcp", Provider: provider.GCP,
		Months: map[provider.Month]*store.MonthData{m: {Records: recs}}}}
}

func benchRegistry(b *testing.B, series int) (*prometheus.Registry, int) {
	b.Helper()
	s, _, reg := newTestExposition(b, 1)
	sources := benchSources(series)
	s.Configure([]store.Key{{Name: "gcp", Provider: provider.GCP}}, nil)
	s.Update("gcp", store.Data, func(d *store.SourceData) { d.Months = sources["gcp"].Months })
	n, err := testutil.GatherAndCount(reg, "cloudcarbon_emissions_grams", "cloudcarbon_history_emissions_grams")
	if err != nil {
		b.Fatal(err)
	}
	return reg, n
}

// TestWithoutSnapshot: an exposition without data describes and gathers
// its families, as the metric listing does.
func TestWithoutSnapshot(t *testing.T) {
	e := New(1, nil, nil)
	e.Refresh()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("series = %d, %v; want none", n, err)
	}
}

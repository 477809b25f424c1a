package exposition

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/scrapetest"
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
		{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: base + 1, EnergyJoules: 3600 * (base + 1), Known: provider.Emissions | provider.Energy},
		{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: 10, EnergyJoules: 36000, Known: provider.Emissions | provider.Energy},
		{Provider: "ibm", Account: "acc1", Service: "Kubernetes Service", Location: "frankfurt", Scope: provider.ScopeUnspecified, Month: m,
			EmissionsGrams: base + 2, Known: provider.Emissions},
	}
}

// newTestExposition wires a store and its exposition as the exporter does.
// The gatherer it returns reads what /metrics serves: the text is parsed
// back, so that testutil's comparisons check the pre-rendered bytes.
func newTestExposition(t testing.TB, history int) (*store.Store, *Exposition, prometheus.Gatherer) {
	t.Helper()
	var s *store.Store
	e := New(history, func() *store.Snapshot { return s.Snapshot() }, discardLogger())
	s = store.New(store.Options{OnData: e.Refresh})
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Freshness())
	return s, e, scrapetest.Gatherer{H: e.Handler(reg, HandlerOpts{})}
}

var ibmKey = store.Key{Name: "ibm", Provider: "ibm", Identity: "ibm|test"}

func withMonths(last provider.Month, n int) func(d *store.SourceData) {
	return func(d *store.SourceData) {
		for m := last - provider.Month(n) + 1; m <= last; m++ {
			d.Months[m] = store.NewMonthData(sampleRecords(m))
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
	other := store.Key{Name: "other", Provider: "ibm", Identity: "other"}
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
		d := &store.SourceData{Name: name, Provider: "ibm", Months: map[provider.Month]*store.MonthData{}}
		for m := last - 2; m <= last; m++ {
			recs := sampleRecords(m)
			for i := range recs {
				recs[i].Account = name
			}
			d.Months[m] = store.NewMonthData(recs)
		}
		return d
	}
	sources := map[string]*store.SourceData{
		"current": withMonths("current", month("2026-10")),
		"behind":  withMonths("behind", month("2026-09")),
	}
	newDefs().aggregate(sources, 3, func(string) int { return 2 }).each(func(d *def, values []string, _ float64) {
		labels := map[string]string{}
		for i, name := range d.labels {
			labels[name] = values[i]
		}
		if labels["months_ago"] == "0" && labels["month"] != "2026-10" {
			t.Errorf("months_ago 0 is %s for %s, want 2026-10", labels["month"], labels["account"])
		}
		if d.name == "cloudcarbon_emissions_grams" && labels["account"] == "behind" {
			t.Errorf("the lagging source's September is in the latest-month family")
		}
	})
}

// TestInvalidLabelsAreRepaired: a label value that is not UTF-8 (here an
// account id and a denial reason cut in the middle of a character) is
// repaired, not dropped: the series stays, with U+FFFD for the bad bytes.
func TestInvalidLabelsAreRepaired(t *testing.T) {
	s, _, reg := newTestExposition(t, 3)
	s.Configure([]store.Key{ibmKey}, nil)
	s.Update("ibm", store.Data, func(d *store.SourceData) {
		recs := sampleRecords(month("2026-10"))
		recs[0].Service = "bad\xff"
		d.Months[month("2026-10")] = store.NewMonthData(recs)
		d.Denied = []provider.Denial{{Provider: "ibm", Account: "acc3", Reason: "Zugriff verweigert f\xc3"}}
	})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cloudcarbon_account_access_denied Accounts the configured credentials may not read, with the provider's reason; always 1. Their data is missing from the data families.
# TYPE cloudcarbon_account_access_denied gauge
cloudcarbon_account_access_denied{account="acc3",provider="ibm",reason="Zugriff verweigert f�",source="ibm"} 1
# HELP cloudcarbon_emissions_grams Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods). Latest month the provider has published.
# TYPE cloudcarbon_emissions_grams gauge
cloudcarbon_emissions_grams{account="acc1",location="dallas",provider="ibm",scope="unspecified",service="Code Engine"} 10
cloudcarbon_emissions_grams{account="acc1",location="dallas",provider="ibm",scope="unspecified",service="bad�"} 10001
cloudcarbon_emissions_grams{account="acc1",location="frankfurt",provider="ibm",scope="unspecified",service="Kubernetes Service"} 10002
`), "cloudcarbon_emissions_grams", "cloudcarbon_account_access_denied"); err != nil {
		t.Error(err)
	}
}

// TestWithoutSnapshot: an exposition without data describes and gathers
// its families, as the metric listing does.
func TestWithoutSnapshot(t *testing.T) {
	e := New(1, nil, nil)
	e.Refresh()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Freshness(), e.Data())
	if n, err := testutil.GatherAndCount(scrapetest.Gatherer{H: e.Handler(reg, HandlerOpts{})}); err != nil || n != 0 {
		t.Errorf("series = %d, %v; want none", n, err)
	}
}

package exposition

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// TestEachDataIsDataWithPeriods: EachData yields the series Data collects,
// with their values, each with the start of the period it describes.
func TestEachDataIsDataWithPeriods(t *testing.T) {
	s, e, _ := newTestExposition(t, 3)
	behind := store.Key{Name: "behind", Provider: "ibm", Identity: "ibm|behind"}
	s.Configure([]store.Key{ibmKey, behind}, nil)
	s.Update("ibm", store.Data, func(d *store.SourceData) {
		withMonths(month("2026-10"), 3)(d)
		d.Yearly = []provider.YearlyWater{{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Year: 2025, CubicMeters: 7}}
		d.Accounts = []provider.Account{{Provider: "ibm", ID: "acc1", Name: "Production"}}
	})
	s.Update("behind", store.Data, withMonths(month("2026-09"), 1))

	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Data())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			want[mf.GetName()+"{"+strings.Join(kv, ",")+"}"] = m.GetGauge().GetValue()
		}
	}

	got := map[string]float64{}
	starts := map[string]time.Time{}
	e.EachData(func(sr Series) {
		labels := map[string]string{}
		for i, l := range sr.Labels {
			labels[l] = sr.Values[i]
		}
		var kv []string
		for _, l := range slices.Sorted(maps.Keys(labels)) {
			kv = append(kv, l+"="+labels[l])
		}
		key := sr.Name + "{" + strings.Join(kv, ",") + "}"
		got[key], starts[key] = sr.Value, sr.Start
		if sr.Help == "" {
			t.Errorf("%s has no help", sr.Name)
		}

		var wantStart time.Time
		switch {
		case labels["month"] != "":
			wantStart = month(labels["month"]).Start()
		case labels["year"] != "":
			wantStart = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
		case strings.HasSuffix(sr.Name, "_info"):
		default:
			// The latest-month families describe the provider's latest
			// month, whichever source a series comes from.
			wantStart = month("2026-10").Start()
		}
		if !sr.Start.Equal(wantStart) {
			t.Errorf("%s starts %v, want %v", key, sr.Start, wantStart)
		}
	})
	if !maps.Equal(got, want) {
		t.Errorf("EachData yields\n%v\nData collects\n%v", got, want)
	}
	if len(got) < 10 {
		t.Errorf("only %d series", len(got))
	}
}

package exposition

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAllocationFamilies: the allocated series of a month add up to its
// emissions, both methods; values past the top fold into (other); the
// self-metrics say what was folded; two sources of one provider add up.
func TestAllocationFamilies(t *testing.T) {
	oct := month("2026-10")
	source := func(name string, top int) *store.SourceData {
		rec := provider.Record{Provider: "gcp", Account: name, Service: "Compute Engine", Location: "europe-west1",
			Scope: provider.Scope2, Month: oct, EmissionsGrams: 900, MarketBasedGrams: 450, Known: provider.Emissions | provider.EmissionsMarketBased}
		tag := func(value string, usd float64) provider.TagCost {
			return provider.TagCost{Record: provider.Record{Provider: "gcp", Account: name, Service: "Compute Engine",
				Location: "europe-west1", Month: oct, CostUSD: usd, Known: provider.Cost}, Value: value}
		}
		return &store.SourceData{Name: name, Provider: "gcp", Months: map[provider.Month]*store.MonthData{oct: store.NewMonthData([]provider.Record{rec})},
			Allocations: &store.Allocations{Top: top, Keys: map[string]map[provider.Month]*store.TagMonth{"team": {
				oct: {Rows: []provider.TagCost{tag("web", 5), tag("data", 3), tag("ml", 1), tag("", 3)}},
			}}}}
	}
	tests := []struct {
		name   string
		top    int
		want   map[string]float64 // value: location-based grams of account a
		kept   float64
		folded float64
	}{
		{"every value kept", 100, map[string]float64{"web": 375, "data": 225, "ml": 75, "(untagged)": 225}, 3, 0},
		{"past the top folded", 1, map[string]float64{"web": 375, "(other)": 300, "(untagged)": 225}, 1, 4.0 / 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := map[string]*store.SourceData{"a": source("a", tt.top), "b": source("b", tt.top)}
			got := map[string]float64{}
			var sum, marketSum float64
			self := map[string]float64{}
			newDefs().aggregate(sources, 3, func(string) int { return 2 }).each(func(d *def, values []string, v float64) {
				labels := map[string]string{}
				for i, name := range d.labels {
					labels[name] = values[i]
				}
				switch d.name {
				case "cloudcarbon_allocated_emissions_grams":
					if labels["account"] == "a" {
						got[labels["value"]] = v
					}
					sum += v
				case "cloudcarbon_allocated_emissions_market_based_grams":
					marketSum += v
				case "cloudcarbon_allocation_kept_values", "cloudcarbon_allocation_folded_ratio", "cloudcarbon_allocation_values":
					if labels["source"] == "a" {
						self[d.name] = v
					}
				}
			})
			for value, want := range tt.want {
				if math.Abs(got[value]-want) > 1e-9 {
					t.Errorf("%s: %v g, want %v", value, got[value], want)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
			if math.Abs(sum-1800) > 1e-9 || math.Abs(marketSum-900) > 1e-9 {
				t.Errorf("allocations add up to %v and %v (market-based), want 1800 and 900", sum, marketSum)
			}
			if self["cloudcarbon_allocation_values"] != 3 || self["cloudcarbon_allocation_kept_values"] != tt.kept ||
				math.Abs(self["cloudcarbon_allocation_folded_ratio"]-tt.folded) > 1e-12 {
				t.Errorf("self-metrics %v, want 3 values, %v kept, %v folded", self, tt.kept, tt.folded)
			}
		})
	}
}

// BenchmarkAllocation renders 100,000 data series without allocation and
// with one key of 100 values (three in each project, service and region,
// and untagged cost), and reports the series served, the bytes the
// exposition holds and the heap in use after the render, with the data.
func BenchmarkAllocation(b *testing.B) {
	for _, values := range []int{0, 100} {
		sources := benchSources(100_000)
		if values > 0 {
			withTeams(sources["gcp"], values)
		}
		snap := &store.Snapshot{Sources: sources}
		b.Run(fmt.Sprintf("values=%d", values), func(b *testing.B) {
			b.ReportAllocs()
			var e *Exposition
			for b.Loop() {
				e = New(1, func() *store.Snapshot { return snap }, discardLogger())
				e.Refresh()
			}
			var text bytes.Buffer
			if err := e.Write(&text, prometheus.NewRegistry()); err != nil {
				b.Fatal(err)
			}
			held := 0
			for _, bl := range e.rendered.Load().blocks {
				for _, m := range bl.members {
					held += len(m)
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(bytes.Count(text.Bytes(), []byte("\ncloudcarbon_"))), "series")
			b.ReportMetric(float64(held), "held-bytes")
			b.ReportMetric(float64(ms.HeapInuse)/1e6, "heap-MB")
			runtime.KeepAlive(snap)
		})
	}
}

// withTeams gives d's latest month the weights of a team key of n values:
// three values in each cell, a cell's values drawn in turn from the n,
// and some untagged cost.
func withTeams(d *store.SourceData, n int) {
	m, _ := d.LatestMonth()
	seen := map[[3]string]bool{}
	var rows []provider.TagCost
	for r := range d.Months[m].All() {
		cell := [3]string{r.Account, r.Service, r.Location}
		if seen[cell] {
			continue
		}
		seen[cell] = true
		for j, usd := range []float64{3, 2, 1, 1} {
			value := ""
			if j < 3 {
				value = fmt.Sprintf("team-%03d", (len(seen)*3+j)%n)
			}
			rows = append(rows, provider.TagCost{Record: provider.Record{Provider: r.Provider, Account: r.Account, Service: r.Service,
				Location: r.Location, Month: m, CostUSD: usd, Known: provider.Cost}, Value: value})
		}
	}
	d.Allocations = &store.Allocations{Top: provider.DefaultAllocationTop,
		Keys: map[string]map[provider.Month]*store.TagMonth{"team": {m: {Rows: rows}}}}
}

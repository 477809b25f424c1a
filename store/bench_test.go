package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// benchData returns one IBM source of accounts accounts with 15
// (service, location) pairs each over months months, emissions and
// energy with three decimals as IBM gives them: the shape of the scale
// test's enterprise.
func benchData(accounts, months int) map[string]*SourceData {
	d := &SourceData{Name: "ibm", Provider: "ibm", Identity: "ibm|bench", Months: map[provider.Month]*MonthData{}, labels: NewLabelTable()}
	last := provider.NewMonth(2026, time.October)
	rng := rand.New(rand.NewPCG(1, 2))
	for m := last - provider.Month(months) + 1; m <= last; m++ {
		b := NewMonthBuilder(d.labels, m, accounts*15)
		for a := range accounts {
			for p := range 15 {
				g := float64(rng.IntN(100_000_000)) / 1000
				b.Add(&provider.Record{Provider: "ibm", Account: fmt.Sprintf("%032x", a*7919), Service: fmt.Sprintf("Service %d", p%7),
					Location: fmt.Sprintf("location-%d", p), Scope: provider.ScopeUnspecified, Month: m,
					EmissionsGrams: g * 1000, EnergyJoules: g * 9.5e6, Known: provider.Emissions | provider.Energy})
			}
		}
		d.Months[m] = b.Done()
		d.Months[m].FetchedAt = time.Date(2026, time.November, 22, 0, 0, 0, 0, time.UTC)
	}
	return map[string]*SourceData{"ibm": d}
}

// BenchmarkState writes and reads the state of the scale test's
// enterprise over the default retention (39 months), at 240 and 2,400
// accounts, and reports the file's size.
func BenchmarkState(b *testing.B) {
	for _, accounts := range []int{240, 2400} {
		data := benchData(accounts, 39)
		records := accounts * 15 * 39
		path := filepath.Join(b.TempDir(), "state")
		f := NewStateFile(path)
		if err := f.Save(data); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("save/records=%d", records), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f.Save(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size()), "file-bytes")
		})
		b.Run(fmt.Sprintf("load/records=%d", records), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Load(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size()), "file-bytes")
		})
	}
}

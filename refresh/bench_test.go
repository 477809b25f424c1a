package refresh

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// answerProvider answers every fetch with a copy of the same records and
// accounts, as a provider that already holds its answer would.
type answerProvider struct {
	records  []provider.Record
	accounts []provider.Account
}

func (p *answerProvider) Name() string                { return "ibm" }
func (p *answerProvider) Schedule() provider.Schedule { return testSchedule }
func (p *answerProvider) Close() error                { return nil }
func (p *answerProvider) Fetch(_ context.Context, months []provider.Month) (provider.Result, error) {
	return provider.Result{Records: slices.Clone(p.records), Accounts: slices.Clone(p.accounts)}, nil
}

// scaleAnswer returns the records and accounts an IBM enterprise of n
// accounts (ibmfake.Scale) yields, its months moved to end with last:
// resource groups summed, as the IBM client sums them.
func scaleAnswer(now time.Time, n int, last provider.Month) *answerProvider {
	ds := ibmfake.Scale(now, n)
	type key struct {
		account, service, location string
		month                      provider.Month
	}
	index := map[key]int{}
	p := &answerProvider{}
	for _, r := range ds.Rows {
		m := last - (ibmfake.LatestPublished(now) - r.Month)
		k := key{r.AccountID, r.Service, r.Location, m}
		i, ok := index[k]
		if !ok {
			i = len(p.records)
			index[k] = i
			p.records = append(p.records, provider.Record{Provider: "ibm", Account: r.AccountID, Service: r.Service,
				Location: r.Location, Scope: provider.ScopeUnspecified, Month: m, Known: provider.Emissions | provider.Energy})
		}
		p.records[i].EmissionsGrams += r.CarbonEmission * 1000
		p.records[i].EnergyJoules += r.EnergyConsumption * 3.6e6
	}
	for _, e := range ds.Entities {
		if e.Type == ibmfake.TypeAccount {
			p.accounts = append(p.accounts, provider.Account{Provider: "ibm", ID: e.ID, Name: e.Name, ParentID: e.ParentID})
		}
	}
	return p
}

// BenchmarkRefresh measures one refresh of an empty source that fetches
// the history window of an IBM enterprise (the default 13 months and the
// latest, 240 accounts: 50,400 records), and reports its time and the
// process's CPU time per record kept:
//
//   - store: the answer checked, filed by month and stored;
//   - exporter: the same, with the state file written and the exposition
//     rendered, as the exporter does after every refresh that changes data.
func BenchmarkRefresh(b *testing.B) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	o.History = 13
	first, last := window(now, o.History)
	p := scaleAnswer(now, 240, last)
	for _, persist := range []bool{false, true} {
		name := "store"
		if persist {
			name = "exporter"
		}
		b.Run(fmt.Sprintf("%s/records=%d", name, len(p.records)), func(b *testing.B) {
			dir := b.TempDir()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				s, m := benchStore(persist, filepath.Join(dir, "state"), o.History)
				r := newTestRefresher(s, m, p, &o)
				r.refresh(b.Context())
				if d, _ := s.Get("ibm"); !d.LastOK || len(d.Months) != int(last-first)+1 {
					b.Fatalf("refresh failed or stored %d months", len(d.Months))
				}
			}
			records := float64(b.N * len(p.records))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/records, "cpu-ns/record")
		})
	}
}

// benchStore returns a store as the exporter wires it, with a state file
// and an exposition when persist is set, and none otherwise.
func benchStore(persist bool, path string, history int) (*store.Store, *Metrics) {
	m := NewMetrics(prometheus.NewRegistry(), []provider.Plugin{{Name: "ibm"}})
	if !persist {
		return store.New(store.Options{Logger: discardLogger()}), m
	}
	var s *store.Store
	expo := exposition.New(history, func() *store.Snapshot { return s.Snapshot() }, discardLogger())
	s = store.New(store.Options{State: store.NewStateFile(path), Logger: discardLogger(), OnData: expo.Refresh})
	return s, m
}

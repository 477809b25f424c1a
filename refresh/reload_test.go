package refresh

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// hungProvider answers no fetch until the fetch is canceled.
type hungProvider struct{ fakeProvider }

func (h *hungProvider) Fetch(ctx context.Context, _ []provider.Month) (provider.Result, error) {
	<-ctx.Done()
	return provider.Result{}, ctx.Err()
}

// TestRemovingManySourcesIsFast: a reload that removes 10,000 sources
// (their data, self-metrics and clients) takes at most 2 s, and leaves no
// series of theirs behind. The sources start from persisted data and their
// refreshers wait on providers that do not answer, so that the test
// measures the removal rather than 10,000 first refreshes.
func TestRemovingManySourcesIsFast(t *testing.T) {
	const n = 10_000
	now := date("2026-11-22T10:00:00Z")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, nil)
	s := store.New(store.Options{})
	mgr := NewManager(s, m, discardLogger())
	defer mgr.Stop()
	o := testOptions(now)
	var sources []Source
	seed := map[string]*store.SourceData{}
	for i := range n {
		name := fmt.Sprintf("src-%05d", i)
		sources = append(sources, Source{Name: name, Identity: name, Provider: &hungProvider{}})
		observe := m.RequestObserver("ibm", name)
		observe("iam_token", 200)
		observe("carbon_emissions", 200)
		oct := month("2026-10")
		md := store.NewMonthData(sampleRecords(oct))
		md.FetchedAt = now
		seed[name] = &store.SourceData{Name: name, Provider: "ibm", Identity: name, Months: map[provider.Month]*store.MonthData{oct: md}}
	}
	kept := sources[:1]
	mgr.Apply(t.Context(), sources, o, seed)
	if got := len(s.Snapshot().Sources); got != n {
		t.Fatalf("the store holds %d sources, want %d", got, n)
	}

	start := time.Now()
	mgr.Apply(t.Context(), kept, o, nil)
	took := time.Since(start)
	t.Logf("removing %d sources took %s", n-len(kept), took)
	if limit := 2 * time.Second * raceSlowdown; took > limit {
		t.Errorf("removing %d sources took %s, want at most %s", n-len(kept), took, limit)
	}
	if got := len(s.Snapshot().Sources); got != len(kept) {
		t.Errorf("the store holds %d sources, want %d", got, len(kept))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "source" && l.GetValue() != kept[0].Name {
					t.Fatalf("%s still has a series of removed source %s", mf.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, src := range sources[len(kept):] {
		if c := src.Provider.(*hungProvider).closeCount(); c != 1 {
			t.Fatalf("removed source %s closed %d times, want once", src.Name, c)
		}
	}
}

// TestReloadReplansChangedIntervals: a reload that shortens the intervals
// plans the next refresh under the new ones at once, rather than at the
// time the old ones gave; one that changes nothing the plan depends on
// keeps the planned time.
func TestReloadReplansChangedIntervals(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	s, m, _ := newTestStore(t, 3, nil)
	mgr := NewManager(s, m, discardLogger())
	defer mgr.Stop()
	o := testOptions(now)
	src := Source{Name: "ibm", Identity: "ibm", Provider: &fakeProvider{records: sampleRecords}}
	next := func() time.Time {
		d, _ := s.Get("ibm")
		return d.NextRefresh
	}
	mgr.Apply(t.Context(), []Source{src}, o, nil)
	waitFor(t, "the first refresh", func() bool { return !next().IsZero() })
	if want := now.Add(o.IdleInterval); !next().Equal(want) {
		t.Fatalf("planned %s after the first refresh, want %s", next(), want)
	}

	o.BackoffMax = 2 * time.Hour
	mgr.Apply(t.Context(), []Source{src}, o, nil)
	if want := now.Add(o.IdleInterval); !next().Equal(want) {
		t.Errorf("a reload of backoff settings moved the plan to %s, want %s", next(), want)
	}

	o.Interval, o.IdleInterval = time.Hour, time.Hour
	mgr.Apply(t.Context(), []Source{src}, o, nil)
	want := now.Add(time.Hour)
	waitFor(t, "the new plan", func() bool { return next().Equal(want) })
}

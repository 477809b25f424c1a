package gcp_test

import (
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// TestSecondRefreshQueriesOnlyOpenMonths drives the provider through the
// real refresher: the first refresh queries the whole window, a refresh a
// day later in the same month only the months that can still change, and
// a model version change of such a month counts as a restatement, after
// which the other stored months are queried again, once.
func TestSecondRefreshQueriesOnlyOpenMonths(t *testing.T) {
	start := time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&start)
	now := func() time.Time { return *clock.Load() }

	ds := gcpfake.Demo(start)
	e := newEnv(t, ds)
	p := e.provider(t, func(o *gcp.Options) {
		o.Project, o.CarbonTable, o.BillingTable, o.Location = ds.Project, ds.CarbonTable, ds.BillingTable, ds.Location
	})

	reg := prometheus.NewRegistry()
	metrics := refresh.NewMetrics(reg, nil)
	logger := slog.New(slog.DiscardHandler)
	st := store.New(store.Options{Logger: logger})
	mgr := refresh.NewManager(st, metrics, logger)
	t.Cleanup(mgr.Stop)
	sources := []refresh.Source{{Name: "gcp-demo", Identity: "gcp|" + ds.CarbonTable, Provider: p}}
	opts := refresh.Options{
		Interval: 6 * time.Hour, IdleInterval: 24 * time.Hour, Timeout: 20 * time.Second,
		BackoffMin: time.Minute, BackoffMax: time.Hour, MaxConcurrency: 1, History: 12, Now: now,
	}
	// waitRefresh waits until a refresh at the current clock succeeded.
	waitRefresh := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			d := st.Snapshot().Sources["gcp-demo"]
			if d != nil && d.LastSuccess.Equal(now()) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no successful refresh at %v; source data %+v", now(), d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	mgr.Apply(t.Context(), sources, opts, nil)
	waitRefresh()
	if !st.Snapshot().Ready() {
		t.Fatal("store not ready after the first refresh")
	}
	// Window: history 12 + 1 months ending with October 2026.
	oct := provider.NewMonth(2026, time.October)
	log := e.fake.QueryLog()
	if len(log) != 2 {
		t.Fatalf("first refresh ran %d queries, want one carbon and one billing query: %+v", len(log), log)
	}
	for _, q := range log {
		if want := provider.Range(oct-12, oct); !slices.Equal(q.Months, want) {
			t.Errorf("first %s query months = %v, want %v", q.Kind, q.Months, want)
		}
	}

	// A day later October (published on the 15th, final on 2026-12-15)
	// is the only open month; Google restated it under a new model.
	restated := gcpfake.Demo(start)
	for i := range restated.Carbon {
		if restated.Carbon[i].Month == oct {
			restated.Carbon[i].ModelVersion++
		}
	}
	e.fake.SetDataset(restated)
	later := start.Add(25 * time.Hour)
	clock.Store(&later)
	// Apply restarts the refresher with the same source, keeping its data.
	mgr.Apply(t.Context(), sources, opts, nil)
	waitRefresh()
	// The restatement makes the source fetch its other stored months
	// again, once, right after October.
	deadline := time.Now().Add(20 * time.Second)
	for counterSum(t, reg, "cloudcarbon_refreshes_total") < 3 || st.Snapshot().Sources["gcp-demo"].Refetching {
		if time.Now().After(deadline) {
			t.Fatalf("no refetch after the restatement: %+v", e.fake.QueryLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitRefresh()
	if got := e.fake.Queries(gcpfake.KindCarbon); got != 3 {
		t.Errorf("carbon queries = %d, want 3", got)
	}
	for i, q := range e.fake.QueryLog()[2:] {
		want := []provider.Month{oct}
		if i >= 2 {
			want = provider.Range(oct-12, oct-1)
		}
		if !slices.Equal(q.Months, want) {
			t.Errorf("%s query %d months = %v, want %v", q.Kind, i+3, q.Months, want)
		}
		if i < 2 && q.Kind == gcpfake.KindBilling && (!q.PartitionStart.Equal(oct.Start()) || !q.PartitionEnd.Equal(oct.End().Add(gcp.BillingExportLag))) {
			t.Errorf("second billing query scans partitions [%v, %v)", q.PartitionStart, q.PartitionEnd)
		}
	}
	if got := counterSum(t, reg, "cloudcarbon_restatements_total"); got != 1 {
		t.Errorf("restatements = %v, want 1", got)
	}
	d := st.Snapshot().Sources["gcp-demo"]
	if got := d.Months[oct].Revision; got != "9" {
		t.Errorf("October revision = %q, want 9", got)
	}
	if n := len(d.Months); n != 13 {
		t.Errorf("stored months = %d, want 13", n)
	}
}

// counterSum sums a counter family over its label sets.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

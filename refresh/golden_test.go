package refresh

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/scrapetest"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenStore holds one refresh of sample data plus a second source whose
// refresh failed, so that every family the exporter renders appears.
func goldenStore(t *testing.T) scrapetest.Gatherer {
	t.Helper()
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	s, m, reg := newTestStore(t, 3, nil)
	ok := &fakeProvider{revision: "1", denied: []provider.Denial{{Provider: "ibm", Account: "acc3", Reason: "MissingPermissions"}}, records: func(mo provider.Month) []provider.Record {
		recs := sampleRecords(mo)
		// A provider with both methods and cost, to cover every family.
		recs = append(recs,
			provider.Record{Provider: "ibm", Account: "acc2", Service: "Compute Engine", Location: "us-central1", Scope: provider.Scope2, Month: mo,
				EmissionsGrams: 500, MarketBasedGrams: 120, Known: provider.Emissions | provider.EmissionsMarketBased},
			provider.Record{Provider: "ibm", Account: "acc2", Service: "Compute Engine", Location: "us-central1", Month: mo,
				CostUSD: 12.5, Known: provider.Cost})
		return recs
	}}
	failing := &fakeProvider{err: &provider.Error{Reason: provider.ReasonPermission, Err: fmt.Errorf("403")}}
	srcs := []Source{{Name: "ibm-ok", Identity: "a", Provider: ok}, {Name: "ibm-denied", Identity: "b", Provider: failing}}
	configure(s, srcs...)
	m.Counters("ibm", "ibm-ok")["bigquery_bytes_processed_total"](2048)
	for _, src := range srcs {
		m.initSource(src.Provider.Name(), src.Name)
		r := &refresher{src: src, store: s, metrics: m, opts: &o, sem: make(chan struct{}, 1), logger: discardLogger()}
		r.refresh(t.Context())
	}
	return reg
}

func TestExpositionGolden(t *testing.T) {
	reg := goldenStore(t)
	got := reg.Body()
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
		t.Errorf("exposition differs from %s (go test ./refresh -run Golden -update to accept):\n%s", golden, got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

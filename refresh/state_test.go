package refresh

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// TestStateRoundTripServesDataWithoutFetching: a restart with a fresh
// state file serves the data at once and calls no provider.
func TestStateRoundTripServesDataWithoutFetching(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	fp := &fakeProvider{records: sampleRecords}
	s, m, _ := newTestStore(t, 3, store.NewStateFile(path))
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	if fp.callCount() != 1 {
		t.Fatalf("calls = %d", fp.callCount())
	}

	// A new process: same state file, a provider that must not be called.
	fp2 := &fakeProvider{records: sampleRecords}
	s2, m2, reg2 := newTestStore(t, 3, store.NewStateFile(path))
	seed := s2.LoadState()
	src := Source{Name: "ibm", Identity: "ibm|test", Provider: fp2}
	s2.Configure([]store.Key{{Name: src.Name, Provider: fp2.Name(), Identity: src.Identity}}, seed)
	if !s2.Snapshot().Ready() {
		t.Error("not ready after loading state")
	}
	// Two current series, and two for each of the three history months.
	if n, err := testutil.GatherAndCount(reg2, "cloudcarbon_emissions_grams", "cloudcarbon_history_emissions_grams"); err != nil || n != 8 {
		t.Errorf("series after restart = %d, %v; want 8", n, err)
	}
	// An hour later nothing is due: October was fetched an hour ago.
	later := now.Add(time.Hour)
	o2 := testOptions(later)
	r2 := &refresher{src: src, store: s2, metrics: m2, opts: &o2, sem: make(chan struct{}, 1), logger: discardLogger()}
	if w := r2.nextWait(); w < 22*time.Hour {
		t.Errorf("next refresh in %v after restart, want about a day", w)
	}
	r2.refresh(t.Context())
	if fp2.callCount() != 0 {
		t.Errorf("provider called %d times after a restart with fresh state", fp2.callCount())
	}

	// A source whose identity changed does not inherit the data.
	s3, _, _ := newTestStore(t, 3, nil)
	s3.Configure([]store.Key{{Name: "ibm", Provider: fp2.Name(), Identity: "ibm|elsewhere"}}, seed)
	if d, _ := s3.Get("ibm"); len(d.Months) != 0 {
		t.Error("data reused for a source with another identity")
	}
}

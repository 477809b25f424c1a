package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// october is a month of two records in one scope, one without a
// market-based figure, and a cost record.
func october(scale float64, revision string, fetched time.Time) *MonthData {
	oct := month("2026-10")
	md := NewMonthData([]provider.Record{
		{Provider: "gcp", Account: "a", Service: "s", Location: "l", Scope: provider.Scope2, Month: oct,
			EmissionsGrams: 100 * scale, MarketBasedGrams: 40 * scale, Known: provider.Emissions | provider.EmissionsMarketBased},
		{Provider: "gcp", Account: "b", Service: "s", Location: "l", Scope: provider.Scope2, Month: oct,
			EmissionsGrams: 10 * scale, Known: provider.Emissions},
		{Provider: "gcp", Account: "a", Service: "s", Location: "l", Month: oct, CostUSD: 5, Known: provider.Cost},
	})
	md.FetchedAt, md.Revision = fetched, revision
	return md
}

func TestReplaceRecordsRestatements(t *testing.T) {
	t0, t1 := date("2026-11-16T00:00:00Z"), date("2026-11-20T00:00:00Z")
	costOnly := NewMonthData(october(1, "", t0).Records()[2:])
	costOnly.FetchedAt = t0
	for _, tc := range []struct {
		name      string
		old, next *MonthData
		wantCause string // "" for no entry
		wantFirst time.Time
	}{
		{"first fetch", nil, october(1, "7", t1), "", t1},
		{"same figures, same version", october(1, "7", t0), october(1, "7", t1), "", t0},
		{"new model version", october(1, "7", t0), october(1.1, "8", t1), CauseModelVersion, t0},
		{"new model version, same figures", october(1, "7", t0), october(1, "8", t1), CauseModelVersion, t0},
		{"figures changed, no version", october(1, "", t0), october(1.2, "", t1), CauseFigures, t0},
		{"rounding noise", october(1, "", t0), october(1+1e-13, "", t1), "", t0},
		{"emptied", october(1, "7", t0), &MonthData{FetchedAt: t1, Revision: "7"}, CauseFigures, t0},
		{"published after cost alone", costOnly, october(1, "", t1), "", t1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// September says that the source reports emissions: cost
			// alone does not publish its months.
			d := &SourceData{Name: "g", Provider: "gcp", Months: map[provider.Month]*MonthData{month("2026-09"): october(1, "", t0)}}
			oct := month("2026-10")
			if tc.old != nil {
				d.Replace(oct, tc.old, tc.old.FetchedAt)
			}
			d.Replace(oct, tc.next, t1)
			if got := d.Months[oct].FirstSeen; !got.Equal(tc.wantFirst) {
				t.Errorf("first seen %v, want %v", got, tc.wantFirst)
			}
			if tc.wantCause == "" {
				if d.Ledger != nil {
					t.Fatalf("ledger %+v, want none", d.Ledger.Entries)
				}
				return
			}
			if d.Ledger == nil || len(d.Ledger.Entries) != 1 {
				t.Fatalf("ledger %+v, want one entry", d.Ledger)
			}
			e := d.Ledger.Entries[0]
			if e.Cause != tc.wantCause || e.Month != oct || !e.At.Equal(t1) || e.OldRevision != tc.old.Revision ||
				e.NewRevision != tc.next.Revision || !e.OldFetchedAt.Equal(t0) {
				t.Errorf("entry %+v", e)
			}
			if want := tc.old.Summary(); !slices.Equal(e.Superseded, want) {
				t.Errorf("superseded %+v, want %+v", e.Superseded, want)
			}
		})
	}
}

// TestSummarizeKeepsWhatEachRecordCarries: records with and without a
// market-based figure are summed apart, per scope.
func TestSummarizeKeepsWhatEachRecordCarries(t *testing.T) {
	got := Summarize(append(october(1, "", time.Time{}).Records(), october(2, "", time.Time{}).Records()...))
	oct := month("2026-10")
	want := []provider.Record{
		{Provider: "gcp", Month: oct, CostUSD: 10, Known: provider.Cost},
		{Provider: "gcp", Scope: provider.Scope2, Month: oct, EmissionsGrams: 30, Known: provider.Emissions},
		{Provider: "gcp", Scope: provider.Scope2, Month: oct, EmissionsGrams: 300, MarketBasedGrams: 120, Known: provider.Emissions | provider.EmissionsMarketBased},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Summarize:\n%+v\nwant\n%+v", got, want)
	}
}

func TestMonthAt(t *testing.T) {
	t0, t1, t2 := date("2026-11-16T00:00:00Z"), date("2026-11-20T00:00:00Z"), date("2026-12-20T00:00:00Z")
	oct := month("2026-10")
	d := &SourceData{Name: "g", Provider: "gcp", Months: map[provider.Month]*MonthData{}}
	d.Replace(oct, october(1, "7", t0), t0)
	d.Replace(oct, october(2, "8", t1), t1)
	d.Replace(oct, october(3, "9", t2), t2)
	for _, tc := range []struct {
		at         time.Time
		scale      float64 // 0: not held
		superseded bool
	}{
		{t0.Add(-time.Second), 0, false},
		{t0, 1, true},
		{t1.Add(-time.Second), 1, true},
		{t1, 2, true},
		{t2.Add(-time.Second), 2, true},
		{t2, 3, false},
		{t2.Add(time.Hour), 3, false},
	} {
		md, superseded := d.MonthAt(oct, tc.at)
		switch {
		case tc.scale == 0 && md != nil:
			t.Errorf("at %v: month held, want none", tc.at)
		case tc.scale == 0:
		case md == nil:
			t.Errorf("at %v: no month, want scale %v", tc.at, tc.scale)
		case superseded != tc.superseded:
			t.Errorf("at %v: superseded %v, want %v", tc.at, superseded, tc.superseded)
		default:
			if got, want := md.Summary(), october(tc.scale, "", time.Time{}).Summary(); !slices.Equal(got, want) {
				t.Errorf("at %v: %+v, want %+v", tc.at, got, want)
			}
		}
	}
	// A month stored by an earlier build counts from its last fetch.
	d.Months[month("2026-09")] = october(1, "", t1)
	if md, _ := d.MonthAt(month("2026-09"), t0); md != nil {
		t.Error("a month fetched after t is held at t")
	}
	if md, _ := d.MonthAt(month("2026-09"), t1); md == nil {
		t.Error("a month fetched at t is not held at t")
	}
}

// TestLedgerIsBoundedAndShared: the ledger keeps the newest LedgerLimit
// entries and says how many it let go; a copy of the source taken before
// a restatement keeps its own ledger.
func TestLedgerIsBoundedAndShared(t *testing.T) {
	d := &SourceData{Name: "g", Provider: "gcp", Months: map[provider.Month]*MonthData{}}
	start := date("2026-11-16T00:00:00Z")
	oct := month("2026-10")
	d.Replace(oct, october(1, "0", start), start)
	var before *SourceData
	for i := 1; i <= LedgerLimit+5; i++ {
		at := start.Add(time.Duration(i) * time.Hour)
		if i == 3 {
			before = d.clone()
		}
		d.Replace(oct, october(float64(i+1), "", at), at)
	}
	l := d.Ledger
	if len(l.Entries) != LedgerLimit || l.Dropped != 5 || !l.DroppedThrough.Equal(start.Add(5*time.Hour)) {
		t.Errorf("ledger holds %d entries, dropped %d through %v", len(l.Entries), l.Dropped, l.DroppedThrough)
	}
	if len(before.Ledger.Entries) != 2 {
		t.Errorf("an earlier copy's ledger changed to %d entries", len(before.Ledger.Entries))
	}
}

// TestLedgerSurvivesRestarts: the ledger is persisted with the data and
// loaded back.
func TestLedgerSurvivesRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := New(Options{State: NewStateFile(path)})
	s.Configure([]Key{ibmKey}, nil)
	t0, t1 := date("2026-11-16T00:00:00Z"), date("2026-12-16T00:00:00Z")
	s.Update("ibm", Data, func(d *SourceData) { d.Replace(month("2026-10"), october(1, "7", t0), t0) })
	s.Update("ibm", Data, func(d *SourceData) { d.Replace(month("2026-10"), october(2, "8", t1), t1) })

	s2 := New(Options{State: NewStateFile(path)})
	s2.Configure([]Key{ibmKey}, s2.LoadState())
	d, _ := s2.Get("ibm")
	if d.Ledger == nil || len(d.Ledger.Entries) != 1 || d.Ledger.Entries[0].NewRevision != "8" {
		t.Fatalf("ledger after a restart: %+v", d.Ledger)
	}
	if md, superseded := d.MonthAt(month("2026-10"), t0); md == nil || !superseded || md.Revision != "7" {
		t.Errorf("October as of %v after a restart: %+v", t0, md)
	}
}

package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// TestScheduleUpdateIsNeitherPersistedNorReported: plan fields change on
// every refresh; only data changes are worth a write and a re-render.
func TestScheduleUpdateIsNeitherPersistedNorReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	calls := 0
	s := New(Options{State: NewStateFile(path), OnData: func() { calls++ }})
	s.Configure([]Key{ibmKey}, nil)
	if calls != 1 {
		t.Fatalf("OnData calls after Configure = %d, want 1", calls)
	}
	before, _ := s.Get("ibm")

	s.Update("ibm", Schedule, func(d *SourceData) { d.NextRefresh, d.Attempted = date("2026-11-23T00:00:00Z"), true })
	after, _ := s.Get("ibm")
	if calls != 1 {
		t.Errorf("OnData called for a schedule update")
	}
	if after.Generation != before.Generation {
		t.Errorf("generation moved from %d to %d on a schedule update", before.Generation, after.Generation)
	}
	if !after.Attempted || before.Attempted {
		t.Error("schedule update not published")
	}
	if data, err := NewStateFile(path).Load(); data != nil || err != nil {
		t.Errorf("schedule update persisted: %v, %v", data, err)
	}

	s.Update("ibm", Data, withOctober)
	data, _ := s.Get("ibm")
	if calls != 2 {
		t.Errorf("OnData calls after a data update = %d, want 2", calls)
	}
	if data.Generation <= after.Generation {
		t.Errorf("generation %d after a data update, want more than %d", data.Generation, after.Generation)
	}
	if saved, err := NewStateFile(path).Load(); err != nil || saved["ibm"] == nil || len(saved["ibm"].Months) != 1 {
		t.Errorf("data update not persisted: %v, %v", saved, err)
	}
}

// TestOnDataRunsOutsideTheLock: OnData may read and even update the store.
func TestOnDataRunsOutsideTheLock(t *testing.T) {
	var s *Store
	s = New(Options{OnData: func() {
		s.Update("ibm", Schedule, func(d *SourceData) { d.LastDuration = time.Second })
	}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Configure([]Key{ibmKey}, nil)
		s.Update("ibm", Data, withOctober)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("OnData deadlocked on the store's lock")
	}
}

// TestGenerationIsNewForReplacedSources: a reload that points a name at
// other data must look like a change even though both start afresh.
func TestGenerationIsNewForReplacedSources(t *testing.T) {
	s := New(Options{})
	s.Configure([]Key{ibmKey}, nil)
	first, _ := s.Get("ibm")
	s.Configure([]Key{ibmKey}, nil)
	if kept, _ := s.Get("ibm"); kept != first {
		t.Error("data of an unchanged source not kept across Configure")
	}
	seed := map[string]*SourceData{"ibm": {Name: "ibm", Provider: "ibm", Identity: "ibm|other", Months: map[provider.Month]*MonthData{}}}
	s.Configure([]Key{{Name: "ibm", Provider: "ibm", Identity: "ibm|other"}}, seed)
	second, _ := s.Get("ibm")
	if second.Generation == first.Generation {
		t.Errorf("replaced source kept generation %d", first.Generation)
	}
	if seed["ibm"].Attempted || seed["ibm"].Generation != 0 {
		t.Error("Configure modified the seed")
	}
}

func TestUpdateOfARemovedSourceIsDropped(t *testing.T) {
	calls := 0
	s := New(Options{OnData: func() { calls++ }})
	s.Configure([]Key{ibmKey}, nil)
	s.Configure(nil, nil)
	s.Update("ibm", Data, withOctober)
	if _, ok := s.Get("ibm"); ok || calls != 2 {
		t.Errorf("update of a removed source: present %v, OnData calls %d", ok, calls)
	}
}

// TestReplanKeepsRetryTimes: Replan forgets the planned refreshes of
// sources that are fine, not the retry time of one backing off after a
// failure, and changes no data generation.
func TestReplanKeepsRetryTimes(t *testing.T) {
	s := New(Options{})
	failing := Key{Name: "failing", Provider: "ibm", Identity: "ibm|failing"}
	s.Configure([]Key{ibmKey, failing}, nil)
	planned, retry := date("2026-11-23T00:00:00Z"), date("2026-11-22T11:00:00Z")
	s.Update("ibm", Schedule, func(d *SourceData) { d.LastAttempt, d.LastOK, d.NextRefresh = planned, true, planned })
	s.Update("failing", Schedule, func(d *SourceData) { d.LastAttempt, d.LastOK, d.NextRefresh = planned, false, retry })
	before := s.Snapshot()

	s.Replan()
	ok, _ := s.Get("ibm")
	bad, _ := s.Get("failing")
	if !ok.NextRefresh.IsZero() {
		t.Errorf("planned refresh kept at %s, want forgotten", ok.NextRefresh)
	}
	if !bad.NextRefresh.Equal(retry) {
		t.Errorf("retry time %s, want %s kept", bad.NextRefresh, retry)
	}
	if ok.Generation != before.Sources["ibm"].Generation || bad.Generation != before.Sources["failing"].Generation {
		t.Error("Replan moved a data generation")
	}
	if before.Sources["ibm"].NextRefresh.IsZero() {
		t.Error("Replan changed a published snapshot")
	}
}

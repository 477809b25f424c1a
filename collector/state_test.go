package collector

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStateRoundTripServesDataWithoutFetching(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	fp := &fakeProvider{records: sampleRecords}
	s, m, _ := newTestStore(t, 3, NewStateFile(path))
	r := newTestRefresher(s, m, fp, &o)
	r.refresh(t.Context())
	if fp.callCount() != 1 {
		t.Fatalf("calls = %d", fp.callCount())
	}

	// A new process: same state file, a provider that must not be called.
	fp2 := &fakeProvider{records: sampleRecords}
	s2, m2, reg2 := newTestStore(t, 3, NewStateFile(path))
	seed := LoadState(NewStateFile(path), m2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	src := Source{Name: "ibm", Identity: "ibm|test", Provider: fp2}
	s2.Configure([]Source{src}, seed)
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
	r2 := &refresher{src: src, store: s2, metrics: m2, opts: &o2, sem: make(chan struct{}, 1), logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if w := r2.nextWait(); w < 22*time.Hour {
		t.Errorf("next refresh in %v after restart, want about a day", w)
	}
	r2.refresh(t.Context())
	if fp2.callCount() != 0 {
		t.Errorf("provider called %d times after a restart with fresh state", fp2.callCount())
	}

	// A source whose identity changed does not inherit the data.
	s3, _, _ := newTestStore(t, 3, nil)
	s3.Configure([]Source{{Name: "ibm", Identity: "ibm|elsewhere", Provider: fp2}}, seed)
	if len(s3.Snapshot().Sources["ibm"].Months) != 0 {
		t.Error("data reused for a source with another identity")
	}
}

func TestStateFileRejectsDamage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := NewStateFile(good).Save(map[string]*SourceData{"ibm": {Name: "ibm", Provider: "ibm"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"truncated", string(raw[:len(raw)/2]), "is not a cloudcarbon_exporter state file"},
		{"garbage", "\x00\x01garbage", "is not a cloudcarbon_exporter state file"},
		{"foreign JSON", `{"groups":[{"name":"x"}]}`, `format ""`},
		{"other version", strings.Replace(string(raw), `"version":1`, `"version":99`, 1), "format version 99, this build reads version 1"},
		{"edited payload", strings.Replace(string(raw), `"provider":"ibm"`, `"provider":"gcp"`, 1), "fails its checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewStateFile(path).Load()
			if !errors.Is(err, ErrStateInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load() error = %v, want ErrStateInvalid containing %q", err, tt.wantErr)
			}
			_, m, _ := newTestStore(t, 3, nil)
			if seed := LoadState(NewStateFile(path), m, slog.New(slog.NewTextHandler(io.Discard, nil))); seed != nil {
				t.Error("LoadState returned data from a damaged file")
			}
			if got := testutil.ToFloat64(m.stateErrors.WithLabelValues("load")); got != 1 {
				t.Errorf("state load errors = %v, want 1", got)
			}
		})
	}
	if data, err := NewStateFile(filepath.Join(dir, "missing")).Load(); data != nil || err != nil {
		t.Errorf("missing file: %v, %v; want nothing", data, err)
	}
}

func TestStateWriteFailureIsCountedAndDataKept(t *testing.T) {
	now := date("2026-11-22T10:00:00Z")
	o := testOptions(now)
	s, m, _ := newTestStore(t, 3, NewStateFile(filepath.Join(t.TempDir(), "missing-dir", "state.json")))
	r := newTestRefresher(s, m, &fakeProvider{records: sampleRecords}, &o)
	r.refresh(t.Context())
	if got := testutil.ToFloat64(m.stateErrors.WithLabelValues("write")); got != 1 {
		t.Errorf("state write errors = %v, want 1", got)
	}
	if _, ok := s.Snapshot().Sources["ibm"].LatestMonth(); !ok {
		t.Error("data lost when the state file could not be written")
	}
}

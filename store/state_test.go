package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

func month(s string) provider.Month {
	m, err := provider.ParseMonth(s)
	if err != nil {
		panic(err)
	}
	return m
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var ibmKey = Key{Name: "ibm", Provider: "ibm", Identity: "ibm|test"}

// withOctober stores one month of data, as a successful refresh does.
func withOctober(d *SourceData) {
	oct := month("2026-10")
	md := NewMonthBuilder(d.Labels(), oct, 1)
	md.Add(&provider.Record{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.ScopeUnspecified, Month: oct,
		EmissionsGrams: 10, Known: provider.Emissions})
	d.Months[oct] = md.Done()
	d.Months[oct].FetchedAt = date("2026-11-22T10:00:00Z")
	d.LastSuccess, d.LastAttempt, d.LastOK, d.Attempted = date("2026-11-22T10:00:00Z"), date("2026-11-22T10:00:00Z"), true, true
}

func TestStateRoundTripSeedsAConfiguredSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := New(Options{State: NewStateFile(path)})
	s.Configure([]Key{ibmKey}, nil)
	s.Update("ibm", Data, withOctober)

	// A new process: same state file.
	s2 := New(Options{State: NewStateFile(path)})
	seed := s2.LoadState()
	s2.Configure([]Key{ibmKey}, seed)
	if !s2.Snapshot().Ready() {
		t.Error("not ready after loading state")
	}
	d, _ := s2.Get("ibm")
	if latest, ok := d.LatestMonth(); !ok || latest != month("2026-10") {
		t.Errorf("latest month after restart = %v, %v; want 2026-10", latest, ok)
	}
	if !d.LastSuccess.Equal(date("2026-11-22T10:00:00Z")) {
		t.Errorf("last success after restart = %v", d.LastSuccess)
	}
	if d.Generation == 0 {
		t.Error("seeded data has no generation: the exposition would not render it")
	}

	// A source whose identity or provider changed does not inherit the data.
	for _, k := range []Key{
		{Name: "ibm", Provider: "ibm", Identity: "ibm|elsewhere"},
		{Name: "ibm", Provider: "gcp", Identity: "ibm|test"},
	} {
		s3 := New(Options{})
		s3.Configure([]Key{k}, seed)
		if d, _ := s3.Get("ibm"); len(d.Months) != 0 || d.Attempted {
			t.Errorf("data reused for %+v", k)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the state file fixture of the current version")

// TestStateFileFormatIsStable: a file of every version (the fixtures)
// loads; what a JSON version holds marshals back to its payload byte for
// byte, so nothing was lost; saving writes the current version, which
// loads to the same data; and the current version's fixture saves back
// to its own payload byte for byte.
func TestStateFileFormatIsStable(t *testing.T) {
	restated := func(data map[string]*SourceData) bool {
		d := data["ibm"]
		return d != nil && d.Ledger != nil && len(d.Ledger.Entries) == 1 && d.Ledger.Entries[0].Cause == CauseModelVersion &&
			d.Months[month("2026-10")].FirstSeen.Equal(date("2026-11-22T10:00:00Z"))
	}
	for _, tc := range []struct {
		fixture string
		check   func(data map[string]*SourceData) bool
	}{
		{"state_v1.json", func(data map[string]*SourceData) bool {
			d := data["ibm"]
			return d != nil && len(d.Months) == 2 && d.Months[month("2026-10")].Revision == "7" && len(d.Denied) == 1 && d.Ledger == nil
		}},
		{"state_v2.json", restated},
		{"state_v3.bin", restated},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			fixture := filepath.Join("testdata", tc.fixture)
			if *update && tc.fixture == "state_v3.bin" {
				if err := NewStateFile(fixture).Save(restatedState()); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(fixture)
			if err != nil {
				t.Fatal(err)
			}
			data, err := NewStateFile(fixture).Load()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(data) {
				t.Fatalf("fixture loaded as %+v", data["ibm"])
			}
			loaded, err := json.Marshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if tc.fixture != "state_v3.bin" {
				var env stateHeader
				if err := json.Unmarshal(raw, &env); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(loaded, env.Data) {
					t.Errorf("%s loads as\n%s\nwant its payload\n%s", fixture, loaded, env.Data)
				}
			}
			for _, d := range data {
				d.Generation = 42 // in memory only
			}
			path := filepath.Join(t.TempDir(), "state")
			if err := NewStateFile(path).Save(data); err != nil {
				t.Fatal(err)
			}
			saved, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			again, err := NewStateFile(path).Load()
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(again); !bytes.Equal(got, loaded) {
				t.Errorf("saved as version %d, loads as\n%s\nwant\n%s", stateVersion, got, loaded)
			}
			if tc.fixture == "state_v3.bin" && !bytes.Equal(payloadOf(t, saved), payloadOf(t, raw)) {
				t.Errorf("saved payload differs from %s's", fixture)
			}
		})
	}
}

// payloadOf returns the header line and the uncompressed payload of a
// version 3 file: gzip's own bytes may differ between Go releases.
func payloadOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	line, rest, ok := bytes.Cut(raw, []byte("\n"))
	if !ok || len(rest) < sha256.Size {
		t.Fatalf("not a version 3 file: %q", raw)
	}
	zr, err := gzip.NewReader(bytes.NewReader(rest[:len(rest)-sha256.Size]))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(line, '\n'), payload...)
}

// restatedState is the data of the v2 and v3 fixtures: the v1 fixture's
// IBM source after its October was restated under model version 8.
func restatedState() map[string]*SourceData {
	data, err := NewStateFile(filepath.Join("testdata", "state_v1.json")).Load()
	if err != nil {
		panic(err)
	}
	d := data["ibm"]
	oct := month("2026-10")
	d.Months[oct].FirstSeen = d.Months[oct].FetchedAt
	records := d.Months[oct].Records()
	records[0].EmissionsGrams *= 1.25
	restated := NewMonthData(records)
	restated.Revision = "8"
	restated.FetchedAt = date("2026-12-18T06:00:00Z")
	d.Replace(oct, restated, restated.FetchedAt)
	return data
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
	edited := bytes.Clone(raw)
	edited[len(edited)/2] ^= 0xff
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"truncated", string(raw[:len(raw)/2]), "fails its checksum"},
		{"garbage", "\x00\x01garbage", "is not a cloudcarbon_exporter state file"},
		{"foreign JSON", `{"groups":[{"name":"x"}]}`, `format ""`},
		{"newer version", strings.Replace(string(raw), `"version":3`, `"version":99`, 1), "format version 99, this build reads versions 1 to 3"},
		{"version 0", strings.Replace(string(raw), `"version":3`, `"version":0`, 1), "format version 0, this build reads versions 1 to 3"},
		{"edited payload", string(edited), "fails its checksum"},
		{"unknown encoding", string(withChecksum(bytes.Replace(raw[:len(raw)-sha256.Size], []byte(`"gzip"`), []byte(`"zstd"`), 1))), `unknown payload encoding "zstd"`},
		{"damaged payload under a valid checksum", string(withChecksum(damagedPayload(t))), "payload: "},
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
			s := New(Options{State: NewStateFile(path)})
			if seed := s.LoadState(); seed != nil {
				t.Error("LoadState returned data from a damaged file")
			}
			if got := testutil.ToFloat64(s.stateErrors.WithLabelValues("load")); got != 1 {
				t.Errorf("state load errors = %v, want 1", got)
			}
		})
	}
	if data, err := NewStateFile(filepath.Join(dir, "missing")).Load(); data != nil || err != nil {
		t.Errorf("missing file: %v, %v; want nothing", data, err)
	}
}

// withChecksum appends the trailer of a version 3 file to body.
func withChecksum(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(bytes.Clone(body), sum[:]...)
}

// damagedPayload returns the header line and a payload that declares a
// record whose label set does not exist, compressed.
func damagedPayload(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`{"format":"cloudcarbon_exporter/state","version":3,"encoding":"gzip"}` + "\n")
	zw := gzip.NewWriter(&b)
	// One source {"name":"x"}, no strings, no label sets, one month with
	// one record of label set 0.
	zw.Write([]byte{1, 12})
	zw.Write([]byte(`{"name":"x"}`))
	zw.Write([]byte{0, 0, 1, 0, 2, '{', '}', 1, 0})
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestStateWriteFailureIsCountedAndDataKept(t *testing.T) {
	s := New(Options{State: NewStateFile(filepath.Join(t.TempDir(), "missing-dir", "state.json"))})
	s.Configure([]Key{ibmKey}, nil)
	s.Update("ibm", Data, withOctober)
	if got := testutil.ToFloat64(s.stateErrors.WithLabelValues("write")); got != 1 {
		t.Errorf("state write errors = %v, want 1", got)
	}
	if d, _ := s.Get("ibm"); d == nil {
		t.Fatal("source lost")
	} else if _, ok := d.LatestMonth(); !ok {
		t.Error("data lost when the state file could not be written")
	}
	if err := s.Flush(); err == nil {
		t.Error("Flush to a missing directory succeeded")
	}
}

// TestOlderSaveNeverOverwritesNewer: saves run outside the store's lock,
// so one may reach the file after a later one; it must then be dropped.
func TestOlderSaveNeverOverwritesNewer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := New(Options{State: NewStateFile(path)})
	older := map[string]*SourceData{"ibm": {Name: "ibm", Provider: "ibm", Identity: "old"}}
	newer := map[string]*SourceData{"ibm": {Name: "ibm", Provider: "ibm", Identity: "new"}}
	if err := s.save(newer, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.save(older, 1); err != nil {
		t.Fatal(err)
	}
	data, err := NewStateFile(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := data["ibm"].Identity; got != "new" {
		t.Errorf("state file holds the %s data", got)
	}
}

// TestConcurrentUpdatesPersistTheLatestData: whatever order the saves
// reach the file in, it ends up holding the last published data.
func TestConcurrentUpdatesPersistTheLatestData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := New(Options{State: NewStateFile(path)})
	var keys []Key
	for _, n := range []string{"a", "b", "c", "d"} {
		keys = append(keys, Key{Name: n, Provider: "ibm", Identity: n})
	}
	s.Configure(keys, nil)
	done := make(chan struct{})
	for _, k := range keys {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 20 {
				s.Update(k.Name, Data, func(d *SourceData) { d.LastDuration = time.Duration(i) })
			}
		}()
	}
	for range keys {
		<-done
	}
	data, err := NewStateFile(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(data)
	want, _ := json.Marshal(s.Snapshot().Sources)
	if !bytes.Equal(got, want) {
		t.Errorf("state file holds\n%s\nwant the latest data\n%s", got, want)
	}
}

// TestStaleTempFilesAreRemovedAtStart: a process killed while saving leaves
// a temporary file; the next start removes those of its own state file and
// leaves others alone.
func TestStaleTempFilesAreRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, name := range []string{"state.json.tmp-1", "state.json.tmp-2", "other.json.tmp-3", "state.json.bak"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Options{State: NewStateFile(path)})
	s.LoadState()
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range left {
		left[i] = filepath.Base(left[i])
	}
	if want := []string{"other.json.tmp-3", "state.json.bak"}; !slices.Equal(left, want) {
		t.Errorf("files left: %v, want %v", left, want)
	}
}

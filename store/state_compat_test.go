package store

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// rawRecord, rawMonth and rawSource read a version 2 state file without
// the store's types, so that what the store loads is compared with what
// the file holds rather than with itself.
type rawRecord struct {
	P  string  `json:"p"`
	A  string  `json:"a"`
	S  string  `json:"s"`
	L  string  `json:"l"`
	Sc string  `json:"sc"`
	M  string  `json:"m"`
	E  float64 `json:"e"`
	MB float64 `json:"mb"`
	J  float64 `json:"j"`
	C  float64 `json:"c"`
	W  float64 `json:"w"`
	K  uint8   `json:"k"`
}

type rawMonth struct {
	Records   []rawRecord `json:"records"`
	FetchedAt time.Time   `json:"fetched_at"`
	Revision  string      `json:"revision"`
	FirstSeen time.Time   `json:"first_seen"`
}

type rawSource struct {
	Name        string              `json:"name"`
	Provider    string              `json:"provider"`
	Identity    string              `json:"identity"`
	Months      map[string]rawMonth `json:"months"`
	Accounts    []map[string]string `json:"accounts"`
	Denied      []map[string]string `json:"denied"`
	Yearly      []map[string]any    `json:"yearly"`
	LastSuccess time.Time           `json:"last_success"`
	LastOK      bool                `json:"last_ok"`
}

// readDemoV2 returns the path of the version 2 state file that the
// exporter of the last version 2 release wrote in demo mode (all six
// clouds through their real code paths, 38 months each), uncompressed
// into a temporary directory, and its raw contents.
func readDemoV2(t *testing.T) (string, map[string]rawSource) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "state_v2_demo.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var file struct {
		Version int                  `json:"version"`
		Data    map[string]rawSource `json:"data"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if file.Version != 2 {
		t.Fatalf("fixture is version %d, want 2", file.Version)
	}
	return path, file.Data
}

func (r rawRecord) record(t *testing.T) provider.Record {
	t.Helper()
	m, err := provider.ParseMonth(r.M)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Record{
		Provider: r.P, Account: r.A, Service: r.S, Location: r.L, Scope: provider.Scope(r.Sc), Month: m,
		EmissionsGrams: r.E, MarketBasedGrams: r.MB, EnergyJoules: r.J, CostUSD: r.C, WaterCubicMeters: r.W,
		Known: provider.Quantity(r.K),
	}
}

// TestVersion2StateFileLoads: a state file written by the last version 2
// release loads with every source, month, record and account it holds.
func TestVersion2StateFileLoads(t *testing.T) {
	path, want := readDemoV2(t)
	got, err := NewStateFile(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) != 6 {
		t.Fatalf("loaded %d sources, the file holds %d (want 6)", len(got), len(want))
	}
	for name, w := range want {
		d := got[name]
		if d == nil {
			t.Fatalf("source %s not loaded", name)
		}
		if d.Provider != w.Provider || d.Identity != w.Identity || !d.LastSuccess.Equal(w.LastSuccess) || d.LastOK != w.LastOK {
			t.Errorf("%s: loaded as %s %s %v %v", name, d.Provider, d.Identity, d.LastSuccess, d.LastOK)
		}
		if len(d.Accounts) != len(w.Accounts) || len(d.Denied) != len(w.Denied) || len(d.Yearly) != len(w.Yearly) {
			t.Errorf("%s: %d accounts, %d denials, %d yearly figures; the file holds %d, %d, %d",
				name, len(d.Accounts), len(d.Denied), len(d.Yearly), len(w.Accounts), len(w.Denied), len(w.Yearly))
		}
		if len(d.Months) != len(w.Months) {
			t.Errorf("%s: %d months loaded, the file holds %d", name, len(d.Months), len(w.Months))
		}
		for ms, wm := range w.Months {
			m, err := provider.ParseMonth(ms)
			if err != nil {
				t.Fatal(err)
			}
			md := d.Months[m]
			if md == nil {
				t.Fatalf("%s: month %s not loaded", name, ms)
			}
			if !md.FetchedAt.Equal(wm.FetchedAt) || !md.FirstSeen.Equal(wm.FirstSeen) || md.Revision != wm.Revision {
				t.Errorf("%s %s: fetched %v, first seen %v, revision %q; the file holds %v, %v, %q",
					name, ms, md.FetchedAt, md.FirstSeen, md.Revision, wm.FetchedAt, wm.FirstSeen, wm.Revision)
			}
			var records []provider.Record
			for _, r := range wm.Records {
				records = append(records, r.record(t))
			}
			if !slices.Equal(md.Records(), records) {
				t.Errorf("%s %s: records differ from the file's", name, ms)
			}
		}
	}
}

package app

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestStateFilesOfEarlierReleasesLoad starts the exporter on a state file
// written by an earlier release, each with the configuration it was
// written with: the first release (format version 1, before the plug-in
// split) and the last of format version 2. The data must be served at
// once, with the totals the file holds, and no provider request made: the
// configured endpoint is not even listening.
func TestStateFilesOfEarlierReleasesLoad(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) { testStateFileLoads(t, v) })
	}
}

func testStateFileLoads(t *testing.T, version string) {
	raw, err := os.ReadFile(filepath.Join("testdata", "state-"+version+".json"))
	if err != nil {
		t.Fatal(err)
	}
	// What the file holds, read independently of the store's types.
	var file struct {
		Data map[string]struct {
			LastSuccess time.Time `json:"last_success"`
			Months      map[string]struct {
				Records []struct {
					Emissions float64 `json:"e"`
				} `json:"records"`
			} `json:"months"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	acme := file.Data["acme"]
	latest := ""
	for m := range acme.Months {
		latest = max(latest, m)
	}
	var want float64
	for _, r := range acme.Months[latest].Records {
		want += r.Emissions
	}

	o := testOptions(t)
	o.ConfigFile = filepath.Join("testdata", "state-"+version+".config.yml")
	if err := os.WriteFile(o.StateFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	o.Now = func() time.Time { return acme.LastSuccess.Add(time.Hour) }
	t.Setenv("OLD_KEY", "not-used")
	t.Setenv("V2_KEY", "not-used")
	a := startApp(t, o, nil, true)
	if !a.ready() {
		t.Fatal("not ready at once with the persisted state")
	}
	got, err := testutil.GatherAndCount(a.gatherer(), "cloudcarbon_emissions_grams")
	if err != nil || got == 0 {
		t.Fatalf("no emissions series from the state file: %d %v", got, err)
	}
	sum := 0.0
	mfs, _ := a.gatherer().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "cloudcarbon_emissions_grams" {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	if math.Abs(sum-want) > 1e-9*want {
		t.Errorf("emissions of %s: got %v, the state file holds %v", latest, sum, want)
	}
	time.Sleep(300 * time.Millisecond) // give the refresher a chance to misbehave
	text := gatherText(t, a.reg, "cloudcarbon_api_requests_total", "cloudcarbon_refreshes_total")
	if strings.Contains(text, "cloudcarbon_api_requests_total{") || !strings.Contains(text, `cloudcarbon_refreshes_total{provider="ibm",source="acme"} 0`) {
		t.Errorf("provider requests after a start from the state file:\n%s", text)
	}
}

//go:build e2e && scale

// The scale test runs the real binary against an IBM Carbon Calculator fake
// with an enterprise of 250 accounts (about 100k series) and 50 ms added to
// every API response: cold start, warm restart from the state file, and
// memory after 100 scrapes. Run it with `make scale-test`.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

const (
	scaleAccounts = 250
	scaleLatency  = 50 * time.Millisecond
)

func TestScale(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ds := ibmfake.Scale(time.Now(), scaleAccounts)
	fake := ibmfake.NewServer(ds, "scale-key")
	fake.SetLatency(scaleLatency)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("ibm:\n  - name: scale\n    api_key_env: SCALE_KEY\n    enterprise_id: %s\n    api_url: %s\n    iam_url: %s\n",
		ds.EnterpriseID, srv.URL, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")
	requests := func() int { return fake.Requests("/v1/carbon_emissions") + fake.Requests("/identity/token") }

	// Cold start: every page fetched, then ready.
	cold := startScale(t, bin, cfg, state)
	readyAfter := cold.waitFor(t, "/-/ready", nil)
	series := cold.dataSeries(t)
	for range 100 {
		if _, err := cold.scrape(); err != nil {
			t.Fatal(err)
		}
	}
	hwm := cold.statusKB(t, "VmHWM")
	rss100 := cold.statusKB(t, "VmRSS")
	for range 900 {
		if _, err := cold.scrape(); err != nil {
			t.Fatal(err)
		}
	}
	rss1000 := cold.statusKB(t, "VmRSS")
	coldRequests := requests()
	cold.stop(t)

	// Warm restart: the state file alone serves the first full scrape.
	warm := startScale(t, bin, cfg, state)
	firstScrape := warm.waitFor(t, "/metrics", func(body []byte) bool {
		return bytes.Contains(body, []byte("\ncloudcarbon_history_emissions_grams{"))
	})
	warmRequests := requests() - coldRequests
	warmSeries := warm.dataSeries(t)
	warm.stop(t)

	t.Logf("scale: %d accounts, %d data series, %s per API response", scaleAccounts, series, scaleLatency)
	t.Logf("cold start to /-/ready: %s (%d provider requests)", readyAfter.Round(time.Millisecond), coldRequests)
	t.Logf("warm restart to the first full scrape: %s (%d provider requests)", firstScrape.Round(time.Millisecond), warmRequests)
	t.Logf("VmHWM after 100 scrapes: %d MB; VmRSS after 100 scrapes %d MB, after 1000 %d MB", hwm/1024, rss100/1024, rss1000/1024)
	if series < 90_000 {
		t.Errorf("only %d data series; the scale dataset should give about 100k", series)
	}
	if readyAfter > 6*time.Second {
		t.Errorf("cold start took %s, want at most 6s", readyAfter)
	}
	if firstScrape > time.Second {
		t.Errorf("warm restart took %s to the first full scrape, want at most 1s", firstScrape)
	}
	if warmRequests != 0 {
		t.Errorf("warm restart made %d provider requests, want none", warmRequests)
	}
	if warmSeries != series {
		t.Errorf("warm restart serves %d data series, the cold start %d", warmSeries, series)
	}
	if rss1000 > rss100+16*1024 {
		t.Errorf("VmRSS grew from %d MB to %d MB over 900 scrapes", rss100/1024, rss1000/1024)
	}
	if hwm > 150*1024 {
		t.Errorf("VmHWM %d MB after 100 scrapes, want at most 150 MB", hwm/1024)
	}
}

type scaleExporter struct {
	cmd     *exec.Cmd
	base    string
	started time.Time
	logs    *bytes.Buffer
}

func startScale(t *testing.T, bin, cfg, state string) *scaleExporter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	x := &scaleExporter{base: "http://" + addr, logs: &bytes.Buffer{}}
	// Retention as long as the history: the months kept only for reports
	// are fetched after readiness, at a time the test does not control.
	x.cmd = exec.Command(bin, "--config.file="+cfg, "--state.file="+state, "--web.listen-address="+addr, "--retention.months=13")
	x.cmd.Env = append(os.Environ(), "SCALE_KEY=scale-key")
	x.cmd.Stdout, x.cmd.Stderr = x.logs, x.logs
	x.started = time.Now()
	if err := x.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if x.cmd.ProcessState == nil {
			_ = x.cmd.Process.Kill()
			_ = x.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("exporter output:\n%s", x.logs)
		}
	})
	return x
}

// waitFor polls path until it answers 200 (and ok accepts the body), and
// returns the time since the process started.
func (x *scaleExporter) waitFor(t *testing.T, path string, ok func([]byte) bool) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(x.base + path)
		if err != nil {
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && (ok == nil || ok(body)) {
			return time.Since(x.started)
		}
	}
	t.Fatalf("%s not answered within 2 minutes", path)
	return 0
}

// scrape fetches /metrics as Prometheus does, compressed.
func (x *scaleExporter) scrape() ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, x.base+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// dataSeries counts the series of the data and history families.
func (x *scaleExporter) dataSeries(t *testing.T) int {
	t.Helper()
	body, err := get(x.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(string(body), "\n") {
		for _, fam := range []string{"cloudcarbon_emissions_grams{", "cloudcarbon_energy_joules{", "cloudcarbon_history_emissions_grams{", "cloudcarbon_history_energy_joules{"} {
			if strings.HasPrefix(line, fam) {
				n++
			}
		}
	}
	return n
}

func (x *scaleExporter) statusKB(t *testing.T, field string) int64 {
	t.Helper()
	kb := procStatusKB(x.cmd.Process.Pid, field)
	if kb == 0 {
		t.Fatalf("no %s in /proc/%d/status", field, x.cmd.Process.Pid)
	}
	return kb
}

func (x *scaleExporter) stop(t *testing.T) {
	t.Helper()
	_ = x.cmd.Process.Signal(os.Interrupt)
	if err := x.cmd.Wait(); err != nil {
		t.Errorf("exporter exit: %v", err)
	}
}

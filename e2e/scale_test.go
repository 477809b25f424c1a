//go:build e2e && scale

// The scale tests run the real binary, with the default flags a user
// gets, against an IBM Carbon Calculator fake holding an enterprise whose
// every month the default retention keeps has data: 240 accounts (about
// 100k series, `make scale-test`) and 2,400 accounts (about 1M series,
// `make scale-test-1m`). Each measures the cold start until every kept
// month is stored, the memory through it and through scrapes, the state
// file, and a warm restart from that file, and prints one row of the
// README's table.
//
// CLOUDCARBON_SCALE_BIN measures another build of the exporter (an
// earlier release, for a before and after on one machine);
// CLOUDCARBON_SCALE_MONTHS sets how many months the fake holds and
// CLOUDCARBON_SCALE_LATENCY what it adds to every API response.
package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
)

// defaultRetention is --retention.months' default: the exporter keeps
// that many months before the latest closed one, and that one.
const defaultRetention = 38

// scaleCase is one size of estate and what it must stay within.
type scaleCase struct {
	accounts int
	// scrapes are made after the cold start, before VmHWM is read.
	scrapes int
	// Bounds: VmHWM through the cold start and the scrapes, VmRSS after
	// the warm restart and 20 scrapes, the warm restart to the first
	// full scrape, the state file.
	maxHWM, maxSteady int64 // kB
	maxWarm           time.Duration
	maxState          int64 // bytes
}

func TestScale(t *testing.T) {
	runScale(t, scaleCase{accounts: 240, scrapes: 1000, maxHWM: 150 << 10, maxSteady: 150 << 10, maxWarm: time.Second, maxState: 8 << 20})
}

func TestScale1M(t *testing.T) {
	runScale(t, scaleCase{accounts: 2400, scrapes: 100, maxHWM: 600 << 10, maxSteady: 450 << 10, maxWarm: 1500 * time.Millisecond, maxState: 40 << 20})
}

// scaleResult is what one run measured.
type scaleResult struct {
	series                  int
	coldReady, coldComplete time.Duration
	coldRequests            int
	hwm, rssScraped         int64 // kB
	stateBytes              int64
	warmFirstScrape         time.Duration
	warmRequests            int
	steadyRSS, warmHWM      int64 // kB
}

func runScale(t *testing.T, c scaleCase) {
	dir := t.TempDir()
	bin := scaleBinary(t, dir)
	months := envInt(t, "CLOUDCARBON_SCALE_MONTHS", defaultRetention+1)
	latency := 50 * time.Millisecond
	if v := os.Getenv("CLOUDCARBON_SCALE_LATENCY"); v != "" {
		var err error
		if latency, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	ds := ibmfake.ScaleOver(time.Now(), c.accounts, months)
	fake := ibmfake.NewServer(ds, "scale-key")
	fake.SetLatency(latency)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("ibm:\n  - name: scale\n    api_key_env: SCALE_KEY\n    enterprise_id: %s\n    api_url: %s\n    iam_url: %s\n",
		ds.EnterpriseID, srv.URL, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")
	requests := func() int { return fake.Requests("/v1/carbon_emissions") + fake.Requests("/identity/token") }
	var r scaleResult

	// Cold start: ready once the history is fetched, complete once every
	// month the retention keeps is stored.
	cold := startScale(t, bin, cfg, state)
	r.coldReady = cold.waitReady(t)
	r.coldComplete = cold.waitMonths(t, keptMonths(cold.started))
	r.series = dataSeries(t, cold.scrape(t))
	for range c.scrapes {
		cold.scrape(t)
	}
	r.hwm, r.rssScraped = cold.statusKB(t, "VmHWM"), cold.statusKB(t, "VmRSS")
	r.coldRequests = requests()
	cold.stop(t)
	if fi, err := os.Stat(state); err == nil {
		r.stateBytes = fi.Size()
	} else {
		t.Fatal(err)
	}

	// Warm restart: the state file alone serves the first full scrape.
	warm := startScale(t, bin, cfg, state)
	warm.waitReady(t)
	first := warm.scrape(t)
	r.warmFirstScrape = time.Since(warm.started)
	warmSeries := dataSeries(t, first)
	for range 20 {
		warm.scrape(t)
	}
	r.steadyRSS, r.warmHWM = warm.statusKB(t, "VmRSS"), warm.statusKB(t, "VmHWM")
	r.warmRequests = requests() - r.coldRequests
	warm.stop(t)

	t.Logf("scale: %d accounts, %d months of data, %s per API response, %d data series", c.accounts, months, latency, r.series)
	t.Logf("cold start: /-/ready after %s, every kept month stored after %s, %d provider requests",
		r.coldReady.Round(time.Millisecond), r.coldComplete.Round(time.Millisecond), r.coldRequests)
	t.Logf("VmHWM through the cold start and %d scrapes: %d MB (VmRSS then %d MB)", c.scrapes, r.hwm>>10, r.rssScraped>>10)
	t.Logf("warm restart: first full scrape after %s, %d provider requests; after 20 scrapes VmRSS %d MB, VmHWM %d MB",
		r.warmFirstScrape.Round(time.Millisecond), r.warmRequests, r.steadyRSS>>10, r.warmHWM>>10)
	t.Logf("| series (accounts) | VmHWM cold start + %d scrapes | steady RSS after restart + 20 scrapes | warm restart to first full scrape | provider requests on restart | state file |", c.scrapes)
	t.Logf("| %s (%s) | %d MB | %d MB | %.2f s | %d | %.1f MB |", thousands(r.series), thousands(c.accounts), r.hwm>>10, r.steadyRSS>>10,
		r.warmFirstScrape.Seconds(), r.warmRequests, float64(r.stateBytes)/1e6)

	if want := 420 * c.accounts; r.series < want*95/100 {
		t.Errorf("only %d data series; %d accounts should give about %d", r.series, c.accounts, want)
	}
	if warmSeries != r.series {
		t.Errorf("warm restart serves %d data series at its first scrape, the cold start %d", warmSeries, r.series)
	}
	if r.warmRequests != 0 {
		t.Errorf("warm restart made %d provider requests, want none", r.warmRequests)
	}
	if r.hwm > c.maxHWM {
		t.Errorf("VmHWM %d MB through the cold start and %d scrapes, want at most %d MB", r.hwm>>10, c.scrapes, c.maxHWM>>10)
	}
	if r.steadyRSS > c.maxSteady {
		t.Errorf("VmRSS %d MB after the warm restart and 20 scrapes, want at most %d MB", r.steadyRSS>>10, c.maxSteady>>10)
	}
	if r.warmFirstScrape > c.maxWarm {
		t.Errorf("warm restart took %s to the first full scrape, want at most %s", r.warmFirstScrape, c.maxWarm)
	}
	if r.stateBytes > c.maxState {
		t.Errorf("state file of %.1f MB, want at most %.1f MB", float64(r.stateBytes)/1e6, float64(c.maxState)/1e6)
	}
}

// scaleBinary builds the exporter, or returns CLOUDCARBON_SCALE_BIN.
func scaleBinary(t *testing.T, dir string) string {
	t.Helper()
	if bin := os.Getenv("CLOUDCARBON_SCALE_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// thousands formats n as 105k or 1.01M.
func thousands(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return strconv.Itoa(n)
}

type scaleExporter struct {
	cmd     *exec.Cmd
	base    string
	started time.Time
	logs    *logbuf.Buffer
}

// startScale starts the exporter with the default flags but those that
// say where to find its configuration, state file and port.
func startScale(t *testing.T, bin, cfg, state string) *scaleExporter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	x := &scaleExporter{base: "http://" + addr, logs: &logbuf.Buffer{}}
	x.cmd = exec.Command(bin, "--config.file="+cfg, "--state.file="+state, "--web.listen-address="+addr)
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

// waitReady polls /-/ready, which answers once the data is rendered, and
// returns the time since the process started.
func (x *scaleExporter) waitReady(t *testing.T) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(x.base + "/-/ready")
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return time.Since(x.started)
		}
	}
	t.Fatalf("not ready within 10 minutes")
	return 0
}

// keptMonths returns how many months a cold start at now stores: those of
// the default retention window that are due, the months whose
// publication is at most refresh.PublishLead away included.
func keptMonths(now time.Time) int {
	sched := provider.Schedule{PublishDelay: ibm.PublishDelay}
	last := provider.MonthOf(now) - 1
	n := 0
	for m := last - defaultRetention; m <= last; m++ {
		if !sched.PublishedAt(m).Add(-refresh.PublishLead).After(now) {
			n++
		}
	}
	return n
}

var refreshedMonths = regexp.MustCompile(`msg=Refreshed .*\bmonths=([0-9]+)`)

// waitMonths waits until the exporter has logged refreshes of n months in
// all, which the first refreshes of an empty state file are: the history
// first, then the older months kept for reports.
func (x *scaleExporter) waitMonths(t *testing.T, n int) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sum := 0
		sc := bufio.NewScanner(strings.NewReader(x.logs.String()))
		for sc.Scan() {
			if m := refreshedMonths.FindStringSubmatch(sc.Text()); m != nil {
				k, _ := strconv.Atoi(m[1])
				sum += k
			}
		}
		if sum >= n {
			return time.Since(x.started)
		}
	}
	t.Fatalf("%d months not refreshed within 15 minutes", n)
	return 0
}

// scrape fetches /metrics as Prometheus does, compressed.
func (x *scaleExporter) scrape(t *testing.T) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, x.base+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return raw
}

// dataSeries counts the series of the data and history families in a
// compressed scrape.
func dataSeries(t *testing.T, raw []byte) int {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fam := range []string{"cloudcarbon_emissions_grams{", "cloudcarbon_energy_joules{", "cloudcarbon_history_emissions_grams{", "cloudcarbon_history_energy_joules{"} {
		n += bytes.Count(body, []byte("\n"+fam))
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

//go:build e2e

// Package e2e runs the built exporter in demo mode and has a real
// Prometheus server scrape it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CLOUDCARBON_E2E") != "" {
			t.Fatalf("%s not on PATH (on Debian: apt-get install prometheus; or run make deps)", name)
		}
		t.Skipf("%s not on PATH", name)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs a command until the test ends, with its output in the test log
// on failure.
func start(t *testing.T, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s: %s: %s", u, resp.Status, body)
	}
	return body, nil
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return v
}

func query(promURL, q string) ([]sample, error) {
	body, err := get(promURL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body)
	}
	return r.Data.Result, nil
}

func TestDemoScrapedByPrometheus(t *testing.T) {
	prometheus := need(t, "prometheus")
	promtool := need(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "..")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}

	exporter := freeAddr(t)
	startedAt := time.Now()
	start(t, bin, "--demo", "--web.listen-address="+exporter, "--log.level=debug")
	waitFor(t, "exporter readiness", time.Minute, func() error {
		_, err := get("http://" + exporter + "/-/ready")
		return err
	})

	// The full exposition passes promtool's lint.
	exposition, err := get("http://" + exporter + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	check := exec.CommandContext(ctx, promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(exposition)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	promAddr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: cloudcarbon
    static_configs:
      - targets: [%q]
`, exporter)), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	promURL := "http://" + promAddr

	var ibm []sample
	waitFor(t, "Prometheus to scrape IBM series", 90*time.Second, func() error {
		ibm, err = query(promURL, `cloudcarbon_emissions_grams{provider="ibm"}`)
		if err == nil && len(ibm) == 0 {
			err = fmt.Errorf("no series yet")
		}
		return err
	})
	for _, s := range ibm {
		for _, l := range []string{"account", "service", "location"} {
			if s.Metric[l] == "" {
				t.Errorf("series %v lacks label %s", s.Metric, l)
			}
		}
		if s.Metric["scope"] != "unspecified" {
			t.Errorf("series %v: scope %q, want unspecified", s.Metric, s.Metric["scope"])
		}
	}
	energy, err := query(promURL, `cloudcarbon_energy_joules{provider="ibm"}`)
	if err != nil || len(energy) == 0 {
		t.Fatalf("energy series: %v, %v", energy, err)
	}
	for _, s := range energy {
		if _, ok := s.Metric["scope"]; ok {
			t.Errorf("energy series %v has a scope label", s.Metric)
		}
	}

	// The latest month's total equals what the demo dataset holds.
	wantGrams, wantJoules := demo.IBMLatestTotals(startedAt)
	for _, c := range []struct {
		q    string
		want float64
	}{
		{`sum(cloudcarbon_emissions_grams{provider="ibm"})`, wantGrams},
		{`sum(cloudcarbon_energy_joules{provider="ibm"})`, wantJoules},
		{`sum(cloudcarbon_history_emissions_grams{provider="ibm",months_ago="0"})`, wantGrams},
	} {
		res, err := query(promURL, c.q)
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: %v %v", c.q, res, err)
		}
		if got := res[0].float(t); math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("%s = %v, want %v", c.q, got, c.want)
		}
	}
	up, err := query(promURL, `cloudcarbon_refresh_success{provider="ibm"} == 1`)
	if err != nil || len(up) == 0 {
		t.Errorf("refresh_success: %v %v", up, err)
	}
	months, err := query(promURL, `count(count by (month) (cloudcarbon_history_emissions_grams{provider="ibm"}))`)
	if err != nil || len(months) != 1 || months[0].float(t) != 13 {
		t.Errorf("history months: %v %v, want 13", months, err)
	}
}

// TestShutdownFlushesState runs the exporter against an in-process IBM fake,
// stops it with SIGTERM and checks that it exits cleanly having written a
// state file that a second run serves from without calling the provider.
func TestShutdownFlushesState(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ds := ibmfake.Demo(time.Now())
	fake := ibmfake.NewServer(ds, "e2e-key")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("ibm:\n  - name: acme\n    api_key_env: E2E_IBM_KEY\n    enterprise_id: %s\n    api_url: %s\n    iam_url: %s\n",
		ds.EnterpriseID, srv.URL, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")

	run := func() (addr string, stop func() (int, string)) {
		addr = freeAddr(t)
		var out bytes.Buffer
		cmd := exec.Command(bin, "--config.file="+cfg, "--state.file="+state, "--web.listen-address="+addr)
		cmd.Env = append(os.Environ(), "E2E_IBM_KEY=e2e-key")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "readiness", time.Minute, func() error {
			_, err := get("http://" + addr + "/-/ready")
			return err
		})
		return addr, func() (int, string) {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			return code, out.String()
		}
	}

	addr, stop := run()
	first, err := get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := stop(); code != 0 || !strings.Contains(out, "Shutting down") {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, out)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after shutdown: %v", err)
	}
	requests := fake.Requests("/v1/carbon_emissions")

	addr, stop = run()
	second, err := get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("second run exit code %d:\n%s", code, out)
	}
	if got := fake.Requests("/v1/carbon_emissions"); got != requests {
		t.Errorf("second run made %d provider requests, want none", got-requests)
	}
	grep := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "cloudcarbon_emissions_grams{") || strings.HasPrefix(l, "cloudcarbon_history_energy_joules{") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if g1, g2 := grep(first), grep(second); g1 == "" || g1 != g2 {
		t.Errorf("restarted exporter serves other data:\nfirst:\n%.2000s\nsecond:\n%.2000s", g1, g2)
	}
}

// TestWebConfigBasicAuth checks that --web.config.file reaches the
// exporter-toolkit server: without credentials /metrics is refused.
func TestWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webCfg, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	start(t, bin, "--demo", "--web.listen-address="+addr, "--web.config.file="+webCfg)
	status := func(user, pass string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	waitFor(t, "exporter", time.Minute, func() error { _, err := status("", ""); return err })
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"prometheus", "wrong", 401}, {"prometheus", "scrape-pass", 200}} {
		if got, err := status(c.user, c.pass); err != nil || got != c.want {
			t.Errorf("GET /metrics as %q: %d %v, want %d", c.user, got, err, c.want)
		}
	}
}

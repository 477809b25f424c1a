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
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
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

//go:build e2e

// Package e2e runs the built exporter in demo mode and has a real
// Prometheus server scrape it.
package e2e

import (
	"bytes"
	"compress/gzip"
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
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
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
	startEnv(t, nil, name, args...)
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
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

// getEncoded fetches u asking for the given Content-Encoding and returns
// the decoded body, checking that the server answered with that encoding.
func getEncoded(u, encoding string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", encoding)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Content-Encoding"); got != strings.TrimPrefix(encoding, "identity") {
		return nil, fmt.Errorf("asked for %s, got Content-Encoding %q", encoding, got)
	}
	var body io.Reader = resp.Body
	if encoding == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	return io.ReadAll(body)
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

	// The full exposition passes promtool's lint, served plain and as
	// concatenated gzip members (Prometheus itself always asks for gzip).
	for _, enc := range []string{"identity", "gzip"} {
		exposition, err := getEncoded("http://"+exporter+"/metrics", enc)
		if err != nil {
			t.Fatal(err)
		}
		check := exec.CommandContext(ctx, promtool, "check", "metrics")
		check.Stdin = bytes.NewReader(exposition)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics (%s): %v\n%s", enc, err, out)
		}
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
		var err error
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

	// The latest month's total equals what the demo dataset holds, in the
	// fake's own units.
	wantGrams, wantJoules := ibmfake.Demo(startedAt).TotalBase(ibmfake.LatestPublished(startedAt))
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
	// Azure: every scope present, each scope's total equal to the dataset's.
	azureData, azureMonth := azurefake.Demo(startedAt), azurefake.LatestMonth(startedAt)
	byScope, err := query(promURL, `sum by (scope) (cloudcarbon_emissions_grams{provider="azure"})`)
	if err != nil || len(byScope) != 3 {
		t.Fatalf("azure scopes: %v %v, want 1, 2 and 3", byScope, err)
	}
	for _, s := range byScope {
		want := azureData.TotalGrams(azureMonth, provider.Scope(s.Metric["scope"]))
		if got := s.float(t); want == 0 || math.Abs(got-want) > 1e-9*want {
			t.Errorf("azure scope %s total = %v, want %v", s.Metric["scope"], got, want)
		}
	}
	denied, err := query(promURL, `cloudcarbon_account_access_denied{provider="azure"}`)
	if err != nil || len(denied) != 1 {
		t.Errorf("denied subscriptions: %v %v, want one", denied, err)
	}

	// GCP: all four data families, totals equal to the dataset's.
	wantGCP := gcpfake.DemoLatestTotals(startedAt)
	if !wantGCP.MarketKnown {
		t.Fatal("the GCP demo's latest month has no market-based figures")
	}
	for _, c := range []struct {
		q    string
		want float64
	}{
		{`sum(cloudcarbon_emissions_grams{provider="gcp"})`, wantGCP.LocationGrams},
		{`sum(cloudcarbon_emissions_market_based_grams{provider="gcp"})`, wantGCP.MarketGrams},
		{`sum(cloudcarbon_billing_cost_usd{provider="gcp"})`, wantGCP.CostUSD},
		{`count(cloudcarbon_emissions_grams{provider="gcp"}) > 0`, -1},
	} {
		res, err := query(promURL, c.q)
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: %v %v", c.q, res, err)
		}
		if got := res[0].float(t); c.want >= 0 && math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("%s = %v, want %v", c.q, got, c.want)
		}
	}
	for _, fam := range []string{"cloudcarbon_emissions_grams", "cloudcarbon_emissions_market_based_grams"} {
		res, err := query(promURL, `count by (scope) (`+fam+`{provider="gcp"})`)
		if err != nil || len(res) != 3 {
			t.Errorf("%s scopes: %v %v, want 1, 2 and 3", fam, res, err)
		}
	}
	if res, err := query(promURL, `cloudcarbon_bigquery_bytes_processed_total{provider="gcp"} > 0`); err != nil || len(res) != 1 {
		t.Errorf("BigQuery bytes processed: %v %v", res, err)
	}

	// AWS: scopes 1, 2 and 3 in both families, each family summing to the
	// fake's location- and market-based totals; yearly water per year.
	awsData := awsfake.Demo(startedAt)
	wantLBM, wantMBM := awsData.TotalBase(awsfake.LatestPublished(startedAt))
	for _, c := range []struct {
		family string
		want   float64
	}{
		{"cloudcarbon_emissions_grams", wantLBM},
		{"cloudcarbon_emissions_market_based_grams", wantMBM},
	} {
		res, err := query(promURL, `sum by (scope) (`+c.family+`{provider="aws"})`)
		if err != nil || len(res) != 3 {
			t.Errorf("aws %s scopes: %v %v, want 1, 2 and 3", c.family, res, err)
			continue
		}
		sum := 0.0
		for _, s := range res {
			sum += s.float(t)
		}
		if math.Abs(sum-c.want) > 1e-6*c.want {
			t.Errorf("aws %s = %v, want the fake's %v", c.family, sum, c.want)
		}
	}
	water, err := query(promURL, `sum by (year) (cloudcarbon_water_yearly_cubic_meters{provider="aws"})`)
	if err != nil || len(water) == 0 {
		t.Errorf("aws yearly water: %v %v", water, err)
	}
	for _, w := range water {
		year, _ := strconv.Atoi(w.Metric["year"])
		if want := awsData.WaterTotal(year); math.Abs(w.float(t)-want) > 1e-6*want {
			t.Errorf("aws water %d = %v, want %v", year, w.float(t), want)
		}
	}

	// Scaleway: emissions (scope unspecified) and monthly water, equal to
	// the fake's totals of its latest published month.
	scw := scalewayfake.Demo(startedAt).Total(scalewayfake.LatestPublished(startedAt))
	for _, c := range []struct {
		q    string
		want float64
	}{
		{`sum(cloudcarbon_emissions_grams{provider="scaleway",scope="unspecified"})`, scw.Grams},
		{`sum(cloudcarbon_water_cubic_meters{provider="scaleway"})`, scw.CubicMeters},
	} {
		res, err := query(promURL, c.q)
		if err != nil || len(res) != 1 {
			t.Errorf("%s: %v %v", c.q, res, err)
			continue
		}
		if got := res[0].float(t); math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("%s = %v, want %v", c.q, got, c.want)
		}
	}

	// Oracle Cloud: both methods, scope unspecified, equal to the fake's
	// power-based totals of its latest published month.
	ociLocation, ociMarket := ocifake.Demo(startedAt).TotalBase(ocifake.LatestPublished(startedAt), ocifake.PowerBased)
	for _, c := range []struct {
		q    string
		want float64
	}{
		{`sum(cloudcarbon_emissions_grams{provider="oci",scope="unspecified"})`, ociLocation},
		{`sum(cloudcarbon_emissions_market_based_grams{provider="oci",scope="unspecified"})`, ociMarket},
	} {
		res, err := query(promURL, c.q)
		if err != nil || len(res) != 1 {
			t.Errorf("%s: %v %v", c.q, res, err)
			continue
		}
		if got := res[0].float(t); math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("%s = %v, want %v", c.q, got, c.want)
		}
	}

	up, err := query(promURL, `count(cloudcarbon_refresh_success == 1)`)
	if err != nil || len(up) != 1 || up[0].float(t) != 6 {
		t.Errorf("sources refreshed successfully: %v %v, want 6", up, err)
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
		// Retention as long as the history: the months kept only for
		// reports are fetched after readiness, which the first run may not
		// reach before it is stopped.
		cmd := exec.Command(bin, "--config.file="+cfg, "--state.file="+state, "--web.listen-address="+addr, "--retention.months=13")
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
	status := func(path, user, pass string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
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
	waitFor(t, "exporter", time.Minute, func() error { _, err := status("/metrics", "", ""); return err })
	// The report is behind the same authentication as the metrics.
	for _, path := range []string{"/metrics", "/report?period=year&format=csv"} {
		for _, c := range []struct {
			user, pass string
			want       int
		}{{"", "", 401}, {"prometheus", "wrong", 401}, {"prometheus", "scrape-pass", 200}} {
			if got, err := status(path, c.user, c.pass); err != nil || got != c.want {
				t.Errorf("GET %s as %q: %d %v, want %d", path, c.user, got, err, c.want)
			}
		}
	}
}

// series queries Prometheus for every cloudcarbon series of a job and
// returns them as "name{labels}" without job and instance, which name the
// path the data took.
func series(promURL, job string) map[string]bool {
	res, err := query(promURL, fmt.Sprintf(`{__name__=~"cloudcarbon_.+",job=%q}`, job))
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, s := range res {
		var kv []string
		for k, v := range s.Metric {
			if k != "__name__" && k != "job" && k != "instance" {
				kv = append(kv, k+"="+v)
			}
		}
		sort.Strings(kv)
		out[s.Metric["__name__"]+"{"+strings.Join(kv, ",")+"}"] = true
	}
	return out
}

// TestOTLPThroughCollector pushes the demo over OTLP through a real
// OpenTelemetry Collector into Prometheus' remote-write receiver, and
// compares what arrives with what the same Prometheus scraped.
func TestOTLPThroughCollector(t *testing.T) {
	prometheus := need(t, "prometheus")
	otelcol := os.Getenv("OTELCOL")
	if otelcol == "" {
		if os.Getenv("CLOUDCARBON_E2E") != "" {
			t.Fatal("OTELCOL is not set: build the collector with tools/otelcol/build.sh (make e2e does)")
		}
		t.Skip("OTELCOL is not set")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	exporter, promAddr, otlpAddr := freeAddr(t), freeAddr(t), freeAddr(t)

	promCfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promCfg, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: cloudcarbon
    static_configs:
      - targets: [%q]
`, exporter))
	start(t, prometheus, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--web.enable-remote-write-receiver")

	colCfg := filepath.Join(dir, "otelcol.yml")
	writeFile(t, colCfg, fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
exporters:
  prometheusremotewrite:
    endpoint: http://%s/api/v1/write
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite]
`, otlpAddr, promAddr))
	start(t, otelcol, "--config=file:"+colCfg)

	startEnv(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpAddr,
		"OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
	}, bin, "--demo", "--otlp.enable", "--web.listen-address="+exporter)

	promURL := "http://" + promAddr
	var scraped, pushed map[string]bool
	waitFor(t, "the same series over both paths", 2*time.Minute, func() error {
		scraped, pushed = series(promURL, "cloudcarbon"), series(promURL, "cloudcarbon_exporter")
		if len(scraped) == 0 || len(pushed) == 0 {
			return fmt.Errorf("scraped %d series, pushed %d", len(scraped), len(pushed))
		}
		for k := range scraped {
			if !pushed[k] {
				var like []string
				for p := range pushed {
					if name, _, _ := strings.Cut(k, "{"); strings.HasPrefix(p, name+"{") && len(like) < 3 {
						like = append(like, p)
					}
				}
				return fmt.Errorf("scraped but not pushed: %s; pushed series of that name include %v", k, like)
			}
		}
		for k := range pushed {
			if !scraped[k] {
				return fmt.Errorf("pushed but not scraped: %s", k)
			}
		}
		return nil
	})
	// Values agree too, for the data families.
	for _, q := range []string{`sum(cloudcarbon_emissions_grams{job="%s"})`, `sum(cloudcarbon_history_energy_joules{job="%s"})`} {
		a, errA := query(promURL, fmt.Sprintf(q, "cloudcarbon"))
		b, errB := query(promURL, fmt.Sprintf(q, "cloudcarbon_exporter"))
		if errA != nil || errB != nil || len(a) != 1 || len(b) != 1 || a[0].float(t) != b[0].float(t) {
			t.Errorf("%s: scraped %v, pushed %v (%v %v)", q, a, b, errA, errB)
		}
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
)

// examplePrometheusConfig is examples/prometheus.yml scraping exporter
// every second, with the rule path made absolute.
func examplePrometheusConfig(t *testing.T, exporter string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join("..", "dashboards", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, r := range [][2]string{
		{`"localhost:9874"`, fmt.Sprintf("%q", exporter)},
		{"scrape_interval: 1m", "scrape_interval: 1s"},
		{"scrape_timeout: 30s", "scrape_timeout: 1s"},
		{"../dashboards/rules/", rules + "/"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("examples/prometheus.yml no longer holds %s: update this test", r[0])
		}
		cfg = strings.ReplaceAll(cfg, r[0], r[1])
	}
	return cfg
}

// dashboardOTLPSink accepts every OTLP export, so that the exporter's OTLP
// self-metrics (pushes, last success) have values for the health dashboard.
type dashboardOTLPSink struct {
	colmetricpb.UnimplementedMetricsServiceServer
}

func (dashboardOTLPSink) Export(context.Context, *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// dashboardPanel is the part of a Grafana panel the test reads; rows hold
// their panels when collapsed.
type dashboardPanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardQuery struct {
	file, panel, refID, expr string
}

// dashboardQueries lists every panel query of a dashboard file, and the
// selector of every label_values() variable query.
func dashboardQueries(t *testing.T, file string) []dashboardQuery {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	name := filepath.Base(file)
	var out []dashboardQuery
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, q := range p.Targets {
				out = append(out, dashboardQuery{name, p.Title, q.RefID, q.Expr})
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.*), *[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			out = append(out, dashboardQuery{name, "variable " + v.Name, "", m[1]})
		}
	}
	return out
}

// substituteDashboardVars replaces Grafana variables as "All" does: filters
// with .*, the interval variables with a minute, the dashboard's month
// (its end, ${__to:date:YYYY-MM}) with this one.
func substituteDashboardVars(expr string) string {
	expr = strings.ReplaceAll(expr, "${__to:date:YYYY-MM}", time.Now().UTC().Format("2006-01"))
	for _, iv := range []string{"__rate_interval", "__interval", "__range"} {
		expr = strings.ReplaceAll(expr, "${"+iv+"}", "1m")
		expr = strings.ReplaceAll(expr, "$"+iv, "1m")
	}
	return regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?`).ReplaceAllString(expr, ".*")
}

// TestDashboardQueries has a real Prometheus scrape the exporter in demo
// mode (OTLP on, into an in-test receiver) and checks that every query of
// every bundled dashboard returns at least one series.
func TestDashboardQueries(t *testing.T) {
	prometheus := need(t, "prometheus")
	files, err := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, dashboardOTLPSink{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop) // after the exporter's final push: cleanups run last-in first-out

	exporter := freeAddr(t)
	startEnv(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + l.Addr().String(),
		"OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
	}, bin, "--demo", "--otlp.enable", "--web.listen-address="+exporter)
	waitFor(t, "exporter readiness", time.Minute, func() error {
		_, err := get("http://" + exporter + "/-/ready")
		return err
	})

	// Prometheus runs the example configuration, rules included, scraping
	// every second.
	promAddr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfg, examplePrometheusConfig(t, exporter))
	start(t, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	promURL := "http://" + promAddr
	waitFor(t, "the example's rules to load", time.Minute, func() error {
		body, err := get(promURL + "/api/v1/rules")
		if err == nil && !strings.Contains(string(body), `"rules":[{`) {
			err = fmt.Errorf("no rules loaded: %.300s", body)
		}
		return err
	})

	// Enough scrapes for increase() and rate() over the substituted minute,
	// and an OTLP push that succeeded.
	for _, c := range []struct{ what, q string }{
		{"five scrapes", `min(count_over_time(cloudcarbon_refresh_success[1m])) >= 5`},
		{"a successful OTLP push", `cloudcarbon_otlp_last_push_success_timestamp_seconds > 0`},
	} {
		waitFor(t, c.what, 90*time.Second, func() error {
			res, err := query(promURL, c.q)
			if err == nil && len(res) == 0 {
				err = fmt.Errorf("%s: no result yet", c.q)
			}
			return err
		})
	}

	var failed []string
	for _, file := range files {
		for _, q := range dashboardQueries(t, file) {
			expr := substituteDashboardVars(q.expr)
			res, err := query(promURL, expr)
			switch {
			case err != nil:
				t.Errorf("%s, panel %q, query %s: %v\n%s", q.file, q.panel, q.refID, err, expr)
			case len(res) == 0:
				t.Errorf("%s, panel %q, query %s: no series\n%s", q.file, q.panel, q.refID, expr)
			default:
				continue
			}
			failed = append(failed, fmt.Sprintf("%s / %s / %s", q.file, q.panel, q.refID))
		}
	}
	if len(failed) > 0 {
		t.Logf("queries without data:\n  %s", strings.Join(failed, "\n  "))
	}
}

// TestDashboardExampleOTelCollector runs examples/otelcol.yml (endpoints
// moved to free ports) between the exporter's OTLP push and Prometheus'
// remote-write receiver, and checks that the pushed series arrive under the
// names the dashboards query.
func TestDashboardExampleOTelCollector(t *testing.T) {
	prometheus := need(t, "prometheus")
	otelcol := os.Getenv("OTELCOL")
	if otelcol == "" {
		t.Skip("OTELCOL is not set (make e2e sets it; tools/otelcol/build.sh builds the collector)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	exporter, promAddr, otlpAddr := freeAddr(t), freeAddr(t), freeAddr(t)

	promCfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promCfg, "global:\n  scrape_interval: 1s\n")
	start(t, prometheus, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--web.enable-remote-write-receiver")

	raw, err := os.ReadFile(filepath.Join("..", "examples", "otelcol.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, r := range [][2]string{
		{"endpoint: 0.0.0.0:4317", "endpoint: " + otlpAddr},
		{"endpoint: http://localhost:9090/api/v1/write", "endpoint: http://" + promAddr + "/api/v1/write"},
		// No telemetry port: other collectors may run on this host.
		{"\nservice:\n", "\nservice:\n  telemetry:\n    metrics:\n      level: none\n"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("examples/otelcol.yml no longer holds %q: update this test", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	colCfg := filepath.Join(dir, "otelcol.yml")
	writeFile(t, colCfg, cfg)
	start(t, otelcol, "--config=file:"+colCfg)

	startEnv(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpAddr,
		"OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
	}, bin, "--demo", "--otlp.enable", "--web.listen-address="+exporter)

	promURL := "http://" + promAddr
	for _, q := range []string{
		`count by (provider) (cloudcarbon_emissions_grams{job="cloudcarbon_exporter"})`,
		`cloudcarbon_history_emissions_grams{job="cloudcarbon_exporter",months_ago="0"}`,
		`cloudcarbon_refresh_success{job="cloudcarbon_exporter"}`,
		`cloudcarbon_api_requests_total{job="cloudcarbon_exporter"}`,
	} {
		waitFor(t, q, 2*time.Minute, func() error {
			res, err := query(promURL, q)
			if err == nil && len(res) == 0 {
				err = fmt.Errorf("no series yet")
			}
			return err
		})
	}
}

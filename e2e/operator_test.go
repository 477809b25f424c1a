//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
)

// The Kubernetes objects the Operator would discover for the chart's
// ServiceMonitor: release cc in namespace carbon.
const (
	operatorNamespace = "carbon"
	operatorService   = "cc-cloudcarbon-exporter"
	operatorPod       = "cc-cloudcarbon-exporter-6f7c9d8b5-x2k4q"
	operatorPort      = "http"
	// copyJob scrapes the same exporter a second time, as a second
	// ServiceMonitor or a hand-written scrape job would.
	copyJob = "cloudcarbon"
)

// chartMonitorValues reads the ServiceMonitor settings the chart installs
// by default.
func chartMonitorValues(t *testing.T) (honorLabels bool, jobLabel string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "helm", "cloudcarbon-exporter", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ServiceMonitor struct {
			HonorLabels bool   `yaml:"honorLabels"`
			JobLabel    string `yaml:"jobLabel"`
		} `yaml:"serviceMonitor"`
	}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v.ServiceMonitor.HonorLabels, v.ServiceMonitor.JobLabel
}

// metaLabel is the Kubernetes service discovery's name for a label of the
// Service: every character that may not be in a label name becomes _.
func metaLabel(prefix, label string) string {
	return prefix + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(label, "_")
}

// operatorScrapeConfig is the scrape job the Prometheus Operator generates
// for the chart's ServiceMonitor endpoint, with the exporter as a static
// target that carries the meta labels Kubernetes endpoints discovery
// would give it, and a second job scraping the same exporter.
func operatorScrapeConfig(exporter, rules string, honorLabels bool, jobLabel string) string {
	selector := map[string]string{
		"app.kubernetes.io/name":      "cloudcarbon-exporter",
		"app.kubernetes.io/instance":  "cc",
		"app.kubernetes.io/component": "metrics",
	}
	meta := map[string]string{
		"__meta_kubernetes_namespace":                          operatorNamespace,
		"__meta_kubernetes_service_name":                       operatorService,
		"__meta_kubernetes_pod_name":                           operatorPod,
		"__meta_kubernetes_pod_container_name":                 "exporter",
		"__meta_kubernetes_pod_phase":                          "Running",
		"__meta_kubernetes_endpoint_port_name":                 operatorPort,
		"__meta_kubernetes_endpoint_address_target_kind":       "Pod",
		"__meta_kubernetes_endpoint_address_target_name":       operatorPod,
		"__meta_kubernetes_service_label_helm_sh_chart":        "cloudcarbon-exporter-0.2.0",
		"__meta_kubernetes_service_labelpresent_helm_sh_chart": "true",
	}
	var keep strings.Builder
	for _, l := range slices.Sorted(maps.Keys(selector)) {
		meta[metaLabel("__meta_kubernetes_service_label_", l)] = selector[l]
		meta[metaLabel("__meta_kubernetes_service_labelpresent_", l)] = "true"
		fmt.Fprintf(&keep, `      - action: keep
        source_labels: [%s, %s]
        regex: (%s);true
`, metaLabel("__meta_kubernetes_service_label_", l), metaLabel("__meta_kubernetes_service_labelpresent_", l), regexp.QuoteMeta(selector[l]))
	}
	var labels strings.Builder
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		fmt.Fprintf(&labels, "          %s: %q\n", k, meta[k])
	}
	job := ""
	if jobLabel != "" {
		job = fmt.Sprintf(`      - source_labels: [%s]
        target_label: job
        regex: (.+)
        replacement: ${1}
`, metaLabel("__meta_kubernetes_service_label_", jobLabel))
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: serviceMonitor/%s/%s/0
    honor_labels: %v
    static_configs:
      - targets: [%q]
        labels:
%s    relabel_configs:
      - source_labels: [job]
        target_label: __tmp_prometheus_job_name
%s      - action: keep
        source_labels: [__meta_kubernetes_endpoint_port_name]
        regex: %s
      - source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
        separator: ;
        regex: Node;(.*)
        replacement: ${1}
        target_label: node
      - source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
        separator: ;
        regex: Pod;(.*)
        replacement: ${1}
        target_label: pod
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_service_name]
        target_label: service
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_container_name]
        target_label: container
      - action: drop
        source_labels: [__meta_kubernetes_pod_phase]
        regex: (Failed|Succeeded)
      - source_labels: [__meta_kubernetes_service_name]
        target_label: job
        replacement: ${1}
%s      - target_label: endpoint
        replacement: %s
  - job_name: %s
    static_configs:
      - targets: [%q]
`, rules, operatorNamespace, operatorService, honorLabels, exporter, labels.String(), keep.String(), operatorPort, job, operatorPort, copyJob, exporter)
}

// TestOperatorServiceMonitor has real Prometheus servers scrape the demo as
// the Prometheus Operator scrapes the chart's ServiceMonitor: the target
// labels namespace, service, pod, container, endpoint and job that its
// relabeling adds, honor_labels as the chart's values say, and the bundled
// rules loaded. A second job scrapes the same exporter again. Every
// dashboard query and recording rule must return data whose service label
// is a cloud service, and count each series once.
//
// A second Prometheus scrapes with honor_labels false, as before the chart
// set honorLabels: the checks must find the Kubernetes Service's name in
// place of the cloud services, or they would prove nothing.
func TestOperatorServiceMonitor(t *testing.T) {
	prometheus := need(t, "prometheus")
	honor, jobLabel := chartMonitorValues(t)
	rulesFile, err := filepath.Abs("../dashboards/rules/cloudcarbon.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// OTLP on, into a sink, so that the OTLP panels have data.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, dashboardOTLPSink{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
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

	// Both servers run at once: one with the chart's settings, one
	// without honor_labels.
	promURLs := map[bool]string{}
	for _, h := range []bool{honor, false} {
		if _, started := promURLs[h]; started {
			continue
		}
		addr := freeAddr(t)
		cfg := filepath.Join(dir, fmt.Sprintf("prometheus-%v.yml", h))
		writeFile(t, cfg, operatorScrapeConfig(exporter, rulesFile, h, jobLabel))
		start(t, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("tsdb-%v", h)),
			"--web.listen-address="+addr)
		promURLs[h] = "http://" + addr
	}
	for h, promURL := range promURLs {
		for _, c := range []struct{ what, q string }{
			{"five scrapes of both jobs", `count(min by (job) (count_over_time(cloudcarbon_refresh_success[1m])) >= 5) == 2`},
			{"a successful OTLP push", `cloudcarbon_otlp_last_push_success_timestamp_seconds > 0`},
			{"the recording rules", `provider_service:cloudcarbon_emissions_grams_per_usd:ratio`},
		} {
			waitFor(t, fmt.Sprintf("%s (honor_labels %v)", c.what, h), 90*time.Second, func() error {
				res, err := query(promURL, c.q)
				if err == nil && len(res) == 0 {
					err = fmt.Errorf("%s: no result yet", c.q)
				}
				return err
			})
		}
	}

	// The cloud services, as the exporter serves them.
	body, err := get("http://" + exporter + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	// The cloud services, and the families that carry them (the data
	// families), as the exporter serves them. Its other families have no
	// service label: on those the Operator's service target label (the
	// Kubernetes Service) is right.
	services, families := map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(cloudcarbon_[a-z0-9_]+)\{[^}]*\bservice="([^"]*)"`).FindAllStringSubmatch(string(body), -1) {
		families[m[1]] = true
		services[m[2]] = true
	}
	if len(services) < 5 || services[operatorService] || !families["cloudcarbon_emissions_grams"] {
		t.Fatalf("the demo's cloud services: %v in %v", services, families)
	}

	if problems := operatorProblems(t, promURLs[honor], services, families); len(problems) > 0 {
		t.Errorf("scraped as the Operator does with honor_labels %v (the chart's honorLabels), %d problems, such as:\n  %s",
			honor, len(problems), strings.Join(problems[:min(30, len(problems))], "\n  "))
	}
	if !honor {
		return // the chart's setting is the broken one; the check failed above
	}
	problems := operatorProblems(t, promURLs[false], services, families)
	lost := false
	for _, p := range problems {
		lost = lost || strings.Contains(p, "exported_service") || strings.Contains(p, operatorService)
	}
	if !lost {
		t.Errorf("with honor_labels false the checks find no lost service label; problems: %v", problems)
	}
	t.Logf("with honor_labels false, as it should, the check finds %d problems, such as:\n  %s", len(problems), strings.Join(problems[:min(5, len(problems))], "\n  "))
}

// operatorProblems runs every dashboard query and recording rule against a
// Prometheus and lists what is wrong: no data, a service label that is not
// a cloud service on a data family or an aggregation of one, an
// exported_* label (a clash lost), or a total that counts the second job's
// copy.
func operatorProblems(t *testing.T, promURL string, services, families map[string]bool) []string {
	t.Helper()
	var problems []string
	check := func(what, expr string) {
		res, err := query(promURL, expr)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			return
		case len(res) == 0:
			problems = append(problems, fmt.Sprintf("%s: no data: %s", what, expr))
			return
		}
		// One problem of each kind per query: the first series that has it.
		var clash, foreign bool
		for _, s := range res {
			for k := range s.Metric {
				if strings.HasPrefix(k, "exported_") && !clash {
					clash = true
					problems = append(problems, fmt.Sprintf("%s: label %s: a clash with a target label: %v", what, k, s.Metric))
				}
			}
			name, raw := s.Metric["__name__"]
			if svc, ok := s.Metric["service"]; ok && (!raw || families[name]) && !services[svc] && !foreign {
				foreign = true
				problems = append(problems, fmt.Sprintf("%s: service %q is not a cloud service: %s", what, svc, expr))
			}
		}
	}

	files, err := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, file := range files {
		for _, q := range dashboardQueries(t, file) {
			check(fmt.Sprintf("%s / %s / %s", q.file, q.panel, q.refID), substituteDashboardVars(q.expr))
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "dashboards", "rules", "cloudcarbon.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				check("recording rule "+r.Record, r.Record)
			}
		}
	}

	// The service variable and the per-service panels list every cloud
	// service.
	res, err := query(promURL, `count by (service) ({__name__=~"`+strings.Join(slices.Sorted(maps.Keys(families)), "|")+`"})`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range res {
		got[s.Metric["service"]] = true
	}
	for svc := range services {
		if !got[svc] {
			problems = append(problems, fmt.Sprintf("cloud service %q is not a value of the service label", svc))
		}
	}

	// Scraped by two jobs, every total is one copy's.
	for _, c := range []struct{ rule, one string }{
		{"provider:cloudcarbon_emissions_grams:sum", `sum by (provider) (cloudcarbon_emissions_grams{job="` + copyJob + `"})`},
		{"provider_scope:cloudcarbon_emissions_grams:sum", `sum by (provider, scope) (cloudcarbon_emissions_grams{job="` + copyJob + `"})`},
		{"provider:cloudcarbon_billing_cost_usd:sum", `sum by (provider) (cloudcarbon_billing_cost_usd{job="` + copyJob + `"})`},
	} {
		expr := fmt.Sprintf(`count(abs(%s - on (%s) %s) > 1e-6 * abs(%s)) or vector(0)`, c.rule, byLabels(c.one), c.one, c.rule)
		res, err := query(promURL, expr)
		if err != nil || len(res) != 1 || res[0].float(t) != 0 {
			problems = append(problems, fmt.Sprintf("%s differs from one job's %s: %v %v", c.rule, c.one, res, err))
		}
		if n1, n2 := count(t, promURL, c.rule), count(t, promURL, c.one); n1 != n2 || n1 == 0 {
			problems = append(problems, fmt.Sprintf("%s has %d series, one job's sum %d", c.rule, n1, n2))
		}
	}
	return problems
}

// byLabels returns the labels of a "sum by (…) (…)" expression.
func byLabels(expr string) string {
	m := regexp.MustCompile(`by \(([^)]*)\)`).FindStringSubmatch(expr)
	return m[1]
}

func count(t *testing.T, promURL, expr string) int {
	t.Helper()
	res, err := query(promURL, expr)
	if err != nil {
		t.Fatal(err)
	}
	return len(res)
}

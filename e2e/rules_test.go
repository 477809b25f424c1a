//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestRulesOnDemo loads the bundled rules into a real Prometheus that
// scrapes the exporter in demo mode and checks that every recording rule
// yields series: the expressions name real metrics and labels.
func TestRulesOnDemo(t *testing.T) {
	prometheus := need(t, "prometheus")
	rulesFile, err := filepath.Abs("../dashboards/rules/cloudcarbon.rules.yml")
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
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	exporter, promAddr := freeAddr(t), freeAddr(t)
	start(t, bin, "--demo", "--web.listen-address="+exporter)
	cfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfg, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: cloudcarbon
    static_configs:
      - targets: [%q]
`, rulesFile, exporter))
	start(t, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	promURL := "http://" + promAddr

	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			waitFor(t, "recording rule "+r.Record, time.Minute, func() error {
				res, err := query(promURL, r.Record)
				if err == nil && len(res) == 0 {
					err = fmt.Errorf("no series")
				}
				return err
			})
		}
	}
	// No alert fires on the demo data but the informational ones it is
	// built to show (a denied Azure subscription).
	res, err := query(promURL, `ALERTS{alertstate="firing"}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res {
		if !strings.HasPrefix(s.Metric["alertname"], "CloudCarbonAccessDenied") {
			t.Errorf("alert fires on demo data: %v", s.Metric)
		}
	}
}

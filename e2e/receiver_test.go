//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// dataFamilies are the exporter's data families: what the receiver must
// emit name for name, label for label and value for value.
func dataFamilies() []string {
	names := []string{"cloudcarbon_water_yearly_cubic_meters", "cloudcarbon_account_info", "cloudcarbon_account_access_denied"}
	for _, qi := range provider.Quantities() {
		names = append(names, "cloudcarbon_"+qi.Family, "cloudcarbon_history_"+qi.Family)
	}
	return names
}

// scraped is one scrape: per family, its help, type and values by label
// set.
type scraped map[string]family

type family struct {
	help   string
	typ    dto.MetricType
	series map[string]float64
}

func scrapeText(u string) (scraped, error) {
	body, err := get(u)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := scraped{}
	for name, mf := range fams {
		f := family{help: mf.GetHelp(), typ: mf.GetType(), series: map[string]float64{}}
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(kv)
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			f.series["{"+strings.Join(kv, ",")+"}"] = v
		}
		out[name] = f
	}
	return out, nil
}

// sameData reports the first difference between the data families of the
// exporter's scrape and the Collector's.
func sameData(exporter, collector scraped) error {
	for _, name := range dataFamilies() {
		want, got := exporter[name], collector[name]
		if len(want.series) == 0 {
			return fmt.Errorf("the exporter's demo serves no %s", name)
		}
		if got.help != want.help || got.typ != want.typ {
			return fmt.Errorf("%s: the Collector serves help %q, type %v; the exporter %q, %v", name, got.help, got.typ, want.help, want.typ)
		}
		for _, k := range slices.Sorted(maps.Keys(want.series)) {
			v, ok := got.series[k]
			if !ok {
				return fmt.Errorf("%s%s: the exporter serves it, the Collector does not (%d of %d series)", name, k, len(got.series), len(want.series))
			}
			if v != want.series[k] {
				return fmt.Errorf("%s%s: the Collector serves %v, the exporter %v", name, k, v, want.series[k])
			}
		}
		for k := range got.series {
			if _, ok := want.series[k]; !ok {
				return fmt.Errorf("%s%s: the Collector serves it, the exporter does not", name, k)
			}
		}
	}
	return nil
}

// providersOf lists the clouds a family's series name.
func providersOf(f family) []string {
	seen := map[string]bool{}
	for k := range f.series {
		for _, kv := range strings.Split(strings.Trim(k, "{}"), ",") {
			if p, ok := strings.CutPrefix(kv, "provider="); ok {
				seen[p] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// TestReceiverInCollector runs the Collector that the official builder
// made with the cloudcarbon receiver (tools/otelcol/build-receiver.sh) on
// the demo configuration of examples/, scrapes its Prometheus exporter and
// compares the data families with the exporter's own demo /metrics, for
// every cloud. It then restarts the Collector on the same file_storage
// directory: the restarted receiver serves the same data without a single
// provider request.
func TestReceiverInCollector(t *testing.T) {
	otelcol := os.Getenv("OTELCOL_RECEIVER")
	if otelcol == "" {
		if os.Getenv("CLOUDCARBON_E2E") != "" {
			t.Fatal("OTELCOL_RECEIVER is not set: build the collector with tools/otelcol/build-receiver.sh (make e2e does)")
		}
		t.Skip("OTELCOL_RECEIVER is not set")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	exporterAddr := freeAddr(t)
	start(t, bin, "--demo", "--web.listen-address="+exporterAddr)
	var exporter scraped
	waitFor(t, "the exporter's demo", time.Minute, func() error {
		if _, err := get("http://" + exporterAddr + "/-/ready"); err != nil {
			return err
		}
		var err error
		exporter, err = scrapeText("http://" + exporterAddr + "/metrics")
		return err
	})
	if got := providersOf(exporter["cloudcarbon_emissions_grams"]); len(got) != 6 {
		t.Fatalf("the exporter's demo serves emissions of %v, want six clouds", got)
	}

	storageDir := filepath.Join(dir, "storage")
	promAddr := freeAddr(t)
	run := func() (stop func() string) {
		var out bytes.Buffer
		cmd := exec.Command(otelcol, "--config=file:../examples/otelcol-cloudcarbon-demo.yaml",
			// The other Collector of the end-to-end tests may hold the
			// default telemetry port.
			"--set=service::telemetry::metrics::level=none")
		cmd.Env = append(os.Environ(), "CLOUDCARBON_STORAGE_DIR="+storageDir, "CLOUDCARBON_PROMETHEUS_ENDPOINT="+promAddr)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop = func() string {
			if !stopped {
				stopped = true
				_ = cmd.Process.Signal(syscall.SIGTERM)
				if err := cmd.Wait(); err != nil {
					t.Errorf("the Collector exited with %v", err)
				}
			}
			return out.String()
		}
		t.Cleanup(func() {
			if log := stop(); t.Failed() {
				t.Logf("Collector output:\n%s", log)
			}
		})
		return stop
	}

	compare := func(what string) scraped {
		var collector scraped
		waitFor(t, what, 2*time.Minute, func() error {
			var err error
			if collector, err = scrapeText("http://" + promAddr + "/metrics"); err != nil {
				return err
			}
			return sameData(exporter, collector)
		})
		return collector
	}

	stop := run()
	first := compare("the Collector to serve the exporter's demo data")
	t.Logf("the Collector serves the exporter's %d data families for %v", len(dataFamilies()), providersOf(first["cloudcarbon_emissions_grams"]))
	if requests := first["cloudcarbon_api_requests_total"].series; len(requests) == 0 {
		t.Fatal("the first run counts no provider request")
	}
	if log := stop(); !strings.Contains(log, "DEMO MODE") {
		t.Fatalf("the Collector did not run the demo:\n%s", log)
	}

	stop = run()
	compare("the restarted Collector to serve the same data")
	// The refreshers plan as soon as they start; a moment more shows that
	// none found a month to fetch.
	time.Sleep(2 * time.Second)
	second, err := scrapeText("http://" + promAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if len(second["cloudcarbon_refreshes_total"].series) != 6 {
		t.Fatalf("the restarted Collector serves refreshes of %d sources, want 6", len(second["cloudcarbon_refreshes_total"].series))
	}
	for k, v := range second["cloudcarbon_api_requests_total"].series {
		if v != 0 {
			t.Errorf("the restarted Collector made provider requests: cloudcarbon_api_requests_total%s %v", k, v)
		}
	}
	if err := sameData(exporter, second); err != nil {
		t.Error(err)
	}
	stop()
}

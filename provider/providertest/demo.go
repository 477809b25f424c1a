package providertest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/demogolden"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

var update = flag.Bool("update", false, "rewrite the cloud's demo golden file, testdata/demo.prom")

// checkDemo runs the cloud's demo as --demo does, at demogolden.Time(), and
// compares the series it exposes with the cloud's golden file: the
// cloud's own part of the exporter's demo exposition, which the exporter's
// test checks against these files.
func checkDemo(t *testing.T, c Cloud, out *outputs) {
	if c.Plugin.Demo == nil {
		t.Skipf("%s has no demo", c.Plugin.Name)
	}
	d, err := c.Plugin.Demo(t.Context(), demogolden.Time(), out.logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	text, err := yaml.Marshal(map[string]any{c.Plugin.Name: d.Entries})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(text, "demo", func(string) string { return "" }, []provider.Plugin{c.Plugin})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := refresh.NewMetrics(reg, []provider.Plugin{c.Plugin})
	var st *store.Store
	expo := exposition.New(demogolden.History, func() *store.Snapshot { return st.Snapshot() }, out.logger,
		exposition.WithSchedules(map[string]provider.Schedule{c.Plugin.Name: c.Plugin.Schedule}))
	st = store.New(store.Options{Registerer: reg, Logger: out.logger, OnData: expo.Refresh})
	reg.MustRegister(expo.Freshness())
	var sources []refresh.Source
	for _, src := range cfg.Sources {
		name := src.Name()
		p, err := src.Config.New(t.Context(), provider.Env{
			Name: name, Logger: out.logger, Observe: metrics.RequestObserver(src.Provider, name),
			Counters: metrics.Counters(src.Provider, name), Connection: d.Connections[name],
		})
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, refresh.NewSource(name, src.Config, p))
	}
	m := refresh.NewManager(st, metrics, out.logger)
	m.Apply(t.Context(), sources, refresh.Options{
		Interval: cfg.Refresh.Interval, IdleInterval: cfg.Refresh.IdleInterval, Timeout: cfg.Refresh.Timeout,
		BackoffMin: cfg.Refresh.BackoffMin, BackoffMax: cfg.Refresh.BackoffMax, MaxConcurrency: cfg.Refresh.MaxConcurrency,
		History: demogolden.History, Retention: demogolden.Retention, Now: demogolden.Time,
	}, nil)
	defer m.Stop()
	for deadline := time.Now().Add(settleTimeout); ; time.Sleep(5 * time.Millisecond) {
		settled := true
		for _, d := range st.Snapshot().Sources {
			settled = settled && d.Attempted && d.NextRefresh.After(demogolden.Time())
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not settle within %s", settleTimeout)
		}
	}
	expo.Refresh()
	var buf bytes.Buffer
	if err := expo.Write(&buf, reg); err != nil {
		t.Fatal(err)
	}
	got := demogolden.Series(buf.String(), c.Plugin.Name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(demogolden.File), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(demogolden.File, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(demogolden.File)
	if err != nil {
		t.Fatalf("%v (go test -run Conformance/demo -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the demo's series differ from %s; if the change is intended: go test -run Conformance/demo -update\n%s",
			demogolden.File, firstDifference(got, string(want)))
	}
}

// firstDifference shows the first lines of got and want that differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, gl, wl)
		}
	}
	return ""
}

package providertest

import (
	"bytes"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
	"github.com/cloudcarbon/cloudcarbon_exporter/report"
)

// checkOnly: a source whose data is of quantity q only is served: its
// latest month counts as published for scheduling, freshness, the
// exposition's families and reports.
func checkOnly(h *harness, q provider.Quantity) {
	d := h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh: %v", err)
	}
	var latest provider.Month
	for m, tot := range h.fake.Expected {
		if _, ok := tot[q]; ok && m > latest {
			latest = m
		}
	}
	if latest == 0 {
		h.t.Fatalf("the fake's dataset for %s holds none", quantityName(q))
	}
	compareTotals(h.t, served(d.Months), h.fake.Expected)
	if got, ok := d.LatestMonth(); !ok || got != latest {
		h.t.Errorf("latest published month %s (%v), want %s", got, ok, latest)
	}
	if d.NextMonthDue.IsZero() {
		h.t.Error("no next month is due: the months do not count as published")
	}
	text := h.metricsText()
	for _, qi := range provider.Quantities() {
		if qi.Quantity != q {
			continue
		}
		for _, fam := range []string{"cloudcarbon_" + qi.Family + "{", "cloudcarbon_history_" + qi.Family + "{"} {
			if !strings.Contains(text, fam) {
				h.t.Errorf("/metrics has no %s series", strings.TrimSuffix(fam, "{"))
			}
		}
	}
	if !strings.Contains(text, "cloudcarbon_data_month_timestamp_seconds{") {
		h.t.Error("/metrics has no cloudcarbon_data_month_timestamp_seconds")
	}
	rep := h.report(report.Options{Period: "month", Format: "json"})
	found := false
	for _, row := range rep.Rows {
		if row.Period == latest.String() && row.MonthsCovered > 0 && rep.Has(&row, q) {
			found = true
		}
	}
	if !found {
		h.t.Errorf("the monthly report has no %s for %s", quantityName(q), latest)
	}
	for _, note := range rep.Notes {
		if strings.Contains(note, latest.String()) {
			h.t.Errorf("the report says %q", note)
		}
	}
}

// report builds a report of the store at the harness's clock and keeps
// its text for the check of secrets.
func (h *harness) report(o report.Options) *report.Report {
	h.t.Helper()
	o.Now = h.now()
	rep, err := report.Build(report.Input{
		Sources:   h.store.Snapshot().Sources,
		Schedules: map[string]provider.Schedule{h.cloud.Plugin.Name: h.cloud.Plugin.Schedule},
	}, o)
	if err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		h.t.Fatal(err)
	}
	h.out.add("report", buf.String())
	return rep
}

// metricsText is what /metrics would serve, kept for the check of
// secrets.
func (h *harness) metricsText() string {
	h.t.Helper()
	h.expo.Refresh()
	var buf bytes.Buffer
	if err := h.expo.Write(&buf, h.reg); err != nil {
		h.t.Fatal(err)
	}
	h.out.add("metrics", buf.String())
	return buf.String()
}

// checkRestart: after a restart from the state file the data is served at
// once and nothing is asked of the provider, every month being fresh.
func checkRestart(h *harness) {
	h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh: %v", err)
	}
	if err := h.store.Flush(); err != nil {
		h.t.Fatal(err)
	}
	raw, err := os.ReadFile(h.state.Path())
	if err != nil {
		h.t.Fatal(err)
	}
	h.out.add("state file", string(raw))
	before := h.inj.Requests()
	h.reset()
	seed := h.store.LoadState()
	if seed == nil {
		h.t.Fatal("the state file did not load")
	}
	d := h.run(h.source(h.ts.Client()), seed)
	if n := h.inj.Requests() - before; n != 0 {
		h.t.Errorf("the restart made %d requests, want none", n)
	}
	if n := h.calls.count(); n != 0 {
		h.t.Errorf("the restart fetched %d times, want none", n)
	}
	compareTotals(h.t, served(d.Months), h.fake.Expected)
	h.metricsText()
}

// checkRestatement: when the provider serves a month under a new model
// version, the source counts one restatement and fetches every other
// stored month once more; closed months are then left alone.
func checkRestatement(h *harness) {
	if h.fake.Restate == nil {
		h.t.Skipf("%s reports no model version", h.cloud.Plugin.Name)
	}
	src := h.source(h.ts.Client())
	d := h.run(src, nil)
	stored := slices.Sorted(maps.Keys(d.Months))
	h.fake.Restate()
	n := h.calls.count()
	h.advance(h.opts.IdleInterval + time.Hour)
	h.run(src, nil)
	if got := counterValue(h.reg, "cloudcarbon_restatements_total", nil); got != 1 {
		h.t.Errorf("restatements_total = %v, want 1", got)
	}
	fetched := h.calls.since(n)
	for _, m := range stored {
		if fetched[m] != 1 {
			h.t.Errorf("%s fetched %d times after the restatement, want once", m, fetched[m])
		}
	}
	n = h.calls.count()
	h.advance(h.opts.IdleInterval + time.Hour)
	h.run(src, nil)
	sched := h.cloud.Plugin.Schedule
	for m := range h.calls.since(n) {
		if !h.now().Before(sched.FinalAt(m)) && d.Months[m] != nil {
			h.t.Errorf("closed month %s fetched again", m)
		}
	}
}

// checkSecrets: no secret, in any form a client sends it, appears in the
// logs (debug included), an error, /metrics, the state file or a report.
func checkSecrets(t *testing.T, out *outputs, secrets []string) {
	texts := append([]string{"log: " + out.logs.String()}, out.texts...)
	if len(out.logs.String()) == 0 {
		t.Fatal("nothing was logged: the check below proves nothing")
	}
	for _, secret := range slices.Compact(slices.Sorted(slices.Values(secrets))) {
		if len(secret) < 6 {
			continue
		}
		for _, text := range texts {
			if httpx.Scrub(text, secret) != text {
				what, _, _ := strings.Cut(text, ":")
				t.Errorf("a secret appears in the %s", what)
			}
		}
	}
}

// counterValue sums the samples of family whose labels include match.
func counterValue(g prometheus.Gatherer, family string, match map[string]string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				if !hasLabel(m, k, v) {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

func errorsCounted(g prometheus.Gatherer, reason provider.Reason) float64 {
	return counterValue(g, "cloudcarbon_refresh_errors_total", map[string]string{"reason": string(reason)})
}

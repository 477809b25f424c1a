package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"

	"github.com/cloudcarbon/cloudcarbon_exporter/report"
)

// reportDemo starts the demo at a fixed time with two years of history, so
// that calendar 2025 is whole in the exposed history.
func reportDemo(t *testing.T) (*App, *Options) {
	t.Helper()
	fixed := time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)
	o := testOptions(t)
	o.Demo, o.HistoryMonths = true, 24
	o.Now = func() time.Time { return fixed }
	a := startApp(t, o, nil, false)
	if err := a.waitSettled(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a, o
}

// TestYearlyReportEqualsExposedHistory: a year's totals in the report are
// the sums of the monthly history /metrics exposes for the same months, per
// provider and per method.
func TestYearlyReportEqualsExposedHistory(t *testing.T) {
	a, o := reportDemo(t)
	ro, err := report.ParseOptions(map[string][]string{"period": {"year"}, "from": {"2025"}, "to": {"2025"}, "by": {"provider"}, "unit": {"g"}, "format": {"json"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Report(t.Context(), *o, FromDemo, ro, &buf, promslog.NewNopLogger()); err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	exposed := map[string]map[string]float64{} // family → provider → 2025 sum
	months := map[string]map[string]bool{}     // provider → 2025 months exposed
	mfs, err := a.gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if name != "cloudcarbon_history_emissions_grams" && name != "cloudcarbon_history_emissions_market_based_grams" {
			continue
		}
		exposed[name] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if strings.HasPrefix(labels["month"], "2025-") {
				exposed[name][labels["provider"]] += m.GetGauge().GetValue()
				if months[labels["provider"]] == nil {
					months[labels["provider"]] = map[string]bool{}
				}
				months[labels["provider"]][labels["month"]] = true
			}
		}
	}
	if len(rep.Rows) < 3 {
		t.Fatalf("report rows: %+v", rep.Rows)
	}
	for _, row := range rep.Rows {
		if row.MonthsCovered != len(months[row.Provider]) || row.MonthsExpected != 12 {
			t.Errorf("%s %s covers %d/%d months of 2025; /metrics exposes %d of them", row.Period, row.Provider,
				row.MonthsCovered, row.MonthsExpected, len(months[row.Provider]))
		}
		for _, c := range []struct {
			family string
			got    *float64
		}{
			{"cloudcarbon_history_emissions_grams", row.LocationBased},
			{"cloudcarbon_history_emissions_market_based_grams", row.MarketBased},
		} {
			want, has := exposed[c.family][row.Provider]
			switch {
			case c.got == nil && has:
				t.Errorf("%s: report has no %s, /metrics has %v", row.Provider, c.family, want)
			case c.got != nil && math.Abs(*c.got-want) > 0.5+1e-9*want:
				t.Errorf("%s: report %s %v, /metrics history sums to %v", row.Provider, c.family, *c.got, want)
			}
		}
	}
}

// TestReportEndpointMatchesCommand: GET /report answers the same bytes as
// the report command with the same data and parameters.
func TestReportEndpointMatchesCommand(t *testing.T) {
	a, o := reportDemo(t)
	h, err := a.Handler(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"period=year&format=csv", "period=quarter&by=provider,scope&format=markdown&unit=kg", "period=month&from=2026-01&to=2026-03&format=json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report?"+q, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /report?%s: %d %s", q, rec.Code, rec.Body)
		}
		req := httptest.NewRequest(http.MethodGet, "/report?"+q, nil)
		ro, err := report.ParseOptions(req.URL.Query())
		if err != nil {
			t.Fatal(err)
		}
		var cmd bytes.Buffer
		if err := Report(t.Context(), *o, FromDemo, ro, &cmd, promslog.NewNopLogger()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Body.Bytes(), cmd.Bytes()) {
			t.Errorf("GET /report?%s differs from the command:\n%s\nwant:\n%s", q, rec.Body, cmd.String())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report?period=decade", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusBadRequest || !strings.Contains(string(body), "period") {
		t.Errorf("bad period: %d %s", rec.Code, body)
	}
}

// TestReportFromTheStateFile: the command reads the state file alone and
// says what to do when there is none.
func TestReportFromTheStateFile(t *testing.T) {
	o := testOptions(t)
	ro, err := report.ParseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	err = Report(t.Context(), *o, FromStateFile, ro, io.Discard, promslog.NewNopLogger())
	if err == nil || !strings.Contains(err.Error(), "--refresh") {
		t.Errorf("without a state file: %v", err)
	}
	_, ds, url := fakeIBM(t, time.Now(), "k")
	writeConfig(t, o.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k"))
	a := startApp(t, o, nil, true)
	waitReady(t, a)
	a.Close()
	var buf bytes.Buffer
	if err := Report(t.Context(), *o, FromStateFile, ro, &buf, promslog.NewNopLogger()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), fmt.Sprintf("%d,ibm,unspecified,", time.Now().Year())) {
		t.Errorf("report of the state file:\n%s", buf.String())
	}
}

// TestReportRefreshReturnsWhenASourceFails: report --refresh does not wait
// for the retries of a source that keeps failing, and --output leaves an
// earlier report in place when the new one cannot be made.
func TestReportRefreshReturnsWhenASourceFails(t *testing.T) {
	_, ds, url := fakeIBM(t, time.Now(), "the-right-key")
	o := testOptions(t)
	writeConfig(t, o.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: a-wrong-key"))
	ro, err := report.ParseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := Report(ctx, *o, FromRefresh, ro, io.Discard, promslog.NewNopLogger()); err != nil {
		t.Errorf("report --refresh with a failing source: %v", err)
	}

	out := filepath.Join(t.TempDir(), "report.csv")
	writeConfig(t, out, "an earlier report\n")
	kp := kingpin.New("t", "")
	run := ReportCommand(kp.Command("report", ""))
	if _, err := kp.Parse([]string{"report", "--output=" + out}); err != nil {
		t.Fatal(err)
	}
	o.StateFile = filepath.Join(t.TempDir(), "none.json")
	if err := run(t.Context(), *o, io.Discard, promslog.NewNopLogger()); err == nil {
		t.Error("a report without a state file succeeded")
	}
	if b, _ := os.ReadFile(out); string(b) != "an earlier report\n" {
		t.Errorf("--output after a failed report holds %q", b)
	}
}

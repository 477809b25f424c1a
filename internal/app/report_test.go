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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/report"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
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

// exposedHistory sums the monthly history /metrics exposes, by family,
// period (of cal's kind: "2025", "2025-Q3") and provider; fallback sums
// the market-based series where there is one and the location-based one
// where there is none, series by series. months are the months exposed,
// by provider.
type exposedHistory struct {
	sums     map[string]map[[2]string]float64
	fallback map[[2]string]float64
	months   map[string]map[string]bool
	// first is the first month exposed, by any provider.
	first string
}

func gatherHistory(t *testing.T, a *App, period func(month string) string) exposedHistory {
	t.Helper()
	const loc, mkt = "cloudcarbon_history_emissions_grams", "cloudcarbon_history_emissions_market_based_grams"
	h := exposedHistory{sums: map[string]map[[2]string]float64{loc: {}, mkt: {}}, fallback: map[[2]string]float64{}, months: map[string]map[string]bool{}}
	mfs, err := a.gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	// One series of each family per labels, which the families share.
	type series struct {
		at       [2]string
		loc, mkt *float64
	}
	byLabels := map[string]*series{}
	for _, mf := range mfs {
		if mf.GetName() != loc && mf.GetName() != mkt {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			at := [2]string{period(labels["month"]), labels["provider"]}
			v := m.GetGauge().GetValue()
			h.sums[mf.GetName()][at] += v
			if h.months[labels["provider"]] == nil {
				h.months[labels["provider"]] = map[string]bool{}
			}
			h.months[labels["provider"]][labels["month"]] = true
			if h.first == "" || labels["month"] < h.first {
				h.first = labels["month"]
			}
			key := fmt.Sprint(m.GetLabel())
			if byLabels[key] == nil {
				byLabels[key] = &series{at: at}
			}
			if mf.GetName() == loc {
				byLabels[key].loc = &v
			} else {
				byLabels[key].mkt = &v
			}
		}
	}
	for _, s := range byLabels {
		switch {
		case s.mkt != nil:
			h.fallback[s.at] += *s.mkt
		case s.loc != nil:
			h.fallback[s.at] += *s.loc
		}
	}
	return h
}

// TestPeriodTotalsEqualExposedHistory: every period's totals in the
// report, and each provider's, are the sums of the monthly history
// /metrics exposes for the same months, per method; with the fallback,
// the market-based totals are the market-based series plus the
// location-based series that have no market-based twin, and every row so
// filled is flagged.
func TestPeriodTotalsEqualExposedHistory(t *testing.T) {
	a, o := reportDemo(t)
	for _, tc := range []struct {
		period string
		// name names the period of a month, start the first month of a
		// period.
		name, start func(string) string
	}{
		{"year", func(m string) string { return m[:4] }, func(p string) string { return p + "-01" }},
		{"quarter", func(m string) string {
			mo, _ := strconv.Atoi(m[5:])
			return fmt.Sprintf("%s-Q%d", m[:4], (mo-1)/3+1)
		}, func(p string) string { return fmt.Sprintf("%s-%02d", p[:4], 3*int(p[6]-'1')+1) }},
	} {
		h := gatherHistory(t, a, tc.name)
		for _, fallback := range []bool{false, true} {
			rep := demoReport(t, o, url.Values{"period": {tc.period}, "by": {"provider,scope"}, "unit": {"g"},
				"market_based_fallback": {strconv.FormatBool(fallback)}})
			compared := 0
			for _, tot := range rep.Totals {
				if tc.start(tot.Period) < h.first {
					continue // the state holds one month more than /metrics exposes
				}
				compared++
				var wantLoc, wantMkt float64
				for _, prov := range tot.Methods.LocationBased {
					wantLoc += h.sums["cloudcarbon_history_emissions_grams"][[2]string{tot.Period, prov}]
				}
				for _, prov := range union(tot.Methods.MarketBased, tot.Methods.MarketBasedFallback) {
					if fallback {
						wantMkt += h.fallback[[2]string{tot.Period, prov}]
					} else {
						wantMkt += h.sums["cloudcarbon_history_emissions_market_based_grams"][[2]string{tot.Period, prov}]
					}
				}
				for _, c := range []struct {
					key  string
					want float64
				}{{report.KeyLocationBased, wantLoc}, {report.KeyMarketBased, wantMkt}} {
					if got := tot.Values[c.key]; got == nil && c.want != 0 || got != nil && math.Abs(*got-c.want) > 0.5+1e-9*c.want {
						t.Errorf("%s %q fallback %v: %s %v, /metrics history sums to %v", tot.Period, tot.Provider, fallback, c.key, fmtValue(got), c.want)
					}
				}
				if tot.Provider == "" && !fallback && len(tot.Methods.MarketBasedLeftOut) == 0 {
					t.Errorf("%s: no provider left out of the market-based total: %+v", tot.Period, tot.Methods)
				}
			}
			if compared < 2*6 {
				t.Errorf("%s: compared %d totals with /metrics", tc.period, compared)
			}
			for _, row := range rep.Rows {
				filled := row.MarketBasedFallback != nil
				if filled != slices.Contains(row.Flags, report.FlagMarketBasedFallback) || filled && !fallback ||
					fallback && row.Values[report.KeyLocationBased] != nil && row.Values[report.KeyMarketBased] == nil {
					t.Errorf("fallback %v: row %s %s %s: market-based %v, filled %v, flags %v", fallback, row.Period, row.Provider, row.Scope,
						row.Values[report.KeyMarketBased], row.MarketBasedFallback, row.Flags)
				}
			}
		}
	}
	// Rows by provider cover the months /metrics exposes.
	rep := demoReport(t, o, url.Values{"period": {"year"}, "from": {"2025"}, "to": {"2025"}, "by": {"provider"}})
	h := gatherHistory(t, a, func(m string) string { return m[:4] })
	for _, row := range rep.Rows {
		months := 0
		for m := range h.months[row.Provider] {
			if strings.HasPrefix(m, "2025-") {
				months++
			}
		}
		if row.MonthsCovered != months || row.MonthsExpected != 12 {
			t.Errorf("%s %s covers %d/%d months of 2025; /metrics exposes %d of them", row.Period, row.Provider, row.MonthsCovered, row.MonthsExpected, months)
		}
	}
}

func fmtValue(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// demoReport is the command's JSON report of the demo for q.
func demoReport(t *testing.T, o *Options, q url.Values) report.Report {
	t.Helper()
	q.Set("format", "json")
	ro, err := report.ParseOptions(q)
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
	return rep
}

// TestDemoReportInput keeps report/testdata/demo-input.json, from which
// the report package's demo goldens are built, equal to what the demo
// hands reports at the fixed clock (-update rewrites it). The goldens
// split rows by provider and scope at most, so each month's records are
// summed per scope (store.Summarize) and account names left out, which
// changes none of their figures and keeps the file small. What changes
// from run to run is left out too: the sources' identities (loopback
// ports) and refresh durations; the version is a work tree's.
func TestDemoReportInput(t *testing.T) {
	a, o := reportDemo(t)
	in := reportInput(a.store.Snapshot().Sources, o.Plugins, a.configDigest())
	sources := make(map[string]*store.SourceData, len(in.Sources))
	for name, d := range in.Sources {
		c := *d
		// Reports read estimates (Input.Provisional), never the cost.
		c.Identity, c.LastDuration, c.Accounts, c.Costs = "", 0, nil, nil
		c.Months = make(map[provider.Month]*store.MonthData, len(d.Months))
		for m, md := range d.Months {
			summed := store.NewMonthData(md.Summary())
			summed.FetchedAt, summed.Revision, summed.FirstSeen = md.FetchedAt, md.Revision, md.FirstSeen
			c.Months[m] = summed
		}
		sources[name] = &c
	}
	for name, recs := range in.Provisional {
		in.Provisional[name] = store.Summarize(recs)
	}
	in.Sources, in.Version = sources, "devel"
	got, err := json.MarshalIndent(struct {
		Now   time.Time
		Input report.Input
	}{o.Now(), in}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("..", "..", "report", "testdata", "demo-input.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the demo gives reports (go test ./internal/app -run TestDemoReportInput -update rewrites it, then go test ./report -update)", path)
	}
}

// TestEveryCloudDeclaresItsMethodology: reports cite each cloud's source,
// coverage, unit, published methodology and model versions.
func TestEveryCloudDeclaresItsMethodology(t *testing.T) {
	for _, pl := range clouds.All() {
		m := pl.Methodology
		if m.Source == "" || m.Includes == "" || m.Unit == "" || !strings.HasPrefix(m.URL, "https://") || m.ModelVersion == "" {
			t.Errorf("%s declares %+v", pl.Name, m)
		}
		if m.Water != "" && m.Water != provider.WaterUsage && m.Water != provider.WaterWithdrawal {
			t.Errorf("%s: water %q", pl.Name, m.Water)
		}
		for _, c := range m.Caveats {
			if !regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`).MatchString(c.Flag) || c.Text == "" {
				t.Errorf("%s: caveat %+v", pl.Name, c)
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
	for _, q := range []string{"period=year&format=csv", "period=quarter&by=provider,scope&format=markdown&unit=kg", "period=month&from=2026-01&to=2026-03&format=json",
		"by=scope&market_based_fallback=true&format=markdown", "as_of=2026-06-01&include_provisional=true&format=json"} {
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
	for q, want := range map[string]string{
		"period=decade":              "period",
		"as_of=someday":              `as_of: "someday" is neither a date`,
		"as_of=2030-01-01":           "as_of 2030-01-01T00:00:00Z is later than the report's time",
		"market_based_fallback=on":   `market_based_fallback: "on" is not true or false`,
		"as_of=2026-01-01&as_of=now": "as_of: given 2 times",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report?"+q, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("GET /report?%s: %d %s", q, rec.Code, body)
		}
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

// TestReportAsOfReproducesAFiledReport: a yearly report is filed from the
// state file; the provider then restates two months under a new model
// version. A report now lists both restatements with the figures they
// superseded, and `report --as-of` the filed report's generated_at gives
// its rows and totals again, byte for byte, after a restart of the state.
func TestReportAsOfReproducesAFiledReport(t *testing.T) {
	o := testOptions(t)
	filedAt := time.Date(2026, time.February, 15, 9, 30, 0, 0, time.UTC)
	restatedAt, now := filedAt.Add(10*24*time.Hour), filedAt.Add(20*24*time.Hour)
	records := func(m provider.Month, scale float64) []provider.Record {
		var out []provider.Record
		for i, sc := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
			out = append(out, provider.Record{Provider: "gcp", Account: "shop", Service: "Compute Engine", Location: "europe-west1",
				Scope: sc, Month: m, Known: provider.Emissions | provider.EmissionsMarketBased,
				EmissionsGrams: scale * float64(1000*(i+1)+int(m)%12), MarketBasedGrams: scale * float64(400*(i+1))})
		}
		return out
	}
	key := store.Key{Name: "gcp-billing", Provider: "gcp", Identity: "gcp|test"}
	st := store.New(store.Options{State: store.NewStateFile(o.StateFile)})
	st.Configure([]store.Key{key}, nil)
	fetched := filedAt.Add(-24 * time.Hour)
	st.Update(key.Name, store.Data, func(d *store.SourceData) {
		for m := provider.NewMonth(2025, time.January); m <= provider.NewMonth(2025, time.December); m++ {
			md := store.NewMonthData(records(m, 1))
			md.FetchedAt, md.Revision = fetched, "7"
			d.Replace(m, md, fetched)
		}
		d.LastSuccess, d.LastAttempt, d.LastOK = fetched, fetched, true
	})
	run := func(at time.Time, args ...string) report.Report {
		t.Helper()
		kp := kingpin.New("t", "")
		cmd := ReportCommand(kp.Command("report", ""))
		if _, err := kp.Parse(append([]string{"report", "--format=json"}, args...)); err != nil {
			t.Fatal(err)
		}
		o.Now = func() time.Time { return at }
		var buf bytes.Buffer
		if err := cmd(t.Context(), *o, &buf, promslog.NewNopLogger()); err != nil {
			t.Fatal(err)
		}
		var r report.Report
		if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	filed := run(filedAt)

	st.Update(key.Name, store.Data, func(d *store.SourceData) {
		for _, m := range []provider.Month{provider.NewMonth(2025, time.June), provider.NewMonth(2025, time.July)} {
			md := store.NewMonthData(records(m, 1.25))
			md.FetchedAt, md.Revision = restatedAt, "8"
			d.Replace(m, md, restatedAt)
		}
	})
	later := run(now)
	if len(later.Restatements) != 2 || later.Restatements[0].Month != "2025-06" || later.Restatements[0].OldRevision != "7" ||
		later.Restatements[0].NewRevision != "8" || !later.Restatements[0].RestatedAt.Equal(restatedAt) {
		t.Fatalf("restatements after the restatement: %+v", later.Restatements)
	}
	if figures(t, &later) == figures(t, &filed) {
		t.Fatal("the restatement changed no figure")
	}
	for _, at := range []string{filed.Metadata.GeneratedAt.Format(time.RFC3339), "2026-02-16"} {
		asOf := run(now, "--as-of="+at)
		if got, want := figures(t, &asOf), figures(t, &filed); got != want {
			t.Errorf("--as-of %s:\n%s\nwant the filed report's:\n%s", at, got, want)
		}
		if len(asOf.Restatements) != 0 {
			t.Errorf("--as-of %s lists restatements made after it: %+v", at, asOf.Restatements)
		}
	}
}

// figures are a report's rows and totals, without the flag that marks
// figures as superseded since.
func figures(t *testing.T, r *report.Report) string {
	t.Helper()
	strip := func(f *report.Figures) {
		f.Flags = slices.DeleteFunc(f.Flags, func(s string) bool { return s == report.FlagSuperseded })
	}
	for i := range r.Rows {
		strip(&r.Rows[i].Figures)
	}
	for i := range r.Totals {
		strip(&r.Totals[i].Figures)
	}
	b, err := json.MarshalIndent([]any{r.Rows, r.Totals}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

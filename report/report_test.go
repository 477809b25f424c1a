package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// now is the fixed clock of the tests: GCP and Azure have published
// 2024-12, which can still change; IBM's refresh has not fetched it.
var now = time.Date(2025, time.January, 20, 12, 0, 0, 0, time.UTC)

var schedules = map[string]provider.Schedule{
	"gcp":   {PublishDelay: 14 * 24 * time.Hour, SettleDelay: 30 * 24 * time.Hour},
	"azure": {PublishDelay: 18 * 24 * time.Hour, SettleDelay: 30 * 24 * time.Hour},
	"ibm":   {PublishDelay: 16 * 24 * time.Hour, SettleDelay: 30 * 24 * time.Hour},
	"aws":   {PublishDelay: 15 * 24 * time.Hour, SettleDelay: 60 * 24 * time.Hour},
}

// methodologies are short stand-ins for the clouds' own.
var methodologies = map[string]provider.Methodology{
	"gcp": {Source: "Carbon Footprint export", Includes: "scopes 1-3, both methods from 2023", Unit: "kgCO2e",
		URL: "https://example.com/gcp", ModelVersion: "carbon_model_version"},
	"azure": {Source: "Carbon Optimization API", Includes: "scopes 1-3, location-based", Unit: "kgCO2e",
		URL: "https://example.com/azure", ModelVersion: "none"},
	"ibm": {Source: "Carbon Calculator API", Includes: "no scope split", Unit: "unstated",
		URL: "https://example.com/ibm", ModelVersion: "none",
		Caveats: []provider.Caveat{{Flag: "unit_unconfirmed", Text: "The unit is not documented."}}},
}

var (
	first = provider.NewMonth(2022, time.November)
	last  = provider.NewMonth(2024, time.December) // 26 months
)

// dataset is three providers over 26 months: GCP with both methods (from
// 2023) and cost, Azure with scopes 1-3 location-based only (from 2023),
// IBM unspecified scope with energy, one month behind.
func dataset() Input {
	fetched := time.Date(2025, time.January, 16, 0, 0, 0, 0, time.UTC)
	gcp := &store.SourceData{Name: "gcp-main", Provider: "gcp", Months: map[provider.Month]*store.MonthData{},
		LastSuccess: fetched, LastOK: true,
		Accounts: []provider.Account{
			{Provider: "gcp", ID: "shop-prod", Name: "Shop (production)", ParentType: "billing_account", ParentID: "0A0A0A-0B0B0B-0C0C0C"},
			{Provider: "gcp", ID: "data-lake", Name: "Data lake"},
		}}
	azure := &store.SourceData{Name: "azure-prod", Provider: "azure", Months: map[provider.Month]*store.MonthData{},
		LastSuccess: fetched, LastOK: true,
		Accounts: []provider.Account{{Provider: "azure", ID: "3f2a9c1e-0000-4000-8000-000000000001", Name: "Production"}}}
	ibm := &store.SourceData{Name: "ibm", Provider: "ibm", Months: map[provider.Month]*store.MonthData{}, LastSuccess: fetched, LastOK: true}

	for m := first; m <= last; m++ {
		gcp.Months[m] = fetchedMonth(gcpRecords(m), fetched, "12")
		if m >= provider.NewMonth(2024, time.June) {
			gcp.Months[m].Revision = "13"
		}
		i := float64(m - first)
		if m.Year() >= 2023 {
			var recs []provider.Record
			for _, sc := range []struct {
				scope provider.Scope
				g     float64
			}{{provider.Scope1, 3_105.5}, {provider.Scope2, 412_501.25}, {provider.Scope3, 170_047.5}} {
				recs = append(recs, provider.Record{Provider: "azure", Account: "3f2a9c1e-0000-4000-8000-000000000001",
					Service: "microsoft.compute/virtualmachines", Location: "westeurope", Scope: sc.scope, Month: m,
					Known: provider.Emissions, EmissionsGrams: sc.g * (1 + i/100)})
			}
			azure.Months[m] = fetchedMonth(recs, fetched, "")
		}
		if m < last {
			ibm.Months[m] = fetchedMonth([]provider.Record{{
				Provider: "ibm", Account: "8d4e6f00aa", Service: "is.instance", Location: "us-south",
				Scope: provider.ScopeUnspecified, Month: m, Known: provider.Emissions | provider.Energy,
				EmissionsGrams: 98_765.5 + 100*i, EnergyJoules: 3.6e6 * (40.25 + i),
			}}, fetched, "")
		}
	}
	return Input{
		Sources:     map[string]*store.SourceData{gcp.Name: gcp, azure.Name: azure, ibm.Name: ibm},
		Schedules:   schedules,
		Methodology: methodologies,
		Version:     "1.2.3",
		ConfigHash:  "0123456789abcdef",
	}
}

// gcpRecords are GCP's records of month m: two projects, scopes 1-3,
// market-based from 2023, and cost.
func gcpRecords(m provider.Month) []provider.Record {
	i := float64(m - first)
	var recs []provider.Record
	for _, p := range []struct {
		account, service, location string
		base                       float64
	}{
		{"shop-prod", "Compute Engine", "europe-west1", 1_834_567.891},
		{"data-lake", "BigQuery", "us", 520_012.5},
	} {
		for _, sc := range []struct {
			scope provider.Scope
			f, mf float64
		}{{provider.Scope1, 0.013, 0.013}, {provider.Scope2, 1, 0.35}, {provider.Scope3, 0.41, 0.41}} {
			r := provider.Record{Provider: "gcp", Account: p.account, Service: p.service, Location: p.location,
				Scope: sc.scope, Month: m, Known: provider.Emissions,
				EmissionsGrams: p.base * sc.f * (1 + i/40)}
			if m.Year() >= 2023 {
				r.MarketBasedGrams = p.base * sc.mf * (1 + i/40)
				r.Known |= provider.EmissionsMarketBased
			}
			recs = append(recs, r)
		}
		recs = append(recs, provider.Record{Provider: "gcp", Account: p.account, Service: p.service, Location: p.location,
			Month: m, Known: provider.Cost, CostUSD: p.base/97 + i*3.17})
	}
	return recs
}

var goldenCases = []struct {
	name string
	o    Options
}{
	{"year", Options{Period: PeriodYear}},
	{"quarter", Options{Period: PeriodQuarter}},
	{"fiscal-year", Options{Period: PeriodYear, FiscalYearStart: time.April, Unit: UnitKilograms}},
	{"month-by-all", Options{Period: PeriodMonth, From: "2024-11", To: "2024-12",
		By: []string{DimProvider, DimAccount, DimService, DimLocation, DimScope}}},
	{"year-by-scope-fallback", Options{Period: PeriodYear, By: []string{DimScope}, MarketBasedFallback: true}},
}

var extensions = map[string]string{FormatCSV: "csv", FormatJSON: "json", FormatMarkdown: "md"}

func build(t *testing.T, in Input, o Options) *Report {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = now
	}
	r, err := Build(in, o)
	if err != nil {
		t.Fatalf("Build(%+v): %v", o, err)
	}
	return r
}

func render(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.Bytes()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the built report (go test ./report/ -update rewrites it); got:\n%s", path, got)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		for _, format := range formats {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				o := tc.o
				o.Format = format
				golden(t, tc.name+"."+extensions[format], render(t, build(t, dataset(), o)))
			})
		}
	}
}

// demoInput is the demo's data at the app tests' fixed clock, as the
// exporter hands it to reports (internal/app's TestDemoReportInput keeps
// testdata/demo-input.json in step with the demo).
func demoInput(t *testing.T) (Input, time.Time) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "demo-input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Now   time.Time
		Input Input
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	return in.Input, in.Now
}

// TestDemoGolden: the demo's yearly reports in every format, by provider
// and scope (the providers' totals per period) and by scope alone (rows
// that mix providers, with their coverage).
func TestDemoGolden(t *testing.T) {
	in, demoNow := demoInput(t)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"demo-year", Options{Period: PeriodYear}},
		{"demo-year-by-scope", Options{Period: PeriodYear, By: []string{DimScope}}},
	} {
		for _, format := range formats {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				o := tc.o
				o.Format, o.Now = format, demoNow
				golden(t, tc.name+"."+extensions[format], render(t, build(t, in, o)))
			})
		}
	}
}

// TestCSVReadsWhole: encoding/csv reads every report whole with its
// defaults (every line has the header's fields), and the record column
// says what each line is, in order.
func TestCSVReadsWhole(t *testing.T) {
	in := dataset()
	restate(in.Sources["gcp-main"], provider.NewMonth(2024, time.March), "14", 1.5, time.Date(2025, 1, 18, 0, 0, 0, 0, time.UTC))
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Format = FormatCSV
			r := build(t, in, o)
			recs, err := csv.NewReader(bytes.NewReader(render(t, r))).ReadAll()
			if err != nil {
				t.Fatalf("encoding/csv: %v", err)
			}
			if !slices.Equal(recs[0], r.header()) || recs[0][0] != "record" || recs[0][1] != "period" {
				t.Errorf("header = %q", recs[0])
			}
			order := []string{RecordMeta, RecordRow, RecordTotal, RecordRestatement, RecordMethodology, RecordNote}
			count := map[string]int{}
			last := 0
			for _, rec := range recs[1:] {
				i := slices.Index(order, rec[0])
				if i < last {
					t.Fatalf("record %q after %q", rec[0], order[last])
				}
				last = i
				count[rec[0]]++
			}
			if count[RecordRow] != len(r.Rows) || count[RecordTotal] != len(r.Totals) || count[RecordNote] != len(r.Notes) ||
				count[RecordRestatement] != len(r.Restatements) || count[RecordMeta] < 6 || count[RecordMethodology] < 3*5 {
				t.Errorf("records %v; rows %d, totals %d, restatements %d, notes %d", count, len(r.Rows), len(r.Totals), len(r.Restatements), len(r.Notes))
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Format = FormatJSON
			b := render(t, build(t, dataset(), o))
			var r Report
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if r.Schema != Schema {
				t.Errorf("schema = %q", r.Schema)
			}
			r.Options.Format = FormatJSON
			if again := render(t, &r); !bytes.Equal(again, b) {
				t.Errorf("decode → encode changed the JSON:\n%s\nwant:\n%s", again, b)
			}
		})
	}
}

// value returns a figure of row or total values, NaN when null.
func value(values map[string]*float64, key string) float64 {
	if v := values[key]; v != nil {
		return *v
	}
	return math.NaN()
}

// rowsBy indexes rows by period and provider.
func rowsBy(r *Report) map[[2]string]Row {
	out := map[[2]string]Row{}
	for _, row := range r.Rows {
		out[[2]string{row.Period, row.Provider}] = row
	}
	return out
}

// totalOf returns the total of period (and provider, "" for the period's).
func totalOf(t *testing.T, r *Report, period, prov string) Total {
	t.Helper()
	for _, tot := range r.Totals {
		if tot.Period == period && tot.Provider == prov {
			return tot
		}
	}
	t.Fatalf("no total for %s %q", period, prov)
	return Total{}
}

// restate replaces month m of d as a refresh at at would, under revision
// rev, with its emissions scaled by f.
func restate(d *store.SourceData, m provider.Month, rev string, f float64, at time.Time) {
	records := d.Months[m].Records()
	for i := range records {
		records[i].EmissionsGrams *= f
		records[i].MarketBasedGrams *= f
	}
	d.Replace(m, fetchedMonth(records, at, rev), at)
}

// fetchedMonth returns records as a month fetched at fetched under
// revision rev.
func fetchedMonth(records []provider.Record, fetched time.Time, rev string) *store.MonthData {
	md := store.NewMonthData(records)
	md.FetchedAt, md.Revision = fetched, rev
	return md
}

func TestContentType(t *testing.T) {
	for format, want := range map[string]string{
		FormatCSV: "text/csv; charset=utf-8", FormatJSON: "application/json", FormatMarkdown: "text/markdown; charset=utf-8",
	} {
		if got := build(t, Input{}, Options{Format: format}).ContentType(); got != want {
			t.Errorf("%s: %q, want %q", format, got, want)
		}
	}
}

func TestFormatHuman(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		dec  int
		want string
	}{
		{0, 2, "0.00"}, {-0.001, 2, "0.00"}, {999.996, 2, "1,000.00"}, {1234567.891, 1, "1,234,567.9"},
		{-1234.5, 0, "-1,234"}, {12, 0, "12"}, {123456, 3, "123,456.000"},
	} {
		if got := formatHuman(&tc.v, tc.dec); got != tc.want {
			t.Errorf("formatHuman(%v, %d) = %q, want %q", tc.v, tc.dec, got, tc.want)
		}
	}
}

func TestCSVDefusesFormulas(t *testing.T) {
	in := Input{Sources: map[string]*store.SourceData{"x": {Name: "x", Provider: "gcp",
		Accounts: []provider.Account{{Provider: "gcp", ID: "p", Name: `=HYPERLINK("http://x")`}},
		Months: map[provider.Month]*store.MonthData{first: store.NewMonthData([]provider.Record{{Provider: "gcp", Account: "p",
			Service: "+svc", Location: "l", Month: first, Known: provider.Cost, CostUSD: -1.5}})}}}}
	b := string(render(t, build(t, in, Options{Period: PeriodMonth, By: []string{DimAccount, DimService}})))
	if !strings.Contains(b, `'=HYPERLINK`) || !strings.Contains(b, ",'+svc,") || !strings.Contains(b, ",-1.500000,") {
		t.Errorf("CSV:\n%s", b)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Now: time.Time{}}, "Options.Now is not set"},
		{Options{Now: now, Period: PeriodMonth, From: "1900-01"}, "report: 1900-01 to 2024-12 spans 1500 months; at most 600"},
		{Options{Now: now, Period: "week"}, `period: "week" is not one of month, quarter, year`},
		{Options{Now: now, By: []string{"region"}}, `by: "region" is not one of provider, account, service, location, scope`},
		{Options{Now: now, FiscalYearStart: 13}, "fiscal_year_start: 13 is not a month number from 1 (calendar years) to 12"},
		{Options{Now: now, AsOf: now.Add(time.Second)}, "as_of 2025-01-20T12:00:01Z is later than the report's time 2025-01-20T12:00:00Z"},
	} {
		_, err := Build(dataset(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%+v) error %v, want %q", tc.o, err, tc.want)
		}
	}
}

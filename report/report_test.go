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
		Accounts: []provider.Account{
			{Provider: "gcp", ID: "shop-prod", Name: "Shop (production)", ParentType: "billing_account", ParentID: "0A0A0A-0B0B0B-0C0C0C"},
			{Provider: "gcp", ID: "data-lake", Name: "Data lake"},
		}}
	azure := &store.SourceData{Name: "azure-prod", Provider: "azure", Months: map[provider.Month]*store.MonthData{},
		Accounts: []provider.Account{{Provider: "azure", ID: "3f2a9c1e-0000-4000-8000-000000000001", Name: "Production"}}}
	ibm := &store.SourceData{Name: "ibm", Provider: "ibm", Months: map[provider.Month]*store.MonthData{}}

	for m := first; m <= last; m++ {
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
		rev := "12"
		if m >= provider.NewMonth(2024, time.June) {
			rev = "13"
		}
		gcp.Months[m] = &store.MonthData{Records: recs, FetchedAt: fetched, Revision: rev}

		if m.Year() >= 2023 {
			recs = nil
			for _, sc := range []struct {
				scope provider.Scope
				g     float64
			}{{provider.Scope1, 3_105.5}, {provider.Scope2, 412_501.25}, {provider.Scope3, 170_047.5}} {
				recs = append(recs, provider.Record{Provider: "azure", Account: "3f2a9c1e-0000-4000-8000-000000000001",
					Service: "microsoft.compute/virtualmachines", Location: "westeurope", Scope: sc.scope, Month: m,
					Known: provider.Emissions, EmissionsGrams: sc.g * (1 + i/100)})
			}
			azure.Months[m] = &store.MonthData{Records: recs, FetchedAt: fetched}
		}
		if m < last {
			ibm.Months[m] = &store.MonthData{FetchedAt: fetched, Records: []provider.Record{{
				Provider: "ibm", Account: "8d4e6f00aa", Service: "is.instance", Location: "us-south",
				Scope: provider.ScopeUnspecified, Month: m, Known: provider.Emissions | provider.Energy,
				EmissionsGrams: 98_765.5 + 100*i, EnergyJoules: 3.6e6 * (40.25 + i),
			}}}
		}
	}
	return Input{
		Sources:   map[string]*store.SourceData{gcp.Name: gcp, azure.Name: azure, ibm.Name: ibm},
		Schedules: schedules,
	}
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

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		for _, format := range formats {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				o := tc.o
				o.Format = format
				got := render(t, build(t, dataset(), o))
				path := filepath.Join("testdata", tc.name+"."+extensions[format])
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
			})
		}
	}
}

func TestCSVParses(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Format = FormatCSV
			r := build(t, dataset(), o)
			recs, err := csv.NewReader(bytes.NewReader(render(t, r))).ReadAll()
			if err != nil {
				t.Fatalf("encoding/csv: %v", err)
			}
			header := []string{"period"}
			for _, d := range r.Options.By {
				header = append(header, d)
				if d == DimAccount {
					header = append(header, "account_name")
				}
			}
			u := r.Options.Unit
			header = append(header, "location_based_"+u+"co2e", "market_based_"+u+"co2e", "energy_kwh", "water_m3", "cost_usd",
				"months_covered", "months_expected", "provisional", "model_versions", "note")
			if !slices.Equal(recs[0], header) {
				t.Errorf("header = %q, want %q", recs[0], header)
			}
			if want := 1 + len(r.Rows) + 2 + len(r.Notes); len(recs) != want {
				t.Errorf("%d records, want header + %d rows + 2 totals + %d notes", len(recs), len(r.Rows), len(r.Notes))
			}
			if got := recs[len(recs)-2-len(r.Notes)][0]; got != TotalLocationBased {
				t.Errorf("first total row is %q", got)
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

// rowsBy indexes rows by period and provider.
func rowsBy(r *Report) map[[2]string]Row {
	out := map[[2]string]Row{}
	for _, row := range r.Rows {
		out[[2]string{row.Period, row.Provider}] = row
	}
	return out
}

// TestYearEqualsMonths checks that a year row is the sum of the month rows
// of the same months, per provider and method, and that both equal the
// records summed directly.
func TestYearEqualsMonths(t *testing.T) {
	in := dataset()
	for _, fy := range []time.Month{time.January, time.April} {
		year := build(t, in, Options{Period: PeriodYear, FiscalYearStart: fy, By: []string{DimProvider}, Unit: UnitGrams})
		month := build(t, in, Options{Period: PeriodMonth, FiscalYearStart: fy, By: []string{DimProvider}, Unit: UnitGrams})
		cal := newCalendar(PeriodYear, fy)
		months := rowsBy(month)
		for _, yr := range year.Rows {
			p, err := cal.parse(yr.Period)
			if err != nil {
				t.Fatal(err)
			}
			var loc, mkt, direct float64
			mktComplete, covered := true, 0
			for m := cal.first(p); m < cal.first(p).Add(12); m++ {
				mr, ok := months[[2]string{m.String(), yr.Provider}]
				if !ok {
					continue
				}
				covered++
				loc += *mr.LocationBased
				if mr.MarketBased == nil {
					mktComplete = false
				} else {
					mkt += *mr.MarketBased
				}
				for _, d := range in.Sources {
					if md := d.Months[m]; md != nil && d.Provider == yr.Provider {
						for _, rec := range md.Records {
							direct += rec.EmissionsGrams
						}
					}
				}
			}
			// Month rows are rounded to the gram: allow half a gram each.
			if math.Abs(*yr.LocationBased-loc) > 0.5*float64(covered+1) || math.Abs(*yr.LocationBased-direct) > 0.5 {
				t.Errorf("FY start %d, %s %s: location-based %v, months sum to %v, records to %v", fy, yr.Period, yr.Provider, *yr.LocationBased, loc, direct)
			}
			if yr.MonthsCovered != covered || yr.MonthsExpected != 12 {
				t.Errorf("FY start %d, %s %s: months %d/%d, want %d/12", fy, yr.Period, yr.Provider, yr.MonthsCovered, yr.MonthsExpected, covered)
			}
			switch {
			case !mktComplete && yr.MarketBased != nil:
				t.Errorf("%s %s: market-based %v, but a month has none", yr.Period, yr.Provider, *yr.MarketBased)
			case mktComplete && yr.MarketBased == nil:
				t.Errorf("%s %s: market-based empty, but every month has one", yr.Period, yr.Provider)
			case mktComplete && math.Abs(*yr.MarketBased-mkt) > 0.5*float64(covered+1):
				t.Errorf("%s %s: market-based %v, months sum to %v", yr.Period, yr.Provider, *yr.MarketBased, mkt)
			}
		}
		var sum float64
		for _, yr := range year.Rows {
			sum += *yr.LocationBased
		}
		if math.Abs(*year.Totals.LocationBased-sum) > float64(len(year.Rows)) {
			t.Errorf("location-based total %v, rows sum to %v", *year.Totals.LocationBased, sum)
		}
	}
}

// TestFiscalYearMonths gives month k of the data 2^k grams, so that a
// period's sum names exactly the months it holds.
func TestFiscalYearMonths(t *testing.T) {
	d := &store.SourceData{Name: "x", Provider: "ibm", Months: map[provider.Month]*store.MonthData{}}
	for m := first; m <= last; m++ {
		d.Months[m] = &store.MonthData{Records: []provider.Record{{Provider: "ibm", Account: "a", Scope: provider.ScopeUnspecified,
			Month: m, Known: provider.Emissions, EmissionsGrams: math.Ldexp(1, int(m-first))}}}
	}
	in := Input{Sources: map[string]*store.SourceData{"x": d}, Schedules: schedules}
	monthsOf := func(grams float64) []string {
		var out []string
		for k := 0; k < 64; k++ {
			if uint64(grams)&(1<<k) != 0 {
				out = append(out, first.Add(k).String())
			}
		}
		return out
	}
	span := func(a, b string) []string {
		ma, _ := provider.ParseMonth(a)
		mb, _ := provider.ParseMonth(b)
		var out []string
		for _, m := range provider.Range(ma, mb) {
			out = append(out, m.String())
		}
		return out
	}
	for _, tc := range []struct {
		o       Options
		periods map[string][]string
	}{
		{Options{Period: PeriodYear, FiscalYearStart: time.April}, map[string][]string{
			"FY2023": span("2022-11", "2023-03"), "FY2024": span("2023-04", "2024-03"), "FY2025": span("2024-04", "2024-12")}},
		{Options{Period: PeriodYear}, map[string][]string{
			"2022": span("2022-11", "2022-12"), "2023": span("2023-01", "2023-12"), "2024": span("2024-01", "2024-12")}},
		{Options{Period: PeriodQuarter, FiscalYearStart: time.April, From: "FY2024-Q1", To: "FY2024-Q4"}, map[string][]string{
			"FY2024-Q1": span("2023-04", "2023-06"), "FY2024-Q2": span("2023-07", "2023-09"),
			"FY2024-Q3": span("2023-10", "2023-12"), "FY2024-Q4": span("2024-01", "2024-03")}},
		{Options{Period: PeriodYear, FiscalYearStart: time.October, From: "FY2024", To: "FY2024"}, map[string][]string{
			"FY2024": span("2023-10", "2024-09")}},
	} {
		tc.o.Unit = UnitGrams
		tc.o.By = []string{DimProvider}
		r := build(t, in, tc.o)
		if len(r.Rows) != len(tc.periods) {
			t.Errorf("%+v: %d rows, want %d", tc.o, len(r.Rows), len(tc.periods))
		}
		for _, row := range r.Rows {
			want, ok := tc.periods[row.Period]
			if !ok {
				t.Errorf("%+v: unexpected period %s", tc.o, row.Period)
				continue
			}
			if got := monthsOf(*row.LocationBased); !slices.Equal(got, want) {
				t.Errorf("%+v: %s sums %v, want %v", tc.o, row.Period, got, want)
			}
			if row.MonthsCovered != len(want) {
				t.Errorf("%+v: %s covers %d months, want %d", tc.o, row.Period, row.MonthsCovered, len(want))
			}
		}
	}
}

func TestMarketBased(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodYear, Format: FormatCSV})
	for _, row := range r.Rows {
		wantEmpty := row.Provider != "gcp" || row.Period == "2022" || row.Scope == ScopeNone
		if (row.MarketBased == nil) != wantEmpty {
			t.Errorf("%s %s scope %s: market-based %v, want empty: %v", row.Period, row.Provider, row.Scope, row.MarketBased, wantEmpty)
		}
		if row.Scope == ScopeNone && (row.LocationBased != nil || row.CostUSD == nil) {
			t.Errorf("%s %s scope none: want cost only, got %+v", row.Period, row.Provider, row)
		}
	}
	if !slices.Equal(r.Totals.MarketBasedProviders, []string{"gcp"}) {
		t.Errorf("market-based total providers = %v, want [gcp]", r.Totals.MarketBasedProviders)
	}
	recs, err := csv.NewReader(bytes.NewReader(render(t, r))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "market_based_tco2e")
	for _, rec := range recs[1:] {
		switch {
		case rec[0] == TotalMarketBased:
			if rec[col] == "" || !strings.Contains(rec[len(rec)-1], "market-based total covers: gcp") {
				t.Errorf("market-based total row %q", rec)
			}
		case rec[1] == "ibm" || rec[1] == "azure" || rec[0] == "2022":
			if rec[col] != "" {
				t.Errorf("row %q: market-based cell %q, want empty", rec, rec[col])
			}
		}
	}

	// Without provider in By, rows mix providers and none may be summed.
	r = build(t, dataset(), Options{By: []string{DimScope}})
	if r.Totals.MarketBased != nil || r.Totals.MarketBasedRows != 0 {
		t.Errorf("by scope: market-based total %v over %d rows, want none", r.Totals.MarketBased, r.Totals.MarketBasedRows)
	}
	for _, row := range r.Rows {
		if row.Scope == "2" && row.MarketBased != nil {
			t.Errorf("%s scope 2 mixes Azure and GCP, market-based %v", row.Period, *row.MarketBased)
		}
	}
}

func TestProvisional(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodQuarter, By: []string{DimProvider}})
	for _, row := range r.Rows {
		// GCP's 2024-09 was final on 2024-11-14; Q4 months are not.
		want := row.Period == "2024-Q4"
		if row.Provisional != want {
			t.Errorf("%s %s: provisional %v, want %v", row.Period, row.Provider, row.Provisional, want)
		}
	}
	// Before the year is over, the year is provisional whatever the
	// schedules say.
	in := dataset()
	in.Schedules = nil
	r = build(t, in, Options{Now: time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), By: []string{DimProvider}})
	for _, row := range r.Rows {
		if row.Provisional != (row.Period == "2024") {
			t.Errorf("%s %s: provisional %v", row.Period, row.Provider, row.Provisional)
		}
	}
}

func TestIncompleteAndEmptyPeriods(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodYear, From: "2021", To: "2025", By: []string{DimProvider}})
	got := map[string][2]int{}
	for _, row := range r.Rows {
		got[row.Period+" "+row.Provider] = [2]int{row.MonthsCovered, row.MonthsExpected}
	}
	want := map[string][2]int{
		"2021 ": {0, 12}, "2025 ": {0, 12},
		"2022 gcp": {2, 12}, "2022 ibm": {2, 12},
		"2023 azure": {12, 12}, "2023 gcp": {12, 12}, "2023 ibm": {12, 12},
		"2024 azure": {12, 12}, "2024 gcp": {12, 12}, "2024 ibm": {11, 12},
	}
	if len(got) != len(want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%q: months %v, want %v", k, got[k], w)
		}
	}
	if r.Rows[0].Note == "" || !r.Rows[len(r.Rows)-1].Provisional {
		t.Errorf("empty periods: first %+v, last %+v", r.Rows[0], r.Rows[len(r.Rows)-1])
	}

	empty := build(t, Input{}, Options{Format: FormatJSON})
	if len(empty.Rows) != 0 || empty.Options.From != "" {
		t.Errorf("no data: %+v", empty)
	}
	if b := render(t, empty); !bytes.Contains(b, []byte(`"rows": []`)) {
		t.Errorf("no data: JSON %s", b)
	}
}

func TestYearlyWater(t *testing.T) {
	in := dataset()
	in.Sources["aws"] = &store.SourceData{Name: "aws", Provider: "aws",
		Months: map[provider.Month]*store.MonthData{
			provider.NewMonth(2023, time.May): {Records: []provider.Record{{Provider: "aws", Account: "111122223333",
				Service: "AmazonEC2", Location: "eu-west-1", Scope: provider.Scope2, Known: provider.Emissions | provider.EmissionsMarketBased,
				EmissionsGrams: 5e6, MarketBasedGrams: 1e6}}},
		},
		Yearly: []provider.YearlyWater{
			{Provider: "aws", Account: "111122223333", Service: "AmazonEC2", Location: "eu-west-1", Year: 2023, CubicMeters: 120.5},
			{Provider: "aws", Account: "111122223333", Service: "AmazonEC2", Location: "eu-west-1", Year: 2024, CubicMeters: 99.25},
		}}
	r := build(t, in, Options{Period: PeriodYear, By: []string{DimProvider, DimScope}})
	water := map[string]float64{}
	for _, row := range r.Rows {
		if row.Provider == "aws" && row.WaterM3 != nil {
			if row.Scope != ScopeNone || row.LocationBased != nil {
				t.Errorf("yearly water in row %+v", row)
			}
			water[row.Period] = *row.WaterM3
		}
	}
	if water["2023"] != 120.5 || water["2024"] != 99.25 || len(water) != 2 {
		t.Errorf("yearly water by year = %v", water)
	}
	if *r.Totals.WaterM3 != 219.75 || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "Water of the year rows includes") }) {
		t.Errorf("water total %v, notes %q", *r.Totals.WaterM3, r.Notes)
	}
	if !slices.Equal(r.Totals.MarketBasedProviders, []string{"aws", "gcp"}) {
		t.Errorf("market-based providers %v", r.Totals.MarketBasedProviders)
	}

	for _, o := range []Options{{Period: PeriodQuarter}, {Period: PeriodYear, FiscalYearStart: time.April}, {Period: PeriodMonth}} {
		o.Format = FormatCSV
		r := build(t, in, o)
		for _, row := range r.Rows {
			if row.Provider == "aws" && row.WaterM3 != nil {
				t.Errorf("%+v: yearly water in %+v", o, row)
			}
		}
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "Yearly water (aws) is left out") }) {
			t.Errorf("%+v: notes %q", o, r.Notes)
		}
		if b := render(t, r); !bytes.Contains(b, []byte("\nNOTE,,,,,,,,,,,,\"Yearly water (aws) is left out")) {
			t.Errorf("%+v: CSV without the note:\n%s", o, b)
		}
	}
}

func TestCSVDefusesFormulas(t *testing.T) {
	in := Input{Sources: map[string]*store.SourceData{"x": {Name: "x", Provider: "gcp",
		Accounts: []provider.Account{{Provider: "gcp", ID: "p", Name: `=HYPERLINK("http://x")`}},
		Months: map[provider.Month]*store.MonthData{first: {Records: []provider.Record{{Provider: "gcp", Account: "p",
			Service: "+svc", Location: "l", Month: first, Known: provider.Cost, CostUSD: -1.5}}}}}}}
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
	} {
		_, err := Build(dataset(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%+v) error %v, want %q", tc.o, err, tc.want)
		}
	}
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

func TestGapNotes(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodYear})
	want := []string{
		"Source azure-prod (azure) holds no emissions for 2022-01 to 2022-12: not published yet, not fetched, or older than the data kept.",
		"Source gcp-main (gcp) holds no emissions for 2022-01 to 2022-10: not published yet, not fetched, or older than the data kept.",
		"Source ibm (ibm) holds no emissions for 2022-01 to 2022-10, 2024-12: not published yet, not fetched, or older than the data kept.",
	}
	if !slices.Equal(r.Notes, want) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(r.Notes, "\n"), strings.Join(want, "\n"))
	}
	// Months not over yet are missing from no one.
	r = build(t, dataset(), Options{Period: PeriodYear, From: "2024", To: "2025", Now: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)})
	want = []string{
		"Source azure-prod (azure) holds no emissions for 2025-01: not published yet, not fetched, or older than the data kept.",
		"Source gcp-main (gcp) holds no emissions for 2025-01: not published yet, not fetched, or older than the data kept.",
		"Source ibm (ibm) holds no emissions for 2024-12 to 2025-01: not published yet, not fetched, or older than the data kept.",
	}
	if !slices.Equal(r.Notes, want) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(r.Notes, "\n"), strings.Join(want, "\n"))
	}
}

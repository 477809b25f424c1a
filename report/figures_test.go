package report

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

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
				loc += value(mr.Values, KeyLocationBased)
				if mr.Values[KeyMarketBased] == nil {
					mktComplete = false
				} else {
					mkt += value(mr.Values, KeyMarketBased)
				}
				for _, d := range in.Sources {
					if md := d.Months[m]; md != nil && d.Provider == yr.Provider {
						for rec := range md.All() {
							direct += rec.EmissionsGrams
						}
					}
				}
			}
			got := value(yr.Values, KeyLocationBased)
			// Month rows are rounded to the gram: allow half a gram each.
			if math.Abs(got-loc) > 0.5*float64(covered+1) || math.Abs(got-direct) > 0.5 {
				t.Errorf("FY start %d, %s %s: location-based %v, months sum to %v, records to %v", fy, yr.Period, yr.Provider, got, loc, direct)
			}
			if yr.MonthsCovered != covered || yr.MonthsExpected != 12 {
				t.Errorf("FY start %d, %s %s: months %d/%d, want %d/12", fy, yr.Period, yr.Provider, yr.MonthsCovered, yr.MonthsExpected, covered)
			}
			switch gotMkt := yr.Values[KeyMarketBased]; {
			case !mktComplete && gotMkt != nil:
				t.Errorf("%s %s: market-based %v, but a month has none", yr.Period, yr.Provider, *gotMkt)
			case mktComplete && gotMkt == nil:
				t.Errorf("%s %s: market-based empty, but every month has one", yr.Period, yr.Provider)
			case mktComplete && math.Abs(*gotMkt-mkt) > 0.5*float64(covered+1):
				t.Errorf("%s %s: market-based %v, months sum to %v", yr.Period, yr.Provider, *gotMkt, mkt)
			}
		}
	}
}

// TestFiscalYearMonths gives month k of the data 2^k grams, so that a
// period's sum names exactly the months it holds.
func TestFiscalYearMonths(t *testing.T) {
	d := &store.SourceData{Name: "x", Provider: "ibm", Months: map[provider.Month]*store.MonthData{}}
	for m := first; m <= last; m++ {
		d.Months[m] = store.NewMonthData([]provider.Record{{Provider: "ibm", Account: "a", Scope: provider.ScopeUnspecified,
			Month: m, Known: provider.Emissions, EmissionsGrams: math.Ldexp(1, int(m-first))}})
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
			if got := monthsOf(value(row.Values, KeyLocationBased)); !slices.Equal(got, want) {
				t.Errorf("%+v: %s sums %v, want %v", tc.o, row.Period, got, want)
			}
			if row.MonthsCovered != len(want) {
				t.Errorf("%+v: %s covers %d months, want %d", tc.o, row.Period, row.MonthsCovered, len(want))
			}
		}
	}
}

// TestTotalsPerPeriod: each period's total is the sum of its rows, per
// column, never of another period's; a provider's total is the sum of its
// rows; and each total says what its methods cover.
func TestTotalsPerPeriod(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodYear, Unit: UnitGrams})
	if len(r.Totals) != 3*3+2 { // 2022: gcp, ibm; 2023 and 2024: azure, gcp, ibm; each with its total
		t.Fatalf("%d totals: %+v", len(r.Totals), r.Totals)
	}
	for _, tot := range r.Totals {
		sums := map[string]float64{}
		rows := 0
		for _, row := range r.Rows {
			if row.Period != tot.Period || tot.Provider != "" && row.Provider != tot.Provider {
				continue
			}
			rows++
			for k, v := range row.Values {
				if v != nil && (k != KeyMarketBased || slices.Contains(tot.Methods.MarketBased, row.Provider)) {
					sums[k] += *v
				}
			}
		}
		if tot.Rows != rows {
			t.Errorf("%s %q: %d rows, want %d", tot.Period, tot.Provider, tot.Rows, rows)
		}
		for _, c := range r.Columns {
			got, want := tot.Values[c.Key], sums[c.Key]
			if got == nil && want != 0 || got != nil && math.Abs(*got-want) > float64(rows) {
				t.Errorf("%s %q %s: total %v, rows sum to %v", tot.Period, tot.Provider, c.Key, got, want)
			}
		}
	}
	all := totalOf(t, r, "2023", "")
	m := all.Methods
	if !slices.Equal(m.LocationBased, []string{"azure", "gcp", "ibm"}) || !slices.Equal(m.MarketBased, []string{"gcp"}) ||
		!slices.Equal(m.MarketBasedLeftOut, []string{"azure", "ibm"}) || len(m.MarketBasedFallback) != 0 ||
		!slices.Equal(m.Comparable.Providers, []string{"gcp"}) {
		t.Errorf("2023 methods %+v", m)
	}
	gcp := totalOf(t, r, "2023", "gcp")
	if *m.Comparable.LocationBased != *gcp.Values[KeyLocationBased] || *m.Comparable.MarketBased != *all.Values[KeyMarketBased] {
		t.Errorf("comparable %v/%v, gcp's location-based %v, market-based total %v", *m.Comparable.LocationBased, *m.Comparable.MarketBased,
			*gcp.Values[KeyLocationBased], *all.Values[KeyMarketBased])
	}
	// 2022: GCP has no market-based figure before 2023.
	if tot := totalOf(t, r, "2022", ""); tot.Values[KeyMarketBased] != nil || !slices.Equal(tot.Methods.MarketBasedLeftOut, []string{"gcp", "ibm"}) {
		t.Errorf("2022 total %+v", tot)
	}
	// Rows by provider alone need no provider totals.
	r = build(t, dataset(), Options{Period: PeriodYear, By: []string{DimProvider}})
	for _, tot := range r.Totals {
		if tot.Provider != "" {
			t.Errorf("provider total %s %s with rows by provider alone", tot.Period, tot.Provider)
		}
	}
}

// TestMarketBasedFallback: with the option, every row with location-based
// emissions but records without a market-based figure is filled and
// flagged, by exactly those records' location-based emissions; rows the
// providers fill themselves are untouched.
func TestMarketBasedFallback(t *testing.T) {
	for _, by := range [][]string{{DimProvider, DimScope}, {DimScope}, {DimProvider, DimAccount, DimService, DimLocation, DimScope}} {
		for _, period := range []string{PeriodMonth, PeriodYear} {
			o := Options{Period: period, By: by, Unit: UnitGrams}
			off := build(t, dataset(), o)
			o.MarketBasedFallback = true
			on := build(t, dataset(), o)
			if len(on.Rows) != len(off.Rows) {
				t.Fatalf("%v %s: %d rows with the fallback, %d without", by, period, len(on.Rows), len(off.Rows))
			}
			for i := range on.Rows {
				a, b := off.Rows[i], on.Rows[i]
				filled := a.Values[KeyLocationBased] != nil && a.Values[KeyMarketBased] == nil
				flagged := slices.Contains(b.Flags, FlagMarketBasedFallback)
				switch {
				case filled != flagged || filled != (b.MarketBasedFallback != nil):
					t.Errorf("%v %s %+v: filled %v, flagged %v, fallback %v", by, period, b, filled, flagged, b.MarketBasedFallback)
				case !filled && !sameFloat(a.Values[KeyMarketBased], b.Values[KeyMarketBased]):
					t.Errorf("%v %s %+v: market-based changed without a fallback", by, period, b)
				case filled && math.Abs(value(b.Values, KeyMarketBased)-value(b.Values, KeyLocationBased)) > 0.5 && *b.MarketBasedFallback == value(b.Values, KeyLocationBased):
					t.Errorf("%v %s %+v: wholly filled, yet the figures differ", by, period, b)
				}
				if !filled && a.MarketBasedFallback != nil {
					t.Errorf("fallback amount without the option: %+v", a)
				}
			}
			for _, tot := range on.Totals {
				if len(tot.Methods.MarketBasedLeftOut) != 0 || (len(tot.Methods.MarketBasedFallback) > 0) != slices.Contains(tot.Flags, FlagMarketBasedFallback) {
					t.Errorf("%v %s total %s: methods %+v, flags %v", by, period, tot.Period, tot.Methods, tot.Flags)
				}
				if tot.Values[KeyLocationBased] != nil && !sameFloat(tot.Methods.Comparable.LocationBased, tot.Values[KeyLocationBased]) {
					t.Errorf("%v %s total %s: with the fallback both methods cover every provider, comparable %v", by, period, tot.Period, tot.Methods.Comparable)
				}
			}
		}
	}
	// A row that mixes records with and without a market-based figure is
	// filled by the latter alone.
	r := build(t, dataset(), Options{Period: PeriodYear, By: []string{DimScope}, From: "2023", To: "2023", MarketBasedFallback: true, Unit: UnitGrams})
	for _, row := range r.Rows {
		if row.Scope != "2" {
			continue
		}
		azure := build(t, dataset(), Options{Period: PeriodYear, By: []string{DimProvider, DimScope}, From: "2023", To: "2023", Unit: UnitGrams})
		for _, ar := range azure.Rows {
			if ar.Provider == "azure" && ar.Scope == "2" && math.Abs(*row.MarketBasedFallback-*ar.Values[KeyLocationBased]) > 1 {
				t.Errorf("scope 2 filled with %v, Azure's location-based is %v", *row.MarketBasedFallback, *ar.Values[KeyLocationBased])
			}
		}
	}
}

func sameFloat(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// TestCoveragePerProvider: a row that mixes providers gives each one's
// months and sources, and counts as covered the months all of them have.
func TestCoveragePerProvider(t *testing.T) {
	in := dataset()
	// GCP's data starts in May 2023 instead, for the test.
	for m := range in.Sources["gcp-main"].Months {
		if m < provider.NewMonth(2023, time.May) {
			delete(in.Sources["gcp-main"].Months, m)
		}
	}
	r := build(t, in, Options{Period: PeriodYear, By: []string{DimScope}, From: "2023", To: "2023"})
	for _, row := range r.Rows {
		if row.Scope != "1" {
			continue
		}
		want := []Coverage{{Provider: "azure", Months: 12, Sources: []string{"azure-prod"}}, {Provider: "gcp", Months: 8, Sources: []string{"gcp-main"}}}
		if !slices.EqualFunc(row.Coverage, want, func(a, b Coverage) bool {
			return a.Provider == b.Provider && a.Months == b.Months && slices.Equal(a.Sources, b.Sources)
		}) || row.MonthsCovered != 8 || !slices.Contains(row.Flags, FlagIncomplete) {
			t.Errorf("2023 scope 1: months %d, coverage %+v, flags %v", row.MonthsCovered, row.Coverage, row.Flags)
		}
		for _, format := range []string{FormatCSV, FormatMarkdown} {
			r.Options.Format = format
			if b := render(t, r); !bytes.Contains(b, []byte("azure 12/12 [azure-prod]; gcp 8/12 [gcp-main]")) {
				t.Errorf("%s without the coverage:\n%s", format, b)
			}
		}
	}
}

func TestMarketBasedColumns(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodYear})
	for _, row := range r.Rows {
		wantEmpty := row.Provider != "gcp" || row.Period == "2022" || row.Scope == ScopeNone
		if (row.Values[KeyMarketBased] == nil) != wantEmpty {
			t.Errorf("%s %s scope %s: market-based %v, want empty: %v", row.Period, row.Provider, row.Scope, row.Values[KeyMarketBased], wantEmpty)
		}
		if row.Scope == ScopeNone && (row.Values[KeyLocationBased] != nil || row.Values["cost_usd"] == nil) {
			t.Errorf("%s %s scope none: want cost only, got %+v", row.Period, row.Provider, row)
		}
	}
	// Without provider in By, rows mix providers and none may be summed.
	r = build(t, dataset(), Options{By: []string{DimScope}})
	for _, row := range r.Rows {
		if row.Scope == "2" && row.Values[KeyMarketBased] != nil {
			t.Errorf("%s scope 2 mixes Azure and GCP, market-based %v", row.Period, *row.Values[KeyMarketBased])
		}
	}
	for _, tot := range r.Totals {
		if tot.Period != "2022" && (tot.Values[KeyMarketBased] == nil || !slices.Equal(tot.Methods.MarketBased, []string{"gcp"})) {
			t.Errorf("%s total: market-based %v over %v, want GCP's", tot.Period, tot.Values[KeyMarketBased], tot.Methods.MarketBased)
		}
	}
}

func TestRevisable(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodQuarter, By: []string{DimProvider}})
	for _, row := range r.Rows {
		// GCP's 2024-09 was final on 2024-11-14; Q4 months are not.
		want := row.Period == "2024-Q4"
		if row.Revisable != want || slices.Contains(row.Flags, FlagRevisable) != want || row.Provisional {
			t.Errorf("%s %s: revisable %v, flags %v, want %v", row.Period, row.Provider, row.Revisable, row.Flags, want)
		}
	}
	// Before the year is over, the year is revisable whatever the
	// schedules say.
	in := dataset()
	in.Schedules = nil
	r = build(t, in, Options{Now: time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), By: []string{DimProvider}})
	for _, row := range r.Rows {
		if row.Revisable != (row.Period == "2024") {
			t.Errorf("%s %s: revisable %v", row.Period, row.Provider, row.Revisable)
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
	if r.Rows[0].Note == "" || !r.Rows[len(r.Rows)-1].Revisable {
		t.Errorf("empty periods: first %+v, last %+v", r.Rows[0], r.Rows[len(r.Rows)-1])
	}
	if tot := totalOf(t, r, "2021", ""); tot.MonthsCovered != 0 || len(tot.Coverage) != 3 || tot.Values[KeyLocationBased] != nil {
		t.Errorf("2021 total %+v", tot)
	}

	empty := build(t, Input{}, Options{Format: FormatJSON})
	if len(empty.Rows) != 0 || empty.Options.From != "" {
		t.Errorf("no data: %+v", empty)
	}
	if b := render(t, empty); !bytes.Contains(b, []byte(`"rows": []`)) || !bytes.Contains(b, []byte(`"totals": []`)) {
		t.Errorf("no data: JSON %s", b)
	}
}

// withWater adds AWS (market-based, yearly water withdrawals) and
// Scaleway (monthly water usage) to the dataset.
func withWater(in Input) Input {
	in.Methodology = map[string]provider.Methodology{"aws": {Water: provider.WaterWithdrawal}, "scaleway": {Water: provider.WaterUsage}}
	may := provider.NewMonth(2023, time.May)
	in.Sources["aws"] = &store.SourceData{Name: "aws", Provider: "aws",
		Months: map[provider.Month]*store.MonthData{
			may: store.NewMonthData([]provider.Record{{Provider: "aws", Account: "111122223333",
				Service: "AmazonEC2", Location: "eu-west-1", Scope: provider.Scope2, Known: provider.Emissions | provider.EmissionsMarketBased,
				EmissionsGrams: 5e6, MarketBasedGrams: 1e6, Month: may}}),
		},
		Yearly: []provider.YearlyWater{
			{Provider: "aws", Account: "111122223333", Service: "AmazonEC2", Location: "eu-west-1", Year: 2023, CubicMeters: 120.5},
			{Provider: "aws", Account: "111122223333", Service: "AmazonEC2", Location: "eu-west-1", Year: 2024, CubicMeters: 99.25},
		}}
	in.Sources["scw"] = &store.SourceData{Name: "scw", Provider: "scaleway", Months: map[provider.Month]*store.MonthData{}}
	for m := provider.NewMonth(2024, time.October); m <= last; m++ {
		in.Sources["scw"].Months[m] = store.NewMonthData([]provider.Record{{Provider: "scaleway", Account: "p", Service: "instances",
			Location: "fr-par", Scope: provider.ScopeUnspecified, Month: m, Known: provider.Emissions | provider.Water,
			EmissionsGrams: 1000, WaterCubicMeters: 2.5}})
	}
	return in
}

// TestWaterMeasuresAreNeverAdded: water withdrawn per calendar year and
// water used per month have columns of their own, in rows and totals.
func TestWaterMeasuresAreNeverAdded(t *testing.T) {
	in := withWater(dataset())
	r := build(t, in, Options{Period: PeriodYear, By: []string{DimProvider, DimScope}})
	keys := []string{}
	for _, c := range r.Columns {
		if c.Water != "" {
			keys = append(keys, c.Key+"/"+c.Granularity)
		}
	}
	if want := []string{"water_usage_m3/month", "water_withdrawal_calendar_year_m3/calendar_year"}; !slices.Equal(keys, want) {
		t.Fatalf("water columns %v, want %v", keys, want)
	}
	withdrawal := map[string]float64{}
	for _, row := range r.Rows {
		if v := row.Values["water_withdrawal_calendar_year_m3"]; v != nil {
			if row.Provider != "aws" || row.Scope != ScopeNone || row.Values[KeyLocationBased] != nil || row.Values["water_usage_m3"] != nil {
				t.Errorf("yearly water in row %+v", row)
			}
			if c := row.Coverage[0]; !c.CalendarYear || row.MonthsCovered != 12 {
				t.Errorf("yearly water row covers %+v, %d months", row.Coverage, row.MonthsCovered)
			}
			withdrawal[row.Period] = *v
		}
	}
	if withdrawal["2023"] != 120.5 || withdrawal["2024"] != 99.25 || len(withdrawal) != 2 {
		t.Errorf("yearly water by year = %v", withdrawal)
	}
	tot := totalOf(t, r, "2024", "")
	if value(tot.Values, "water_withdrawal_calendar_year_m3") != 99.25 || value(tot.Values, "water_usage_m3") != 7.5 {
		t.Errorf("2024 water totals %v and %v", value(tot.Values, "water_withdrawal_calendar_year_m3"), value(tot.Values, "water_usage_m3"))
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool {
		return strings.HasPrefix(n, "Water reported per calendar year (aws: withdrawal) is in columns of its own")
	}) {
		t.Errorf("notes %q", r.Notes)
	}
	if m := totalOf(t, r, "2023", "").Methods; !slices.Equal(m.MarketBased, []string{"aws", "gcp"}) {
		t.Errorf("2023 market-based providers %v", m.MarketBased)
	}

	for _, o := range []Options{{Period: PeriodQuarter}, {Period: PeriodYear, FiscalYearStart: time.April}, {Period: PeriodMonth}} {
		o.Format = FormatCSV
		r := build(t, in, o)
		for _, row := range r.Rows {
			if row.Values["water_withdrawal_calendar_year_m3"] != nil {
				t.Errorf("%+v: yearly water in %+v", o, row)
			}
		}
		if !slices.ContainsFunc(r.Notes, func(n string) bool {
			return strings.HasPrefix(n, "Water reported per calendar year (aws: withdrawal) is left out")
		}) {
			t.Errorf("%+v: notes %q", o, r.Notes)
		}
		if b := render(t, r); !bytes.Contains(b, []byte(`,"Water reported per calendar year (aws: withdrawal) is left out`)) {
			t.Errorf("%+v: CSV without the note:\n%s", o, b)
		}
	}
}

// TestProvisionalEstimates: estimates have rows of their own, flagged,
// and reach the totals only when asked.
func TestProvisionalEstimates(t *testing.T) {
	in := dataset()
	jan := provider.NewMonth(2025, time.January)
	in.Provisional = map[string][]provider.Record{"gcp-main": {
		{Provider: "gcp", Account: "shop-prod", Service: "Compute Engine", Location: "europe-west1", Scope: provider.Scope2, Month: jan,
			Known: provider.Emissions | provider.EmissionsMarketBased, EmissionsGrams: 2e6, MarketBasedGrams: 1e6},
		// A month the source has published is not estimated.
		{Provider: "gcp", Account: "shop-prod", Service: "Compute Engine", Location: "europe-west1", Scope: provider.Scope2, Month: last,
			Known: provider.Emissions, EmissionsGrams: 9e9},
	}}
	for _, include := range []bool{false, true} {
		r := build(t, in, Options{Period: PeriodYear, Unit: UnitGrams, IncludeProvisional: include, Now: time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC)})
		var estimates []Row
		for _, row := range r.Rows {
			if row.Provisional {
				estimates = append(estimates, row)
			}
		}
		if len(estimates) != 1 || estimates[0].Period != "2025" || value(estimates[0].Values, KeyLocationBased) != 2e6 ||
			!slices.Contains(estimates[0].Flags, FlagProvisional) {
			t.Fatalf("include %v: provisional rows %+v", include, estimates)
		}
		if tot := totalOf(t, r, "2024", ""); value(tot.Values, KeyLocationBased) > 1e9 {
			t.Errorf("the estimate of a published month reached the total: %v", value(tot.Values, KeyLocationBased))
		}
		tot := totalOf(t, r, "2025", "")
		if included := tot.Values[KeyLocationBased] != nil; included != include || tot.Provisional != include ||
			slices.Contains(tot.Flags, FlagProvisional) != include || (tot.Rows == 1) != include {
			t.Errorf("include %v: 2025 total %+v", include, tot)
		}
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "Rows flagged provisional") }) {
			t.Errorf("include %v: notes %q", include, r.Notes)
		}
	}
}

func TestGapNotes(t *testing.T) {
	in := dataset()
	feb := provider.NewMonth(2024, time.February)
	in.Sources["ibm"].Months[feb] = fetchedMonth(nil, in.Sources["ibm"].Months[feb].FetchedAt, "")
	in.Sources["azure-prod"].Denied = []provider.Denial{{Provider: "azure", Account: "sub-9", Reason: "no role"}}
	r := build(t, in, Options{Period: PeriodYear})
	want := []string{
		"Source azure-prod (azure) holds no emissions for 2022-01 to 2022-12: not published yet, not fetched, or older than the data kept.",
		"Source azure-prod (azure) is denied access to 1 account (sub-9): their figures are in no row.",
		"Source gcp-main (gcp) holds no emissions for 2022-01 to 2022-10: not published yet, not fetched, or older than the data kept.",
		"Source ibm (ibm) holds no emissions for 2022-01 to 2022-10, 2024-12: not published yet, not fetched, or older than the data kept.",
		"Source ibm (ibm) fetched 2024-02 and the provider returned nothing: no usage, usage of services it does not track, or figures it has not published yet.",
	}
	if !slices.Equal(r.Notes, want) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(r.Notes, "\n"), strings.Join(want, "\n"))
	}
	if tot := totalOf(t, r, "2024", ""); !slices.Contains(tot.Flags, FlagEmptyMonths) {
		t.Errorf("2024 total flags %v", tot.Flags)
	}
	for _, s := range r.Metadata.Sources {
		if s.Name == "ibm" && !slices.Equal(s.EmptyMonths, []string{"2024-02"}) || s.Name == "azure-prod" && s.DeniedAccounts != 1 {
			t.Errorf("source %+v", s)
		}
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

// TestMetadataAndMethodology: every format carries the provenance and
// each provider's methodology; a cloud's caveat flags its rows.
func TestMetadataAndMethodology(t *testing.T) {
	r := build(t, dataset(), Options{Period: PeriodYear})
	m := r.Metadata
	if m.Exporter != Exporter || m.Version != "1.2.3" || m.ConfigHash != "0123456789abcdef" || !m.GeneratedAt.Equal(now) || !m.AsOf.IsZero() {
		t.Errorf("metadata %+v", m)
	}
	if len(m.Sources) != 3 || m.Sources[1].Name != "gcp-main" || m.Sources[1].FirstMonth != "2022-11" || m.Sources[1].LatestMonth != "2024-12" ||
		!m.Sources[1].LastRefreshOK || !m.Sources[1].DataAsOf.Equal(time.Date(2025, 1, 16, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("sources %+v", m.Sources)
	}
	if !slices.Equal(m.ModelVersions["gcp"], []string{"12", "13"}) || len(m.ModelVersions["azure"]) != 0 {
		t.Errorf("model versions %v", m.ModelVersions)
	}
	if len(r.Methodology) != 3 || r.Methodology[2].Provider != "ibm" || r.Methodology[2].Caveats[0].Flag != "unit_unconfirmed" {
		t.Errorf("methodology %+v", r.Methodology)
	}
	for _, row := range r.Rows {
		if slices.Contains(row.Flags, "unit_unconfirmed") != (row.Provider == "ibm") {
			t.Errorf("%s %s: flags %v", row.Period, row.Provider, row.Flags)
		}
	}
	for format, want := range map[string][]string{
		FormatCSV:      {"meta,", "generated_at: 2025-01-20T12:00:00Z", "config_hash: 0123456789abcdef", "cloudcarbon_exporter 1.2.3", "methodology,,ibm,", "ibm caveat unit_unconfirmed: The unit is not documented."},
		FormatJSON:     {`"generated_at": "2025-01-20T12:00:00Z"`, `"config_hash": "0123456789abcdef"`, `"url": "https://example.com/gcp"`, `"flag": "unit_unconfirmed"`},
		FormatMarkdown: {"| Generated | 2025-01-20T12:00:00Z by cloudcarbon_exporter 1.2.3 |", "| Configuration hash | 0123456789abcdef |", "### ibm", "- **Caveat unit_unconfirmed:** The unit is not documented."},
	} {
		r.Options.Format = format
		b := string(render(t, r))
		for _, w := range want {
			if !strings.Contains(b, w) {
				t.Errorf("%s lacks %q", format, w)
			}
		}
	}
}

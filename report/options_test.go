package report

import (
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  Options
	}{
		{"", Options{Period: PeriodYear, FiscalYearStart: 1, By: []string{DimProvider, DimScope}, Unit: UnitTonnes, Format: FormatCSV}},
		{"period=year&format=csv", Options{Period: PeriodYear, FiscalYearStart: 1, By: defaultBy, Unit: UnitTonnes, Format: FormatCSV}},
		{"period=month&from=2024-01&to=2024-12&unit=kg&format=json",
			Options{Period: PeriodMonth, FiscalYearStart: 1, From: "2024-01", To: "2024-12", By: defaultBy, Unit: UnitKilograms, Format: FormatJSON}},
		{"period=quarter&from=2024-q1&to=2025-Q2&by=account,service&by=scope&format=markdown&unit=g",
			Options{Period: PeriodQuarter, FiscalYearStart: 1, From: "2024-Q1", To: "2025-Q2",
				By: []string{DimAccount, DimService, DimScope}, Unit: UnitGrams, Format: FormatMarkdown}},
		{"period=quarter&fiscal_year_start=4&from=FY2026-Q1&to=fy2026-q4",
			Options{Period: PeriodQuarter, FiscalYearStart: time.April, From: "FY2026-Q1", To: "FY2026-Q4", By: defaultBy, Unit: UnitTonnes, Format: FormatCSV}},
		{"period=year&fiscal_year_start=04&from=FY2024&to=FY2026&by=+provider+,+location",
			Options{Period: PeriodYear, FiscalYearStart: time.April, From: "FY2024", To: "FY2026",
				By: []string{DimProvider, DimLocation}, Unit: UnitTonnes, Format: FormatCSV}},
		{"period=month&fiscal_year_start=4&from=2025-04", Options{Period: PeriodMonth, FiscalYearStart: time.April, From: "2025-04",
			By: defaultBy, Unit: UnitTonnes, Format: FormatCSV}},
		{"period=year&fiscal_year_start=1&from=2000&to=2599", Options{Period: PeriodYear, FiscalYearStart: 1, From: "2000", To: "2599",
			By: defaultBy, Unit: UnitTonnes, Format: FormatCSV}},
		{"market_based_fallback=true&include_provisional=false&as_of=2026-02-15", Options{Period: PeriodYear, FiscalYearStart: 1,
			By: defaultBy, Unit: UnitTonnes, Format: FormatCSV, MarketBasedFallback: true, AsOf: time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)}},
		{"include_provisional=true&as_of=2026-02-15T09:30:00%2B01:00", Options{Period: PeriodYear, FiscalYearStart: 1,
			By: defaultBy, Unit: UnitTonnes, Format: FormatCSV, IncludeProvisional: true, AsOf: time.Date(2026, 2, 15, 8, 30, 0, 0, time.UTC)}},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseOptions(v)
		if err != nil {
			t.Errorf("ParseOptions(%q): %v", tc.query, err)
			continue
		}
		if got.Period != tc.want.Period || got.FiscalYearStart != tc.want.FiscalYearStart || got.From != tc.want.From ||
			got.To != tc.want.To || !slices.Equal(got.By, tc.want.By) || got.Unit != tc.want.Unit || got.Format != tc.want.Format ||
			got.MarketBasedFallback != tc.want.MarketBasedFallback || got.IncludeProvisional != tc.want.IncludeProvisional || !got.AsOf.Equal(tc.want.AsOf) {
			t.Errorf("ParseOptions(%q) = %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestParseOptionsErrors(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"period=week", `period: "week" is not one of month, quarter, year`},
		{"period=year&period=month", "period: given 2 times; give it once"},
		{"peroid=year", `unknown parameter "peroid": want period, fiscal_year_start, from, to, by, unit, format, market_based_fallback, include_provisional or as_of`},
		{"market_based_fallback=yes", `market_based_fallback: "yes" is not true or false`},
		{"include_provisional=1", `include_provisional: "1" is not true or false`},
		{"as_of=2026-13-01", `as_of: "2026-13-01" is neither a date like 2026-02-15 nor a time like 2026-02-15T09:30:00Z`},
		{"as_of=yesterday", `as_of: "yesterday" is neither a date like 2026-02-15 nor a time like 2026-02-15T09:30:00Z`},
		{"as_of=2026-01-01&as_of=2026-02-01", "as_of: given 2 times; give it once"},
		{"fiscal_year_start=13", `fiscal_year_start: "13" is not a month number from 1 (calendar years) to 12`},
		{"fiscal_year_start=april", `fiscal_year_start: "april" is not a month number from 1 (calendar years) to 12`},
		{"by=provider,region", `by: "region" is not one of provider, account, service, location, scope`},
		{"by=provider&by=provider", `by: "provider" given twice`},
		{"by=provider,,scope", "by: empty dimension; want a comma-separated list of provider, account, service, location, scope"},
		{"unit=lb", `unit: "lb" is not one of t, kg, g`},
		{"format=xlsx", `format: "xlsx" is not one of csv, json, markdown`},
		{"period=month&from=2025-13", `from: "2025-13" is not a month: want a month like 2025-03`},
		{"period=month&from=2025-3", `from: "2025-3" is not a month period: want a month like 2025-03`},
		{"period=year&from=2025-03", `from: "2025-03" is not a year period: want a year like 2025`},
		{"period=quarter&to=2025Q1", `to: "2025Q1" is not a quarter period: want a quarter like 2025-Q1`},
		{"period=quarter&from=2025-Q5", `from: "2025-Q5" is not a quarter period: want a quarter like 2025-Q1`},
		{"period=year&fiscal_year_start=4&from=2026",
			`from: "2026" names a calendar year: want a year like FY2026 (fiscal years start in month 4 and are named by the year they end in)`},
		{"period=quarter&fiscal_year_start=4&from=2025-Q1",
			`from: "2025-Q1" names a calendar quarter: want a quarter like FY2026-Q1 (fiscal years start in month 4 and are named by the year they end in)`},
		{"period=year&from=FY2026", `from: "FY2026" names a fiscal year: want a year like 2025`},
		{"period=year&from=0000", `from: "0000": year 0 is out of range: want a year like 2025`},
		{"period=year&from=2026&to=2025", "from 2026 is after to 2025"},
		{"period=month&from=2025-03&to=2025-02", "from 2025-03 is after to 2025-02"},
		{"period=month&from=1970-01&to=2025-12", "from 1970-01 to 2025-12 spans 672 months; at most 600"},
		{"period=year&from=2000&to=2600", "from 2000 to 2600 spans 601 years; at most 600"},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseOptions(v)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseOptions(%q) error:\n  %v\nwant:\n  %s", tc.query, err, tc.want)
		}
	}
}

func TestCalendar(t *testing.T) {
	for _, tc := range []struct {
		period string
		start  time.Month
		name   string
		first  string
		months int
	}{
		{PeriodYear, 1, "2025", "2025-01", 12},
		{PeriodYear, 4, "FY2026", "2025-04", 12},
		{PeriodYear, 12, "FY2026", "2025-12", 12},
		{PeriodQuarter, 1, "2025-Q3", "2025-07", 3},
		{PeriodQuarter, 4, "FY2026-Q1", "2025-04", 3},
		{PeriodQuarter, 4, "FY2026-Q4", "2026-01", 3},
		{PeriodQuarter, 7, "FY2026-Q2", "2025-10", 3},
		{PeriodMonth, 4, "2025-04", "2025-04", 1},
	} {
		c := newCalendar(tc.period, tc.start)
		p, err := c.parse(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.first(p).String(); got != tc.first || c.name(p) != tc.name || c.size != tc.months {
			t.Errorf("%s (start %d): first month %s, name %s, want %s", tc.name, tc.start, got, c.name(p), tc.first)
		}
		// Every month of the period maps back to it, the ones around
		// it do not.
		for i := -1; i <= c.size; i++ {
			m := c.first(p).Add(i)
			if in := c.index(m) == p; in != (i >= 0 && i < c.size) {
				t.Errorf("%s: month %s in period: %v", tc.name, m, in)
			}
		}
	}
}

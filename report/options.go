package report

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// MaxPeriods bounds the rows of one dimension value a report may hold, so
// that a typo in from or to ("0025") cannot ask for centuries of rows.
const MaxPeriods = 600

// Period, dimension, unit and format values.
const (
	PeriodMonth   = "month"
	PeriodQuarter = "quarter"
	PeriodYear    = "year"

	DimProvider = "provider"
	DimAccount  = "account"
	DimService  = "service"
	DimLocation = "location"
	DimScope    = "scope"

	UnitTonnes    = "t"
	UnitKilograms = "kg"
	UnitGrams     = "g"

	FormatCSV      = "csv"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
)

var (
	periods    = []string{PeriodMonth, PeriodQuarter, PeriodYear}
	dimensions = []string{DimProvider, DimAccount, DimService, DimLocation, DimScope}
	units      = []string{UnitTonnes, UnitKilograms, UnitGrams}
	formats    = []string{FormatCSV, FormatJSON, FormatMarkdown}
	// defaultBy is the grouping of a report that names none: what a
	// GHG inventory needs, one row per provider and scope.
	defaultBy = []string{DimProvider, DimScope}
)

// Options say what a report covers and how it is written. The zero value
// of every field but Now means its default.
type Options struct {
	// Period is "month", "quarter" or "year" (default).
	Period string
	// FiscalYearStart is the first month of the reporting year: 1 (or 0)
	// for calendar years. Fiscal years are named by the calendar year they
	// end in, as most companies name them: with 4, "FY2026" is 2025-04 to
	// 2026-03 and "FY2026-Q1" is 2025-04 to 2025-06.
	FiscalYearStart time.Month
	// From and To are the first and last period, inclusive, in the
	// Period's syntax: "2025-03"; "2025-Q1" or "FY2026-Q1"; "2025" or
	// "FY2026". Empty: from the first, or to the last, period with data.
	From, To string
	// By lists the dimensions of a row, in column order: any of provider,
	// account, service, location, scope. Empty: provider, scope.
	By []string
	// Unit is the mass of emissions: "t" (default), "kg" or "g" CO2e.
	Unit string
	// Format is "csv" (default), "json" or "markdown".
	Format string
	// MarketBasedFallback fills the market-based figures of the records
	// that carry none with their location-based ones, flagged.
	MarketBasedFallback bool
	// IncludeProvisional adds provisional estimates to the totals; they
	// have rows of their own either way.
	IncludeProvisional bool
	// AsOf, when set, shows the data as it stood then (see the package
	// documentation); at most Now.
	AsOf time.Time
	// Now is the report's time; with no AsOf, it decides which months can
	// still change. Required by Build.
	Now time.Time
}

// parameters are the query parameters of GET /report, in the order
// messages list them; by alone may be repeated.
var parameters = []string{"period", "fiscal_year_start", "from", "to", "by", "unit", "format",
	"market_based_fallback", "include_provisional", "as_of"}

// ParseOptions reads the query string of GET /report: period,
// fiscal_year_start, from, to, by (comma-separated, or repeated), unit,
// format, market_based_fallback and include_provisional (true or false),
// and as_of (a date, 2026-02-15, for its start in UTC, or an RFC 3339
// time). Unknown or repeated parameters are errors rather than ignored,
// so that a typo never yields a report other than the one asked for. Now
// is left for the caller to set.
func ParseOptions(values url.Values) (Options, error) {
	var o Options
	for _, k := range slices.Sorted(maps.Keys(values)) {
		vs := values[k]
		if len(vs) == 0 {
			continue
		}
		if !slices.Contains(parameters, k) {
			return Options{}, fmt.Errorf("unknown parameter %q: want %s or %s", k,
				strings.Join(parameters[:len(parameters)-1], ", "), parameters[len(parameters)-1])
		}
		if k != "by" && len(vs) > 1 {
			return Options{}, fmt.Errorf("%s: given %d times; give it once", k, len(vs))
		}
		v := strings.TrimSpace(vs[0])
		if err := o.set(k, v, vs); err != nil {
			return Options{}, err
		}
	}
	return o.normalize()
}

// set sets the option of parameter k to v (vs: every value given).
func (o *Options) set(k, v string, vs []string) error {
	var err error
	switch k {
	case "market_based_fallback":
		o.MarketBasedFallback, err = parseBool(k, v)
	case "include_provisional":
		o.IncludeProvisional, err = parseBool(k, v)
	case "as_of":
		o.AsOf, err = ParseAsOf(v)
		if err != nil {
			err = fmt.Errorf("as_of: %w", err)
		}
	}
	if err != nil {
		return err
	}
	switch k {
	case "period":
		o.Period = v
	case "fiscal_year_start":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 12 {
			return fmt.Errorf("fiscal_year_start: %q is not a month number from 1 (calendar years) to 12", v)
		}
		o.FiscalYearStart = time.Month(n)
	case "from":
		o.From = v
	case "to":
		o.To = v
	case "unit":
		o.Unit = v
	case "format":
		o.Format = v
	case "by":
		for _, v := range vs {
			for d := range strings.SplitSeq(v, ",") {
				o.By = append(o.By, strings.TrimSpace(d))
			}
		}
	}
	return nil
}

func parseBool(k, v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not true or false", k, v)
}

// ParseAsOf reads the time a report is as of: a date (2026-02-15), which
// stands for its start in UTC, or an RFC 3339 time
// (2026-02-15T09:30:00Z), such as the generated_at of the report to
// reproduce.
func ParseAsOf(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date like 2026-02-15 nor a time like 2026-02-15T09:30:00Z", s)
	}
	return t, nil
}

// normalize returns o with its defaults filled in, or the first problem
// with it.
func (o Options) normalize() (Options, error) {
	if o.Period == "" {
		o.Period = PeriodYear
	}
	if !slices.Contains(periods, o.Period) {
		return o, fmt.Errorf("period: %q is not one of %s", o.Period, strings.Join(periods, ", "))
	}
	if o.FiscalYearStart == 0 {
		o.FiscalYearStart = time.January
	}
	if o.FiscalYearStart < time.January || o.FiscalYearStart > time.December {
		return o, fmt.Errorf("fiscal_year_start: %d is not a month number from 1 (calendar years) to 12", int(o.FiscalYearStart))
	}
	if len(o.By) == 0 {
		o.By = defaultBy
	}
	o.By = slices.Clone(o.By)
	for i, d := range o.By {
		if d == "" {
			return o, errors.New("by: empty dimension; want a comma-separated list of " + strings.Join(dimensions, ", "))
		}
		if !slices.Contains(dimensions, d) {
			return o, fmt.Errorf("by: %q is not one of %s", d, strings.Join(dimensions, ", "))
		}
		if slices.Contains(o.By[:i], d) {
			return o, fmt.Errorf("by: %q given twice", d)
		}
	}
	if o.Unit == "" {
		o.Unit = UnitTonnes
	}
	if !slices.Contains(units, o.Unit) {
		return o, fmt.Errorf("unit: %q is not one of %s", o.Unit, strings.Join(units, ", "))
	}
	if o.Format == "" {
		o.Format = FormatCSV
	}
	if !slices.Contains(formats, o.Format) {
		return o, fmt.Errorf("format: %q is not one of %s", o.Format, strings.Join(formats, ", "))
	}
	cal := newCalendar(o.Period, o.FiscalYearStart)
	from, to := -1, -1
	var err error
	if o.From != "" {
		if from, err = cal.parse(o.From); err != nil {
			return o, fmt.Errorf("from: %w", err)
		}
		o.From = cal.name(from)
	}
	if o.To != "" {
		if to, err = cal.parse(o.To); err != nil {
			return o, fmt.Errorf("to: %w", err)
		}
		o.To = cal.name(to)
	}
	if from >= 0 && to >= 0 {
		if from > to {
			return o, fmt.Errorf("from %s is after to %s", o.From, o.To)
		}
		if n := to - from + 1; n > MaxPeriods {
			return o, fmt.Errorf("from %s to %s spans %d %ss; at most %d", o.From, o.To, n, o.Period, MaxPeriods)
		}
	}
	return o, nil
}

// calendar maps months to periods. Periods are numbered so that
// consecutive periods have consecutive numbers: a month's number is
// shifted so that a reporting year starts at a multiple of 12, then
// divided by the period's length.
type calendar struct {
	period string
	fiscal bool
	// shift moves a fiscal year's first month to the start of the year
	// it is named by: with April, 2025-04 becomes month 0 of 2026.
	shift int
	size  int
}

func newCalendar(period string, start time.Month) calendar {
	c := calendar{period: period, size: 12}
	if start > time.January {
		c.fiscal = true
		c.shift = 12 - int(start-1)
	}
	switch period {
	case PeriodMonth:
		c.size = 1
	case PeriodQuarter:
		c.size = 3
	}
	return c
}

// index returns the number of the period that holds m.
func (c calendar) index(m provider.Month) int { return (int(m) + c.shift) / c.size }

// first returns the first month of period p.
func (c calendar) first(p int) provider.Month { return provider.Month(p*c.size - c.shift) }

// end returns when period p is over.
func (c calendar) end(p int) time.Time { return c.first(p).Add(c.size).Start() }

func (c calendar) name(p int) string {
	fy := ""
	if c.fiscal {
		fy = "FY"
	}
	switch c.period {
	case PeriodMonth:
		return c.first(p).String()
	case PeriodQuarter:
		return fmt.Sprintf("%s%04d-Q%d", fy, p/4, p%4+1)
	}
	return fmt.Sprintf("%s%04d", fy, p)
}

var (
	monthRE   = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})$`)
	quarterRE = regexp.MustCompile(`^(FY)?([0-9]{4})-Q([1-4])$`)
	yearRE    = regexp.MustCompile(`^(FY)?([0-9]{4})$`)
)

// parse reads a period name, insisting on the fiscal or calendar form the
// calendar uses: "2025" read as FY2025 or the reverse would shift a whole
// report by nine months without a word.
func (c calendar) parse(s string) (int, error) {
	u := strings.ToUpper(s)
	var re *regexp.Regexp
	example := "2025-03"
	switch c.period {
	case PeriodMonth:
		re = monthRE
	case PeriodQuarter:
		re, example = quarterRE, "2025-Q1"
		if c.fiscal {
			example = "FY2026-Q1"
		}
	default:
		re, example = yearRE, "2025"
		if c.fiscal {
			example = "FY2026"
		}
	}
	want := fmt.Sprintf("want a %s like %s", c.period, example)
	if c.fiscal && c.period != PeriodMonth {
		want += fmt.Sprintf(" (fiscal years start in month %d and are named by the year they end in)", 12-c.shift+1)
	}
	m := re.FindStringSubmatch(u)
	if m == nil {
		return 0, fmt.Errorf("%q is not a %s period: %s", s, c.period, want)
	}
	if c.period == PeriodMonth {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if y < 1 || mo < 1 || mo > 12 {
			return 0, fmt.Errorf("%q is not a month: %s", s, want)
		}
		return c.index(provider.NewMonth(y, time.Month(mo))), nil
	}
	if (m[1] == "FY") != c.fiscal {
		kind := "calendar"
		if m[1] == "FY" {
			kind = "fiscal"
		}
		return 0, fmt.Errorf("%q names a %s %s: %s", s, kind, c.period, want)
	}
	y, _ := strconv.Atoi(m[2])
	if y < 1 {
		return 0, fmt.Errorf("%q: year 0 is out of range: %s", s, want)
	}
	if c.period == PeriodQuarter {
		q, _ := strconv.Atoi(m[3])
		return y*4 + q - 1, nil
	}
	return y, nil
}

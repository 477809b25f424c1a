// Package report turns the data the exporter holds into a greenhouse-gas
// report: monthly, quarterly or (fiscal) yearly totals by provider, scope
// and the other dimensions, location-based and market-based side by side,
// as CSV, JSON or Markdown. It is a pure function of a store snapshot, the
// providers' publication schedules and a clock: no cloud call, no state.
//
// # Rows and columns
//
// One row per period and value of the By dimensions that has data, in
// that order: period, the By dimensions (account followed by account_name),
// location-based and market-based emissions in the chosen unit of CO2e,
// energy (kWh), water (m3), cost (USD), months covered, months expected,
// provisional, model versions seen, note. A period of the range without
// any data still gets a row, with no dimension values and 0 months
// covered, so that a report never silently covers less than it says.
//
// A quantity no record of the row carries is empty (CSV: empty field; JSON:
// null; Markdown: blank), never 0. The market-based figure is given only
// when every record of the row that has a location-based figure also has a
// market-based one: IBM and Azure report none and GCP none before 2023, so
// a row holding any of them has an empty market-based cell rather than a
// partial sum. The two methods are alternative figures for the same
// emissions and are never added together.
//
// Figures without a GHG scope (GCP billing cost, yearly water) have scope
// "none". AWS reports water per calendar year only: it is added to the
// year rows of calendar-year reports and left out, with a note, of every
// other report.
//
// After the rows come the totals: TOTAL location-based sums every row's
// location-based emissions and carries the energy, water and cost totals;
// TOTAL market-based sums only the rows with a market-based figure and
// names their providers. Totals are summed from unrounded row values.
// Then come the notes of Report.Notes: yearly water left out or added, and
// for each source the months of the range that are over but hold no
// emissions.
//
// # Formats
//
// CSV (RFC 4180, encoding/csv): a header, the rows, the rows "TOTAL
// location-based" and "TOTAL market-based" in the period column with the
// providers they cover in the note column, and one row "NOTE" per note,
// all with the same fields. The emissions columns name the unit
// (location_based_tco2e); model versions are joined with ";". A text cell
// that starts with = + - @ is prefixed with ' so that a spreadsheet pulling
// the CSV over HTTP never runs it as a formula.
//
// JSON: the Report struct (see below). Markdown: a title, the options, the
// table with the totals in bold, and numbered notes saying how to read it.
//
// # Numbers
//
// CSV and JSON carry values rounded to a fixed number of decimals: 6 for
// t, 3 for kg and 0 for g (one gram in each), 6 for kWh, m3 and USD. CSV
// writes exactly those decimals; JSON writes the same rounded value in its
// shortest form. Markdown, for people, rounds further (t 3, kg 1, g 0, kWh
// 1, m3 3, USD 2) and groups thousands with commas.
//
// Sums are float64, in a fixed order: sources by name, months ascending,
// records in stored order; so the same data gives the same bytes.
//
// # JSON schema
//
// The JSON format is the Report struct encoded with encoding/json; its
// field tags are the schema, named by Schema.
package report

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Schema names the JSON layout. It changes when a field changes meaning.
const Schema = "cloudcarbon_exporter/report/v1"

// ScopeNone is the scope value of figures that have no GHG scope.
const ScopeNone = "none"

// Input is the data a report is built from.
type Input struct {
	// Sources are a store snapshot's sources.
	Sources map[string]*store.SourceData
	// Schedules are the publication schedules by provider label; a
	// provider without one is taken as final once a month is over.
	Schedules map[string]provider.Schedule
}

// Report is a built report. Its JSON encoding is the JSON format.
type Report struct {
	// Schema is the constant Schema.
	Schema  string   `json:"schema"`
	Options Settings `json:"options"`
	// Rows are sorted by period, then by the By dimensions in their
	// order, as strings.
	Rows   []Row  `json:"rows"`
	Totals Totals `json:"totals"`
	// Notes say what the rows leave out or how to read them, for this
	// data (the explanations that hold for every report are in the
	// package documentation and the Markdown footnotes).
	Notes []string `json:"notes"`
}

// Settings are the options the report was built with, defaults filled in.
type Settings struct {
	Period string `json:"period"`
	// FiscalYearStart is the first month of the year, 1 for calendar
	// years.
	FiscalYearStart int `json:"fiscal_year_start"`
	// From and To are the first and last period of the report: those
	// asked for, or those of the data held when none was asked for; empty
	// when there is no data and none was asked for.
	From string   `json:"from"`
	To   string   `json:"to"`
	By   []string `json:"by"`
	// Unit is the mass unit of emissions: t, kg or g of CO2e.
	Unit string `json:"unit"`
	// Now is the time the report was built for: what was provisional
	// then.
	Now time.Time `json:"now"`
	// Format is the format Write uses; not part of the JSON, which is
	// always JSON.
	Format string `json:"-"`
}

// Row is one period and value of the By dimensions. Dimensions not in By
// are empty (absent from JSON).
type Row struct {
	Period   string `json:"period"`
	Provider string `json:"provider,omitempty"`
	Account  string `json:"account,omitempty"`
	// AccountName is the provider's display name of Account, when known.
	AccountName string `json:"account_name,omitempty"`
	Service     string `json:"service,omitempty"`
	Location    string `json:"location,omitempty"`
	// Scope is the provider's GHG scope: 1, 2, 3, unspecified, or none
	// for figures without a scope.
	Scope string `json:"scope,omitempty"`

	// LocationBased is the location-based emissions in Settings.Unit of
	// CO2e; null when no record of the row has one.
	LocationBased *float64 `json:"location_based_co2e"`
	// MarketBased is the market-based emissions in Settings.Unit of CO2e;
	// null unless every record of the row with emissions has one.
	MarketBased *float64 `json:"market_based_co2e"`
	EnergyKWh   *float64 `json:"energy_kwh"`
	WaterM3     *float64 `json:"water_m3"`
	CostUSD     *float64 `json:"cost_usd"`

	// MonthsCovered counts the months of the period with data for the
	// row; MonthsExpected the months of the period.
	MonthsCovered  int `json:"months_covered"`
	MonthsExpected int `json:"months_expected"`
	// Provisional is set when a month of the period can still change:
	// the period is not over, or a provider of the row may still publish
	// or restate one of its months.
	Provisional bool `json:"provisional"`
	// ModelVersions are the provider model or data versions the row's
	// months were fetched under, sorted.
	ModelVersions []string `json:"model_versions"`
	Note          string   `json:"note,omitempty"`
}

// Totals are the sums over the rows, one per method.
type Totals struct {
	// LocationBased sums every row's location-based emissions.
	LocationBased          *float64 `json:"location_based_co2e"`
	LocationBasedProviders []string `json:"location_based_providers"`
	// MarketBased sums the market-based emissions of the rows that have
	// one (MarketBasedRows of them); MarketBasedProviders are their
	// providers.
	MarketBased          *float64 `json:"market_based_co2e"`
	MarketBasedProviders []string `json:"market_based_providers"`
	MarketBasedRows      int      `json:"market_based_rows"`
	Rows                 int      `json:"rows"`
	EnergyKWh            *float64 `json:"energy_kwh"`
	WaterM3              *float64 `json:"water_m3"`
	CostUSD              *float64 `json:"cost_usd"`
	Provisional          bool     `json:"provisional"`
	ModelVersions        []string `json:"model_versions"`
}

// unitGrams is the grams in one unit of emissions.
var unitGrams = map[string]float64{UnitTonnes: 1e6, UnitKilograms: 1e3, UnitGrams: 1}

// decimals of the rounded values in CSV and JSON.
var emissionDecimals = map[string]int{UnitTonnes: 6, UnitKilograms: 3, UnitGrams: 0}

const (
	otherDecimals = 6
	joulesPerKWh  = 3.6e6
)

// group accumulates one row.
type group struct {
	period int
	dims   [5]string

	loc, mkt, energy, water, cost float64
	has                           provider.Quantity
	// mktMissing is set by a record with emissions but no market-based
	// figure: the row's market-based sum would be partial.
	mktMissing bool
	// months has bit i set when month i of the period has data.
	months    uint16
	providers []string
	revisions []string
}

type groupKey struct {
	period int
	dims   [5]string
}

func addOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// Build makes the report of in for o.
func Build(in Input, o Options) (*Report, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	if o.Now.IsZero() {
		return nil, errors.New("report: Options.Now is not set")
	}
	cal := newCalendar(o.Period, o.FiscalYearStart)
	names := slices.Sorted(maps.Keys(in.Sources))
	yearlyFits := o.Period == PeriodYear && !cal.fiscal

	// The range of the data, for the ends not asked for.
	first, last, found := 0, 0, false
	see := func(p int) {
		if !found || p < first {
			first = p
		}
		if !found || p > last {
			last = p
		}
		found = true
	}
	for _, name := range names {
		d := in.Sources[name]
		for m, md := range d.Months {
			if md != nil && len(md.Records) > 0 {
				see(cal.index(m))
			}
		}
		if yearlyFits {
			for _, w := range d.Yearly {
				see(w.Year)
			}
		}
	}
	from, to := -1, -1
	if o.From != "" {
		from, _ = cal.parse(o.From)
	}
	if o.To != "" {
		to, _ = cal.parse(o.To)
	}
	switch {
	case from < 0 && to < 0 && !found:
	case from < 0 && to < 0:
		from, to = first, last
	case from < 0:
		from = to
		if found && first < to {
			from = first
		}
	case to < 0:
		to = from
		if found && last > from {
			to = last
		}
	}
	if from >= 0 {
		if n := to - from + 1; n > MaxPeriods {
			return nil, fmt.Errorf("report: %s to %s spans %d %ss; at most %d: narrow it with from and to",
				cal.name(from), cal.name(to), n, o.Period, MaxPeriods)
		}
	}

	r := &Report{
		Schema: Schema,
		Options: Settings{
			Period: o.Period, FiscalYearStart: int(o.FiscalYearStart),
			By: o.By, Unit: o.Unit, Now: o.Now.UTC(), Format: o.Format,
		},
		Rows:   []Row{},
		Notes:  []string{},
		Totals: Totals{LocationBasedProviders: []string{}, MarketBasedProviders: []string{}, ModelVersions: []string{}},
	}
	if from < 0 {
		return r, nil
	}
	r.Options.From, r.Options.To = cal.name(from), cal.name(to)

	dimIndex := func(name string) int { return slices.Index(o.By, name) }
	iProvider, iAccount, iService, iLocation, iScope :=
		dimIndex(DimProvider), dimIndex(DimAccount), dimIndex(DimService), dimIndex(DimLocation), dimIndex(DimScope)
	keyOf := func(period int, prov, account, service, location, scope string) groupKey {
		k := groupKey{period: period}
		set := func(i int, v string) {
			if i >= 0 {
				k.dims[i] = strings.ToValidUTF8(v, "\uFFFD")
			}
		}
		set(iProvider, prov)
		set(iAccount, account)
		set(iService, service)
		set(iLocation, location)
		set(iScope, scope)
		return k
	}
	groups := map[groupKey]*group{}
	get := func(k groupKey) *group {
		g := groups[k]
		if g == nil {
			g = &group{period: k.period, dims: k.dims}
			groups[k] = g
		}
		return g
	}

	accountNames := map[[2]string]string{}
	var yearly []provider.YearlyWater
	for _, name := range names {
		d := in.Sources[name]
		for _, a := range d.Accounts {
			if k := [2]string{a.Provider, a.ID}; accountNames[k] == "" {
				accountNames[k] = a.Name
			}
		}
		yearly = append(yearly, d.Yearly...)
		for _, m := range slices.Sorted(maps.Keys(d.Months)) {
			p := cal.index(m)
			md := d.Months[m]
			if p < from || p > to || md == nil {
				continue
			}
			bit := uint16(1) << (m - cal.first(p))
			for i := range md.Records {
				rec := &md.Records[i]
				if rec.Known == 0 {
					continue
				}
				scope := string(rec.Scope)
				if scope == "" {
					scope = ScopeNone
				}
				g := get(keyOf(p, rec.Provider, rec.Account, rec.Service, rec.Location, scope))
				g.months |= bit
				g.has |= rec.Known
				g.providers = addOnce(g.providers, rec.Provider)
				if md.Revision != "" {
					g.revisions = addOnce(g.revisions, md.Revision)
				}
				if rec.Has(provider.Emissions) {
					g.loc += rec.EmissionsGrams
					if !rec.Has(provider.EmissionsMarketBased) {
						g.mktMissing = true
					}
				}
				if rec.Has(provider.EmissionsMarketBased) {
					g.mkt += rec.MarketBasedGrams
				}
				if rec.Has(provider.Energy) {
					g.energy += rec.EnergyJoules
				}
				if rec.Has(provider.Water) {
					g.water += rec.WaterCubicMeters
				}
				if rec.Has(provider.Cost) {
					g.cost += rec.CostUSD
				}
			}
		}
	}
	if len(yearly) > 0 {
		var provs []string
		added := 0
		for _, w := range yearly {
			provs = addOnce(provs, w.Provider)
			if !yearlyFits || w.Year < from || w.Year > to {
				continue
			}
			g := get(keyOf(w.Year, w.Provider, w.Account, w.Service, w.Location, ScopeNone))
			g.water += w.CubicMeters
			g.has |= provider.Water
			g.providers = addOnce(g.providers, w.Provider)
			added++
		}
		slices.Sort(provs)
		who := strings.Join(provs, ", ")
		switch {
		case !yearlyFits:
			r.Notes = append(r.Notes, fmt.Sprintf(
				"Yearly water (%s) is left out: it is reported per calendar year only and fits only calendar-year reports (period year, fiscal_year_start 1).", who))
		case added > 0:
			r.Notes = append(r.Notes, fmt.Sprintf(
				"Water of the year rows includes the water %s reports per calendar year only; it has no scope (scope none).", who))
		}
	}

	r.Notes = append(r.Notes, gaps(in.Sources, names, cal.first(from), cal.first(to).Add(cal.size-1), o.Now)...)

	sorted := slices.SortedFunc(maps.Values(groups), func(a, b *group) int {
		if a.period != b.period {
			return a.period - b.period
		}
		for i := range o.By {
			if c := strings.Compare(a.dims[i], b.dims[i]); c != 0 {
				return c
			}
		}
		return 0
	})

	var allProviders []string
	for _, d := range in.Sources {
		allProviders = addOnce(allProviders, d.Provider)
	}
	for p := range in.Schedules {
		allProviders = addOnce(allProviders, p)
	}
	slices.Sort(allProviders)
	provisional := func(p int, providers []string) bool {
		if o.Now.Before(cal.end(p)) {
			return true
		}
		lastMonth := cal.first(p).Add(cal.size - 1)
		for _, prov := range providers {
			if o.Now.Before(in.Schedules[prov].FinalAt(lastMonth)) {
				return true
			}
		}
		return false
	}

	div, ed := unitGrams[o.Unit], emissionDecimals[o.Unit]
	t := &r.Totals
	var sum struct{ loc, mkt, energy, water, cost float64 }
	var has provider.Quantity
	next := 0
	for p := from; p <= to; p++ {
		start := next
		for next < len(sorted) && sorted[next].period == p {
			next++
		}
		if start == next {
			row := Row{
				Period: cal.name(p), MonthsExpected: cal.size,
				Provisional: provisional(p, allProviders), ModelVersions: []string{},
				Note: "no data for this period",
			}
			t.Provisional = t.Provisional || row.Provisional
			r.Rows = append(r.Rows, row)
			continue
		}
		for _, g := range sorted[start:next] {
			slices.Sort(g.providers)
			slices.Sort(g.revisions)
			row := Row{
				Period:         cal.name(p),
				MonthsCovered:  bits.OnesCount16(g.months),
				MonthsExpected: cal.size,
				Provisional:    provisional(p, g.providers),
				ModelVersions:  append([]string{}, g.revisions...),
			}
			dim := func(i int) string {
				if i < 0 {
					return ""
				}
				return g.dims[i]
			}
			row.Provider, row.Account, row.Service, row.Location, row.Scope =
				dim(iProvider), dim(iAccount), dim(iService), dim(iLocation), dim(iScope)
			if iAccount >= 0 {
				var ns []string
				for _, prov := range g.providers {
					if n := accountNames[[2]string{prov, row.Account}]; n != "" {
						ns = addOnce(ns, strings.ToValidUTF8(n, "\uFFFD"))
					}
				}
				row.AccountName = strings.Join(ns, "; ")
			}
			if g.has&provider.Emissions != 0 {
				row.LocationBased = rounded(g.loc/div, ed)
				sum.loc += g.loc
				t.LocationBasedProviders = union(t.LocationBasedProviders, g.providers)
			}
			if g.has&provider.EmissionsMarketBased != 0 && !g.mktMissing {
				row.MarketBased = rounded(g.mkt/div, ed)
				sum.mkt += g.mkt
				t.MarketBasedProviders = union(t.MarketBasedProviders, g.providers)
				t.MarketBasedRows++
			}
			if g.has&provider.Energy != 0 {
				row.EnergyKWh = rounded(g.energy/joulesPerKWh, otherDecimals)
				sum.energy += g.energy
			}
			if g.has&provider.Water != 0 {
				row.WaterM3 = rounded(g.water, otherDecimals)
				sum.water += g.water
			}
			if g.has&provider.Cost != 0 {
				row.CostUSD = rounded(g.cost, otherDecimals)
				sum.cost += g.cost
			}
			has |= g.has
			t.Provisional = t.Provisional || row.Provisional
			t.ModelVersions = union(t.ModelVersions, row.ModelVersions)
			r.Rows = append(r.Rows, row)
		}
	}
	t.Rows = len(r.Rows)
	if has&provider.Emissions != 0 {
		t.LocationBased = rounded(sum.loc/div, ed)
	}
	if t.MarketBasedRows > 0 {
		t.MarketBased = rounded(sum.mkt/div, ed)
	}
	if has&provider.Energy != 0 {
		t.EnergyKWh = rounded(sum.energy/joulesPerKWh, otherDecimals)
	}
	if has&provider.Water != 0 {
		t.WaterM3 = rounded(sum.water, otherDecimals)
	}
	if has&provider.Cost != 0 {
		t.CostUSD = rounded(sum.cost, otherDecimals)
	}
	return r, nil
}

// union adds the values of b to the sorted set a.
func union(a, b []string) []string {
	for _, v := range b {
		if i, found := slices.BinarySearch(a, v); !found {
			a = slices.Insert(a, i, v)
		}
	}
	return a
}

// rounded returns v rounded to dec decimals, as the CSV writes it, so
// that JSON and CSV carry the same number; never -0.
func rounded(v float64, dec int) *float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', dec, 64), 64)
	if f == 0 {
		f = 0
	}
	return &f
}

// gaps returns a note per source that lacks emissions for months of
// [first, last] that are over by now: a row's months covered says that
// its period is incomplete, but not that a source is missing altogether
// from the rows, or from a row that sums several sources.
func gaps(sources map[string]*store.SourceData, names []string, first, last provider.Month, now time.Time) []string {
	const maxRuns = 8
	if ended := provider.MonthOf(now) - 1; last > ended {
		last = ended
	}
	var notes []string
	for _, name := range names {
		d := sources[name]
		var missing []provider.Month
		for m := first; m <= last; m++ {
			if !d.Published(d.Months[m]) {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			continue
		}
		var spans []string
		runs := provider.Runs(missing)
		for i, run := range runs {
			if i == maxRuns {
				spans = append(spans, fmt.Sprintf("and %d more", len(runs)-maxRuns))
				break
			}
			span := run[0].String()
			if run[1] != run[0] {
				span += " to " + run[1].String()
			}
			spans = append(spans, span)
		}
		notes = append(notes, fmt.Sprintf("Source %s (%s) holds no emissions for %s: not published yet, not fetched, or older than the data kept.",
			strings.ToValidUTF8(name, "\uFFFD"), d.Provider, strings.Join(spans, ", ")))
	}
	return notes
}

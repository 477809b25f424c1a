// Package report turns the data the exporter holds into a greenhouse-gas
// report a sustainability team can file: monthly, quarterly or (fiscal)
// yearly figures by provider, scope and the other dimensions, a total per
// period and per period and provider, location-based and market-based
// side by side with what each total covers, the coverage of every row by
// provider and source, water by what it measures, the provenance of the
// data, each cloud's methodology and the restatements of the period; as
// CSV, JSON or Markdown. It is a pure function of a store snapshot, the
// clouds' schedules and methodologies and a clock: no cloud call, no
// state.
//
// # Rows
//
// One row per period and value of the By dimensions that has data, in
// that order (account followed by account_name); rows of provisional
// estimates come apart, after the published ones of their period. The
// figures are one value per column (Report.Columns), taken from the
// quantity table (provider.Quantities): location-based and market-based
// emissions in the chosen unit of CO2e, energy (kWh), water in one column
// per measure the clouds declare (usage, withdrawal) and per granularity
// (monthly, or per calendar year, which fits calendar-year rows only),
// cost (USD). A figure no record of the row carries is null (CSV and
// Markdown: empty), never 0. Figures of different water measures or
// granularities are never added.
//
// Quantities merge as the table says: market-based figures
// (provider.MergeComplete) are given only when every record of the row
// with location-based emissions carries one, so that a partial sum never
// reads as a whole. With Options.MarketBasedFallback, the location-based
// emissions of the records without a market-based figure fill it instead,
// as the GHG Protocol Scope 2 Guidance allows where no contractual
// instrument or supplier figure is known: the row then carries the flag
// market_based_fallback and the filled part in market_based_fallback.
//
// Coverage says, per provider of the row, how many months of the period
// it has data for and from which sources; months_covered counts the
// months every provider of the row has data for, so that a row mixing a
// provider with 12 months and one with 2 says 2.
//
// # Totals
//
// Totals are per period, and per period and provider when the rows are
// split by provider and more: never across periods. Each says what its
// methods cover: the providers in the location-based total, those in the
// market-based total as reported or filled, those left out of it, and the
// two methods over the same providers, comparable. Provisional rows are
// in no total unless Options.IncludeProvisional.
//
// # As of a past time
//
// The store keeps the figures providers replaced (store.Ledger). With
// Options.AsOf, a report shows the data as it stood then: months restated
// since show their superseded figures (flag superseded), months first
// published since are left out, and the restatements listed are those
// known then. Superseded figures are kept per provider and scope, so a
// report as of a past time that needs them cannot split rows by account,
// service or location.
//
// # Formats
//
// CSV (RFC 4180, encoding/csv): one table whose first column, record,
// says what each line is: meta (provenance), row, total, restatement,
// methodology and note; every line has the same fields, so encoding/csv
// and spreadsheets read it whole, and filtering on record = row gives the
// table alone. A text cell that starts with = + - @ is prefixed with ' so
// that a spreadsheet never runs it as a formula.
//
// JSON: the Report struct encoded with encoding/json, schema Schema.
// Markdown: metadata, the rows, the totals, the restatements, a
// methodology section per provider and numbered notes.
//
// # Numbers
//
// CSV and JSON carry values rounded to a fixed number of decimals: 6 for
// t, 3 for kg and 0 for g (one gram in each), 6 for kWh, m3 and USD.
// Markdown rounds further (t 3, kg 1, g 0, kWh 1, m3 3, USD 2) and groups
// thousands with commas. Sums are float64, in a fixed order (sources by
// name, months ascending, records in stored order) and from unrounded
// values, so the same data gives the same bytes.
package report

import (
	"errors"
	"fmt"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Schema names the JSON layout. It changes when a field changes meaning.
const Schema = "cloudcarbon_exporter/report/v2"

// Exporter names the program in the metadata.
const Exporter = "cloudcarbon_exporter"

// ScopeNone is the scope value of figures that have no GHG scope.
const ScopeNone = "none"

// Flags a row or total may carry, besides the caveats the clouds declare
// (provider.Caveat).
const (
	// FlagIncomplete: fewer months covered than the period has.
	FlagIncomplete = "incomplete"
	// FlagRevisable: a month of the period can still change: the period
	// is not over, or a provider may still publish or restate a month.
	FlagRevisable = "revisable"
	// FlagProvisional: estimates of months not published yet.
	FlagProvisional = "provisional"
	// FlagMarketBasedFallback: market-based figures filled with
	// location-based ones (Options.MarketBasedFallback).
	FlagMarketBasedFallback = "market_based_fallback"
	// FlagRestated: a month's figures replace others published before
	// (see Report.Restatements).
	FlagRestated = "restated"
	// FlagSuperseded: figures of a month as they stood at Options.AsOf,
	// replaced since.
	FlagSuperseded = "superseded"
	// FlagEmptyMonths: a source was asked for a month of the period and
	// the provider returned nothing.
	FlagEmptyMonths = "empty_months"
)

// Input is the data a report is built from.
type Input struct {
	// Sources are a store snapshot's sources.
	Sources map[string]*store.SourceData
	// Schedules are the publication schedules by provider label; a
	// provider without one is taken as final once a month is over.
	Schedules map[string]provider.Schedule
	// Methodology is each cloud's, by provider label.
	Methodology map[string]provider.Methodology
	// Provisional are estimates of months a source has not published,
	// by source name. Months the source holds published are ignored.
	Provisional map[string][]provider.Record
	// Version is the exporter's version and ConfigHash identifies its
	// configuration, both for the metadata; empty when unknown.
	Version, ConfigHash string
}

// Report is a built report. Its JSON encoding is the JSON format.
type Report struct {
	// Schema is the constant Schema.
	Schema   string   `json:"schema"`
	Metadata Metadata `json:"metadata"`
	Options  Settings `json:"options"`
	// Columns describe the figures of Row.Values and Total.Values, in
	// table order.
	Columns []Column `json:"columns"`
	// Rows are sorted by period, published before provisional, then by
	// the By dimensions in their order, as strings.
	Rows []Row `json:"rows"`
	// Totals are per period, ascending; within one, the providers'
	// totals (when the rows are split by provider and more) come first,
	// then the period's.
	Totals []Total `json:"totals"`
	// Restatements are those of the months of the report's periods known
	// at its time, by month, source and time.
	Restatements []Restatement `json:"restatements"`
	// Methodology is each provider's of the report, by provider.
	Methodology []Methodology `json:"methodology"`
	// Notes say what the report leaves out or how to read it, for this
	// data (what holds for every report is in the package documentation
	// and the Markdown's notes).
	Notes []string `json:"notes"`
}

// Metadata is the provenance of a report.
type Metadata struct {
	// Exporter and Version name the program that made it.
	Exporter string `json:"exporter"`
	Version  string `json:"version"`
	// GeneratedAt is the report's time, Options.Now.
	GeneratedAt time.Time `json:"generated_at"`
	// AsOf is the time the data is shown as of, when not GeneratedAt.
	AsOf time.Time `json:"as_of,omitzero"`
	// ConfigHash identifies the exporter's configuration; empty when
	// unknown.
	ConfigHash string       `json:"config_hash"`
	Sources    []SourceMeta `json:"sources"`
	// ModelVersions are the model or data versions of the months in the
	// report, by provider.
	ModelVersions map[string][]string `json:"model_versions"`
}

// SourceMeta is the state of one source's data.
type SourceMeta struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// DataAsOf is the source's last successful refresh (or AsOf, when
	// that is earlier).
	DataAsOf time.Time `json:"data_as_of,omitzero"`
	// LastRefreshOK says whether its latest refresh succeeded.
	LastRefreshOK bool `json:"last_refresh_ok"`
	// FirstMonth and LatestMonth are the first and latest published months
	// it holds, whatever the report's range; empty when it holds none.
	FirstMonth  string `json:"first_month,omitempty"`
	LatestMonth string `json:"latest_month,omitempty"`
	// EmptyMonths are months of the report's range it fetched and the
	// provider returned nothing for.
	EmptyMonths []string `json:"empty_months"`
	// DeniedAccounts counts the accounts the provider refuses to report.
	DeniedAccounts int `json:"denied_accounts"`
	// Restatements counts its restatements in the report.
	Restatements int `json:"restatements"`
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
	Unit                string    `json:"unit"`
	MarketBasedFallback bool      `json:"market_based_fallback"`
	IncludeProvisional  bool      `json:"include_provisional"`
	AsOf                time.Time `json:"as_of,omitzero"`
	// Format is the format Write uses; not part of the JSON, which is
	// always JSON.
	Format string `json:"-"`
}

// Column describes one figure of the rows and totals.
type Column struct {
	// Key names the figure in Row.Values and Total.Values.
	Key string `json:"key"`
	// Header is its CSV header, Title its Markdown one.
	Header string `json:"csv"`
	Title  string `json:"title"`
	Unit   string `json:"unit"`
	// Quantity is the quantity's name in the quantity table
	// (provider.QuantityInfo.Name), or YearlyWater.
	Quantity string `json:"quantity"`
	// Water is what a water column measures, Granularity whether it is
	// reported per month or per calendar year.
	Water       string `json:"water,omitempty"`
	Granularity string `json:"granularity,omitempty"`
}

// YearlyWater is the Column.Quantity of water reported per calendar year.
const YearlyWater = "water per calendar year"

// Granularities of water columns.
const (
	Monthly      = "month"
	CalendarYear = "calendar_year"
)

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
	Figures
	Note string `json:"note,omitempty"`
}

// Figures are what a row or a total says of its period.
type Figures struct {
	// Values are the figures by Column.Key, rounded; null when no record
	// carries the quantity.
	Values map[string]*float64 `json:"values"`
	// MarketBasedFallback is the part of the market-based figure filled
	// with location-based emissions; null when none is.
	MarketBasedFallback *float64 `json:"market_based_fallback_co2e"`
	// MonthsCovered counts the months of the period every provider with
	// data has data for; MonthsExpected the months of the period.
	MonthsCovered  int        `json:"months_covered"`
	MonthsExpected int        `json:"months_expected"`
	Coverage       []Coverage `json:"coverage"`
	// Revisable is set when a month of the period can still change.
	Revisable bool `json:"revisable"`
	// Provisional is set when provisional estimates are summed.
	Provisional bool `json:"provisional"`
	// ModelVersions are the provider model or data versions the months
	// summed were fetched under, sorted.
	ModelVersions []string `json:"model_versions"`
	// Flags are the Flag* values and clouds' caveats that apply, in a
	// fixed order.
	Flags []string `json:"flags"`
}

// Coverage is one provider's share of a row or total.
type Coverage struct {
	Provider string `json:"provider"`
	// Months counts the months of the period it has data for.
	Months int `json:"months"`
	// CalendarYear is set when it adds a figure reported per calendar
	// year, which covers the whole year.
	CalendarYear bool `json:"calendar_year,omitempty"`
	// Sources are the sources its data comes from; in a total,
	// SourcesWithoutData are its sources that have none for the period.
	Sources            []string `json:"sources"`
	SourcesWithoutData []string `json:"sources_without_data,omitempty"`
}

// Total is the sum of a period's rows, or of one provider's rows in it.
type Total struct {
	Period string `json:"period"`
	// Provider is empty for the period's total.
	Provider string `json:"provider,omitempty"`
	// Figures' Coverage lists every source of the report (for a
	// provider's total, the provider's), those without data for the
	// period included.
	Figures
	Methods Methods `json:"methods"`
	// Rows counts the rows summed.
	Rows int `json:"rows"`
}

// Methods says which providers each emissions total covers, so that the
// two methods are compared over the same ones.
type Methods struct {
	// LocationBased are the providers in the location-based total.
	LocationBased []string `json:"location_based"`
	// MarketBased are the providers in the market-based total with the
	// figures they report; MarketBasedFallback those filled with their
	// location-based figures; MarketBasedLeftOut those with emissions but
	// no complete market-based figure for the period, left out.
	MarketBased         []string `json:"market_based"`
	MarketBasedFallback []string `json:"market_based_fallback"`
	MarketBasedLeftOut  []string `json:"market_based_left_out"`
	// Comparable is both methods over the providers in both totals.
	Comparable Comparable `json:"comparable"`
}

// Comparable is both methods' emissions over the same providers.
type Comparable struct {
	Providers     []string `json:"providers"`
	LocationBased *float64 `json:"location_based_co2e"`
	MarketBased   *float64 `json:"market_based_co2e"`
}

// Restatement is a month whose published figures a provider replaced.
type Restatement struct {
	Source   string `json:"source"`
	Provider string `json:"provider"`
	Month    string `json:"month"`
	// Period is the report's period that holds the month.
	Period     string    `json:"period"`
	RestatedAt time.Time `json:"restated_at"`
	// Cause is store.CauseModelVersion or store.CauseFigures.
	Cause       string `json:"cause"`
	OldRevision string `json:"old_revision,omitempty"`
	NewRevision string `json:"new_revision,omitempty"`
	// Superseded and Replacement are the month's figures before and
	// after, by Column.Key, for the provider's whole month.
	Superseded  map[string]*float64 `json:"superseded"`
	Replacement map[string]*float64 `json:"replacement"`
}

// Methodology is what a provider's figures are, as its plug-in declares.
type Methodology struct {
	Provider     string   `json:"provider"`
	Source       string   `json:"source"`
	Includes     string   `json:"includes"`
	Unit         string   `json:"unit"`
	URL          string   `json:"url"`
	ModelVersion string   `json:"model_version"`
	Water        string   `json:"water,omitempty"`
	Caveats      []Caveat `json:"caveats"`
}

// Caveat is a known limit of a provider's figures; Flag marks the rows
// it touches.
type Caveat struct {
	Flag string `json:"flag"`
	Text string `json:"text"`
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
	if o.AsOf.After(o.Now) {
		return nil, fmt.Errorf("as_of %s is later than the report's time %s", o.AsOf.Format(time.RFC3339), o.Now.UTC().Format(time.RFC3339))
	}
	b := newBuilder(in, o)
	if err := b.setRange(); err != nil {
		return nil, err
	}
	r := b.skeleton()
	if b.from < 0 {
		return r, nil
	}
	if err := b.accumulate(); err != nil {
		return nil, err
	}
	r.Options.From, r.Options.To = b.cal.name(b.from), b.cal.name(b.to)
	r.Rows = b.rows()
	r.Totals = b.totals(r.Rows)
	r.Restatements = b.restatements()
	r.Metadata.Sources, r.Metadata.ModelVersions = b.sourceMeta(r.Restatements), b.modelVersions()
	r.Notes = b.notes(r.Rows, r.Totals)
	return r, nil
}

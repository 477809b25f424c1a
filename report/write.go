package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// ContentType returns the media type of the report's format.
func (r *Report) ContentType() string {
	switch r.Options.Format {
	case FormatJSON:
		return "application/json"
	case FormatMarkdown:
		return "text/markdown; charset=utf-8"
	}
	return "text/csv; charset=utf-8"
}

// Write writes the report in its format.
func (r *Report) Write(w io.Writer) error {
	switch r.Options.Format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	case FormatMarkdown:
		bw := bufio.NewWriter(w)
		r.writeMarkdown(bw)
		return bw.Flush()
	}
	return r.writeCSV(w)
}

// Values of the CSV's record column.
const (
	RecordMeta        = "meta"
	RecordRow         = "row"
	RecordTotal       = "total"
	RecordRestatement = "restatement"
	RecordMethodology = "methodology"
	RecordNote        = "note"
)

// line is one CSV record.
type line struct {
	record, period string
	// dims are the dimension values in the order of dimensions, then the
	// account name.
	dims   [6]string
	fig    *Figures
	values map[string]*float64
	note   string
}

// header returns the CSV header for the report's options.
func (r *Report) header() []string {
	h := []string{"record", "period"}
	for _, d := range r.Options.By {
		h = append(h, d)
		if d == DimAccount {
			h = append(h, "account_name")
		}
	}
	for _, c := range r.Columns {
		h = append(h, c.Header)
	}
	return append(h, "market_based_fallback_"+r.Options.Unit+"co2e", "months_covered", "months_expected", "coverage",
		"revisable", "provisional", "model_versions", "flags", "note")
}

// cells returns l's fields, in the order of header.
func (r *Report) cells(l *line) []string {
	out := []string{l.record, defuse(l.period)}
	for _, d := range r.Options.By {
		i := slices.Index(dimensions, d)
		out = append(out, defuse(l.dims[i]))
		if d == DimAccount {
			out = append(out, defuse(l.dims[5]))
		}
	}
	for _, c := range r.Columns {
		out = append(out, formatNumber(l.values[c.Key], decimalsOf(c, r.Options.Unit)))
	}
	f := l.fig
	if f == nil {
		return append(out, "", "", "", "", "", "", "", "", defuse(l.note))
	}
	return append(out, formatNumber(f.MarketBasedFallback, emissionDecimals[r.Options.Unit]),
		strconv.Itoa(f.MonthsCovered), strconv.Itoa(f.MonthsExpected), defuse(coverageText(f.Coverage, f.MonthsExpected)),
		strconv.FormatBool(f.Revisable), strconv.FormatBool(f.Provisional),
		defuse(strings.Join(f.ModelVersions, ";")), strings.Join(f.Flags, ";"), defuse(l.note))
}

// decimalsOf returns the decimals of column c in CSV and JSON.
func decimalsOf(c Column, unit string) int {
	if c.Key == KeyLocationBased || c.Key == KeyMarketBased {
		return emissionDecimals[unit]
	}
	return otherDecimals
}

// humanDecimalsOf returns the decimals of column c in Markdown.
func humanDecimalsOf(c Column, unit string) int {
	switch {
	case c.Key == KeyLocationBased || c.Key == KeyMarketBased:
		return humanEmissions[unit]
	case c.Unit == "kWh":
		return 1
	case c.Unit == "m3":
		return 3
	}
	return 2
}

// lines returns every CSV record but the header: metadata, rows, totals,
// restatements, methodology, notes.
func (r *Report) lines() []line {
	var out []line
	for _, n := range r.metaLines() {
		out = append(out, line{record: RecordMeta, note: n})
	}
	for i := range r.Rows {
		row := &r.Rows[i]
		out = append(out, line{record: RecordRow, period: row.Period, fig: &row.Figures, values: row.Values, note: row.Note,
			dims: [6]string{row.Provider, row.Account, row.Service, row.Location, row.Scope, row.AccountName}})
	}
	for i := range r.Totals {
		t := &r.Totals[i]
		out = append(out, line{record: RecordTotal, period: t.Period, fig: &t.Figures, values: t.Values,
			dims: [6]string{t.Provider}, note: r.methodsText(t, false)})
	}
	for _, s := range r.Restatements {
		out = append(out, line{record: RecordRestatement, period: s.Month, values: s.Superseded,
			dims: [6]string{s.Provider}, note: r.restatementText(&s)})
	}
	for _, m := range r.Methodology {
		for _, n := range methodologyLines(&m) {
			out = append(out, line{record: RecordMethodology, dims: [6]string{m.Provider}, note: n})
		}
	}
	for _, n := range r.Notes {
		out = append(out, line{record: RecordNote, note: n})
	}
	return out
}

func (r *Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.header()); err != nil {
		return err
	}
	for _, l := range r.lines() {
		if err := cw.Write(r.cells(&l)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// metaLines are the metadata as "key: value" lines.
func (r *Report) metaLines() []string {
	m, o := &r.Metadata, &r.Options
	out := []string{
		"schema: " + r.Schema,
		"exporter: " + strings.TrimSpace(m.Exporter+" "+m.Version),
		"generated_at: " + dataTime(m.GeneratedAt),
	}
	if !m.AsOf.IsZero() {
		out = append(out, "as_of: "+dataTime(m.AsOf))
	}
	out = append(out, "config_hash: "+orUnknown(m.ConfigHash),
		fmt.Sprintf("options: period=%s fiscal_year_start=%d from=%s to=%s by=%s unit=%s market_based_fallback=%t include_provisional=%t",
			o.Period, o.FiscalYearStart, o.From, o.To, strings.Join(o.By, ","), o.Unit, o.MarketBasedFallback, o.IncludeProvisional))
	for _, s := range m.Sources {
		out = append(out, "source "+sourceText(&s))
	}
	for _, prov := range slices.Sorted(maps.Keys(m.ModelVersions)) {
		out = append(out, fmt.Sprintf("model_versions %s: %s", prov, list(m.ModelVersions[prov])))
	}
	return out
}

// sourceText describes a source's data in one line.
func sourceText(s *SourceMeta) string {
	asOf := "never refreshed"
	if !s.DataAsOf.IsZero() {
		asOf = "data as of " + dataTime(s.DataAsOf)
	}
	refresh := "latest refresh failed"
	if s.LastRefreshOK {
		refresh = "latest refresh succeeded"
	}
	months := "no published month"
	if s.FirstMonth != "" {
		months = "published months " + s.FirstMonth + " to " + s.LatestMonth
	}
	return fmt.Sprintf("%s (%s): %s; %s; %s; empty months: %s; denied accounts: %d; restatements: %d",
		clean(s.Name), s.Provider, asOf, refresh, months, monthSpans(s.EmptyMonths), s.DeniedAccounts, s.Restatements)
}

// methodologyLines describe a provider's methodology, a line per field.
func methodologyLines(m *Methodology) []string {
	if m.Source == "" && m.Includes == "" && m.URL == "" {
		return []string{m.Provider + " methodology: not declared by its plug-in"}
	}
	out := []string{
		m.Provider + " source: " + m.Source,
		m.Provider + " includes: " + m.Includes,
		m.Provider + " unit: " + m.Unit,
		m.Provider + " methodology: " + m.URL,
		m.Provider + " model version: " + m.ModelVersion,
	}
	if m.Water != "" {
		out = append(out, m.Provider+" water: "+m.Water)
	}
	for _, c := range m.Caveats {
		out = append(out, m.Provider+" caveat "+c.Flag+": "+c.Text)
	}
	return out
}

// coverageText writes a coverage as "aws 12/12 [aws-demo]; azure 2/12
// [azure-demo]"; of expected months.
func coverageText(cs []Coverage, expected int) string {
	var parts []string
	for _, c := range cs {
		var b strings.Builder
		b.WriteString(c.Provider)
		switch {
		case c.CalendarYear && c.Months == 0:
			b.WriteString(" calendar year")
		case c.CalendarYear:
			fmt.Fprintf(&b, " %d/%d + calendar year", c.Months, expected)
		default:
			fmt.Fprintf(&b, " %d/%d", c.Months, expected)
		}
		src := strings.Join(c.Sources, ", ")
		if len(c.SourcesWithoutData) > 0 {
			src = strings.TrimPrefix(src+"; no data: "+strings.Join(c.SourcesWithoutData, ", "), "; ")
		}
		b.WriteString(" [" + src + "]")
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}

// methodsText says what a total's emissions cover.
func (r *Report) methodsText(t *Total, human bool) string {
	m := &t.Methods
	unit := r.Options.Unit
	num := func(v *float64) string {
		if human {
			return formatHuman(v, humanEmissions[unit])
		}
		return formatNumber(v, emissionDecimals[unit])
	}
	s := "location-based: " + list(m.LocationBased) + "; market-based: " + list(m.MarketBased)
	if r.Options.MarketBasedFallback {
		s += "; filled with location-based: " + list(m.MarketBasedFallback)
	}
	s += "; left out of market-based: " + list(m.MarketBasedLeftOut)
	if c := m.Comparable; len(c.Providers) > 0 {
		s += fmt.Sprintf("; both methods over %s: location-based %s, market-based %s %s CO2e",
			list(c.Providers), num(c.LocationBased), num(c.MarketBased), unit)
	}
	return s
}

// restatementText describes a restatement in one line.
func (r *Report) restatementText(s *Restatement) string {
	cause := "figures changed"
	if s.Cause == store.CauseModelVersion {
		cause = "model version " + orNone(s.OldRevision) + " → " + orNone(s.NewRevision)
	} else if s.OldRevision != "" {
		cause += " under model version " + s.OldRevision
	}
	unit := r.Options.Unit
	return fmt.Sprintf("source %s, restated at %s (%s); the values are the superseded figures; replaced by location-based %s, market-based %s %s CO2e",
		clean(s.Source), dataTime(s.RestatedAt), cause, orNone(formatNumber(s.Replacement[KeyLocationBased], emissionDecimals[unit])),
		orNone(formatNumber(s.Replacement[KeyMarketBased], emissionDecimals[unit])), unit)
}

// monthSpans writes months ("2025-01") as runs, "none" for none.
func monthSpans(months []string) string {
	var ms []provider.Month
	for _, s := range months {
		if m, err := provider.ParseMonth(s); err == nil {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return "none"
	}
	return spans(ms)
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// defuse keeps a text cell from being read as a formula by a spreadsheet
// that pulls the CSV (an account named "=HYPERLINK(…)"), by prefixing it
// with an apostrophe as OWASP recommends.
func defuse(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func formatNumber(v *float64, dec int) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', dec, 64)
}

// formatHuman rounds v to dec decimals and groups thousands with commas.
func formatHuman(v *float64, dec int) string {
	if v == nil {
		return ""
	}
	s := strconv.FormatFloat(*v, 'f', dec, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-") // -0.00: a small negative rounded away
	}
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

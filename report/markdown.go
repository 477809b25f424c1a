package report

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"time"
)

// readingNotes explain what holds for every report; the Markdown lists
// them before the notes of its data.
var readingNotes = []string{
	"Location-based and market-based emissions follow the GHG Protocol Scope 2 Guidance: two figures for the same emissions, never to be added together.",
	"An empty market-based cell means that a provider of the row reports no market-based figure for at least one of its records (Azure, IBM Cloud and Scaleway report none, GCP none before 2023); a partial sum is never shown. Each total says which providers its market-based figure covers, which are left out, and both methods over the same providers.",
	"Scope is the provider's GHG Protocol scope; a customer books its cloud providers' scopes 1-3 as its own Scope 3, category 1 (purchased goods and services). Scope none: figures without a scope (billing cost, water).",
	"Months: months of the period that every provider of the row has data for / months in the period; coverage gives each provider's months and sources.",
	"Water columns are kept apart by what they measure (usage, withdrawal) and by how often it is reported (monthly, per calendar year): they are never added together.",
	"Revisable: a month of the period can still change (the period is not over, or a provider may still publish or restate it). Restated: the figures replace others published before (see Restatements).",
	"Totals are per period (and per provider when rows are split by provider and more), never across periods.",
}

func (r *Report) periodTitle() string {
	o := &r.Options
	years := "calendar years"
	if o.FiscalYearStart > 1 {
		years = fmt.Sprintf("fiscal years from %s, named by the year they end in", time.Month(o.FiscalYearStart))
	}
	switch o.Period {
	case PeriodMonth:
		return "Monthly figures"
	case PeriodQuarter:
		return "Quarterly figures (" + years + ")"
	}
	return "Yearly figures (" + years + ")"
}

func (r *Report) writeMarkdown(w *bufio.Writer) {
	o := &r.Options
	span := "no data"
	if o.From != "" {
		span = o.From + " to " + o.To
	}
	fmt.Fprintf(w, "# Greenhouse-gas report\n\n%s, %s, by %s; emissions in %s CO2e.\n\n", r.periodTitle(), span, strings.Join(o.By, ", "), o.Unit)
	r.writeMetadata(w)
	w.WriteString("\n## Figures\n\n")
	r.writeRows(w)
	w.WriteString("\n## Totals per period\n\n")
	r.writeTotals(w)
	w.WriteString("\n## Restatements\n\n")
	r.writeRestatements(w)
	w.WriteString("\n## Methodology\n")
	r.writeMethodology(w)
	w.WriteString("\n## Notes\n\n")
	for i, n := range append(slices.Clone(readingNotes), r.Notes...) {
		fmt.Fprintf(w, "%d. %s\n", i+1, escapeMarkdown(n))
	}
}

func (r *Report) writeMetadata(w *bufio.Writer) {
	m, o := &r.Metadata, &r.Options
	asOf := dataTime(m.GeneratedAt) + " (the data held when the report was made)"
	if !m.AsOf.IsZero() {
		asOf = dataTime(m.AsOf) + " (figures as they stood then)"
	}
	onOff := func(b bool, on, off string) string {
		if b {
			return on
		}
		return off
	}
	table(w, []string{"Report", ""}, []bool{false, false}, [][]string{
		{"Generated", dataTime(m.GeneratedAt) + " by " + strings.TrimSpace(m.Exporter+" "+m.Version)},
		{"Data as of", asOf},
		{"Configuration hash", orUnknown(m.ConfigHash)},
		{"JSON schema", r.Schema},
		{"Market-based fallback", onOff(o.MarketBasedFallback, "on: location-based figures fill market-based ones a provider does not report, flagged", "off")},
		{"Provisional estimates", onOff(o.IncludeProvisional, "in the totals, flagged", "in no total")},
	})
	w.WriteString("\n")
	var rows [][]string
	for _, s := range m.Sources {
		dataAsOf, months := "never refreshed", "none"
		if !s.DataAsOf.IsZero() {
			dataAsOf = dataTime(s.DataAsOf)
		}
		if s.FirstMonth != "" {
			months = s.FirstMonth + " to " + s.LatestMonth
		}
		rows = append(rows, []string{s.Name, s.Provider, dataAsOf, onOff(s.LastRefreshOK, "ok", "failed"), months,
			monthSpans(s.EmptyMonths), fmt.Sprint(s.DeniedAccounts), fmt.Sprint(s.Restatements), list(m.ModelVersions[s.Provider])})
	}
	table(w, []string{"Source", "Provider", "Data as of", "Latest refresh", "Published months held", "Empty months", "Denied accounts", "Restatements", "Model versions"},
		[]bool{false, false, false, false, false, false, true, true, false}, rows)
}

// figureHeader returns the Markdown headers of the figure columns.
func (r *Report) figureHeader() ([]string, []bool) {
	var h []string
	var numeric []bool
	for _, c := range r.Columns {
		h, numeric = append(h, c.Title), append(numeric, true)
	}
	if r.Options.MarketBasedFallback {
		h, numeric = append(h, "Market-based fallback "+r.Options.Unit+" CO2e"), append(numeric, true)
	}
	return append(h, "Months", "Coverage", "Model versions", "Flags"), append(numeric, false, false, false, false)
}

// figureCells returns the Markdown cells of figures f.
func (r *Report) figureCells(f *Figures) []string {
	var cells []string
	for _, c := range r.Columns {
		cells = append(cells, formatHuman(f.Values[c.Key], humanDecimalsOf(c, r.Options.Unit)))
	}
	if r.Options.MarketBasedFallback {
		cells = append(cells, formatHuman(f.MarketBasedFallback, humanEmissions[r.Options.Unit]))
	}
	return append(cells, fmt.Sprintf("%d/%d", f.MonthsCovered, f.MonthsExpected), coverageText(f.Coverage, f.MonthsExpected),
		strings.Join(f.ModelVersions, ", "), strings.Join(f.Flags, ", "))
}

func (r *Report) writeRows(w *bufio.Writer) {
	head, numeric := []string{"Period"}, []bool{false}
	for _, d := range r.Options.By {
		head, numeric = append(head, strings.ToUpper(d[:1])+d[1:]), append(numeric, false)
		if d == DimAccount {
			head, numeric = append(head, "Account name"), append(numeric, false)
		}
	}
	fh, fn := r.figureHeader()
	head, numeric = append(head, fh...), append(numeric, fn...)
	notes := slices.ContainsFunc(r.Rows, func(row Row) bool { return row.Note != "" })
	if notes {
		head, numeric = append(head, "Note"), append(numeric, false)
	}
	var rows [][]string
	for i := range r.Rows {
		row := &r.Rows[i]
		cells := []string{row.Period}
		dims := map[string]string{DimProvider: row.Provider, DimAccount: row.Account, DimService: row.Service, DimLocation: row.Location, DimScope: row.Scope}
		for _, d := range r.Options.By {
			cells = append(cells, dims[d])
			if d == DimAccount {
				cells = append(cells, row.AccountName)
			}
		}
		cells = append(cells, r.figureCells(&row.Figures)...)
		if notes {
			cells = append(cells, row.Note)
		}
		rows = append(rows, cells)
	}
	table(w, head, numeric, rows)
}

func (r *Report) writeTotals(w *bufio.Writer) {
	head, numeric := []string{"Period", "Provider"}, []bool{false, false}
	fh, fn := r.figureHeader()
	head, numeric = append(append(head, fh...), "Methods"), append(append(numeric, fn...), false)
	var rows [][]string
	for i := range r.Totals {
		t := &r.Totals[i]
		prov, bold := t.Provider, false
		if prov == "" {
			prov, bold = "all", true
		}
		cells := append([]string{t.Period, prov}, r.figureCells(&t.Figures)...)
		if bold {
			for j, c := range cells {
				if c != "" && (j < 2 || numeric[j]) {
					cells[j] = "**" + c + "**"
				}
			}
		}
		rows = append(rows, append(cells, r.methodsText(t, true)))
	}
	table(w, head, numeric, rows)
}

func (r *Report) writeRestatements(w *bufio.Writer) {
	if len(r.Restatements) == 0 {
		w.WriteString("None known for the months of this report.\n")
		return
	}
	unit, dec := r.Options.Unit, humanEmissions[r.Options.Unit]
	var rows [][]string
	for _, s := range r.Restatements {
		cause := "figures changed"
		if s.OldRevision != "" || s.NewRevision != "" {
			cause = orNone(s.OldRevision) + " → " + orNone(s.NewRevision)
		}
		change := func(key string) string {
			return orNone(formatHuman(s.Superseded[key], dec)) + " → " + orNone(formatHuman(s.Replacement[key], dec))
		}
		rows = append(rows, []string{s.Month, s.Provider, s.Source, dataTime(s.RestatedAt), cause, change(KeyLocationBased), change(KeyMarketBased)})
	}
	table(w, []string{"Month", "Provider", "Source", "Restated at", "Model version", "Location-based " + unit + " CO2e", "Market-based " + unit + " CO2e"},
		[]bool{false, false, false, false, false, true, true}, rows)
}

func (r *Report) writeMethodology(w *bufio.Writer) {
	for _, m := range r.Methodology {
		fmt.Fprintf(w, "\n### %s\n\n", m.Provider)
		if m.Source == "" && m.Includes == "" && m.URL == "" {
			w.WriteString("Not declared by its plug-in.\n")
			continue
		}
		item := func(k, v string) { fmt.Fprintf(w, "- **%s:** %s\n", k, escapeMarkdown(v)) }
		item("Source", m.Source)
		item("Includes", m.Includes)
		item("Unit", m.Unit)
		item("Methodology", m.URL)
		item("Model version", m.ModelVersion)
		item("Model versions in this report", list(r.Metadata.ModelVersions[m.Provider]))
		if m.Water != "" {
			item("Water", m.Water)
		}
		for _, c := range m.Caveats {
			item("Caveat "+c.Flag, c.Text)
		}
	}
}

// table writes a Markdown table; numeric columns are right-aligned.
func table(w *bufio.Writer, head []string, numeric []bool, rows [][]string) {
	line := func(cells []string) {
		w.WriteString("|")
		for _, c := range cells {
			w.WriteString(" " + escapeMarkdown(c) + " |")
		}
		w.WriteString("\n")
	}
	line(head)
	w.WriteString("|")
	for i := range head {
		if numeric[i] {
			w.WriteString(" ---: |")
		} else {
			w.WriteString(" --- |")
		}
	}
	w.WriteString("\n")
	for _, row := range rows {
		line(row)
	}
}

// escapeMarkdown keeps a cell's text inside its cell.
func escapeMarkdown(s string) string {
	return strings.NewReplacer(`\`, `\\`, "|", `\|`, "\n", " ", "\r", " ").Replace(s)
}

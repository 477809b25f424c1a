package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
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

// Period labels of the CSV rows that are not data rows.
const (
	TotalLocationBased = "TOTAL location-based"
	TotalMarketBased   = "TOTAL market-based"
	NoteRow            = "NOTE"
)

// column is one column of the table: its CSV header, Markdown header,
// whether it is numeric, and its cell of a row.
type column struct {
	csv, md string
	numeric bool
	cell    func(r *Row, human bool) string
}

// columns returns the table's columns for the report's options.
func (r *Report) columns() []column {
	u := r.Options.Unit
	ed := emissionDecimals[u]
	text := func(f func(*Row) string) func(*Row, bool) string {
		return func(row *Row, _ bool) string { return f(row) }
	}
	num := func(f func(*Row) *float64, dec, humanDec int) func(*Row, bool) string {
		return func(row *Row, human bool) string {
			if human {
				return formatHuman(f(row), humanDec)
			}
			return formatNumber(f(row), dec)
		}
	}
	cols := []column{{csv: "period", md: "Period", cell: text(func(r *Row) string { return r.Period })}}
	for _, d := range r.Options.By {
		switch d {
		case DimProvider:
			cols = append(cols, column{csv: d, md: "Provider", cell: text(func(r *Row) string { return r.Provider })})
		case DimAccount:
			cols = append(cols,
				column{csv: d, md: "Account", cell: text(func(r *Row) string { return r.Account })},
				column{csv: "account_name", md: "Account name", cell: text(func(r *Row) string { return r.AccountName })})
		case DimService:
			cols = append(cols, column{csv: d, md: "Service", cell: text(func(r *Row) string { return r.Service })})
		case DimLocation:
			cols = append(cols, column{csv: d, md: "Location", cell: text(func(r *Row) string { return r.Location })})
		case DimScope:
			cols = append(cols, column{csv: d, md: "Scope", cell: text(func(r *Row) string { return r.Scope })})
		}
	}
	humanE := map[string]int{UnitTonnes: 3, UnitKilograms: 1, UnitGrams: 0}[u]
	return append(cols,
		column{csv: "location_based_" + u + "co2e", md: "Location-based " + u + " CO2e", numeric: true,
			cell: num(func(r *Row) *float64 { return r.LocationBased }, ed, humanE)},
		column{csv: "market_based_" + u + "co2e", md: "Market-based " + u + " CO2e", numeric: true,
			cell: num(func(r *Row) *float64 { return r.MarketBased }, ed, humanE)},
		column{csv: "energy_kwh", md: "Energy kWh", numeric: true,
			cell: num(func(r *Row) *float64 { return r.EnergyKWh }, otherDecimals, 1)},
		column{csv: "water_m3", md: "Water m³", numeric: true,
			cell: num(func(r *Row) *float64 { return r.WaterM3 }, otherDecimals, 3)},
		column{csv: "cost_usd", md: "Cost USD", numeric: true,
			cell: num(func(r *Row) *float64 { return r.CostUSD }, otherDecimals, 2)},
		column{csv: "months_covered", cell: func(r *Row, _ bool) string { return countCell(r.MonthsCovered, r.MonthsExpected) }},
		column{csv: "months_expected", cell: func(r *Row, _ bool) string { return countCell(r.MonthsExpected, r.MonthsExpected) }},
		column{csv: "provisional", md: "Provisional", cell: func(r *Row, human bool) string {
			switch {
			case r.Period == NoteRow:
				return ""
			case human && r.Provisional:
				return "yes"
			case human:
				return "no"
			}
			return strconv.FormatBool(r.Provisional)
		}},
		column{csv: "model_versions", md: "Model versions", cell: func(r *Row, human bool) string {
			if human {
				return strings.Join(r.ModelVersions, ", ")
			}
			return strings.Join(r.ModelVersions, ";")
		}},
		column{csv: "note", cell: text(func(r *Row) string { return r.Note })},
	)
}

// countCell leaves the month counts of the total and note rows, which
// have none, empty.
func countCell(n, expected int) string {
	if expected == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// totalRows renders the totals as the rows that close the table.
func (r *Report) totalRows() []Row {
	t := &r.Totals
	loc := Row{
		Period: TotalLocationBased, LocationBased: t.LocationBased,
		EnergyKWh: t.EnergyKWh, WaterM3: t.WaterM3, CostUSD: t.CostUSD,
		Provisional: t.Provisional, ModelVersions: t.ModelVersions,
		Note: fmt.Sprintf("totals of all %d rows (location-based emissions, energy, water, cost); providers: %s", t.Rows, list(t.LocationBasedProviders)),
	}
	mkt := Row{
		Period: TotalMarketBased, MarketBased: t.MarketBased,
		Provisional: t.Provisional, ModelVersions: []string{},
		Note: "no row has a market-based figure",
	}
	if t.MarketBasedRows > 0 {
		mkt.Note = fmt.Sprintf("market-based total covers: %s (%d of %d rows; rows without a market-based figure are left out)",
			list(t.MarketBasedProviders), t.MarketBasedRows, t.Rows)
	}
	return []Row{loc, mkt}
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (r *Report) writeCSV(w io.Writer) error {
	cols := r.columns()
	cw := csv.NewWriter(w)
	rec := make([]string, len(cols))
	for i, c := range cols {
		rec[i] = c.csv
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	rows := append(r.Rows[:len(r.Rows):len(r.Rows)], r.totalRows()...)
	for _, n := range r.Notes {
		rows = append(rows, Row{Period: NoteRow, Note: n})
	}
	for i := range rows {
		for j, c := range cols {
			v := c.cell(&rows[i], false)
			if !c.numeric {
				v = defuse(v)
			}
			rec[j] = v
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
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

func (r *Report) periodTitle() string {
	o := &r.Options
	years := "calendar years"
	if o.FiscalYearStart > 1 {
		years = fmt.Sprintf("fiscal years from %s, named by the year they end in", time.Month(o.FiscalYearStart))
	}
	switch o.Period {
	case PeriodMonth:
		return "Monthly totals"
	case PeriodQuarter:
		return "Quarterly totals (" + years + ")"
	}
	return "Yearly totals (" + years + ")"
}

func (r *Report) writeMarkdown(w *bufio.Writer) {
	o := &r.Options
	fmt.Fprintf(w, "# Greenhouse-gas report\n\n")
	span := "no data"
	if o.From != "" {
		span = o.From + " to " + o.To
	}
	fmt.Fprintf(w, "%s, %s, by %s; emissions in %s CO2e; as of %s.\n\n",
		r.periodTitle(), span, strings.Join(o.By, ", "), o.Unit, o.Now.Format(time.RFC3339))

	var cols []column
	notes := false
	for _, row := range r.Rows {
		notes = notes || row.Note != ""
	}
	for _, c := range r.columns() {
		switch c.csv {
		case "months_covered":
			c.md = "Months"
			c.cell = func(r *Row, _ bool) string {
				if r.MonthsExpected == 0 {
					return ""
				}
				return fmt.Sprintf("%d/%d", r.MonthsCovered, r.MonthsExpected)
			}
		case "months_expected":
			continue
		case "note":
			if !notes {
				continue
			}
			c.md = "Note"
		}
		cols = append(cols, c)
	}
	line := func(cells []string) {
		w.WriteString("|")
		for _, c := range cells {
			w.WriteString(" " + c + " |")
		}
		w.WriteString("\n")
	}
	cells := make([]string, len(cols))
	for i, c := range cols {
		cells[i] = c.md
	}
	line(cells)
	for i, c := range cols {
		cells[i] = "---"
		if c.numeric {
			cells[i] = "---:"
		}
	}
	line(cells)
	for i := range r.Rows {
		for j, c := range cols {
			cells[j] = escapeMarkdown(c.cell(&r.Rows[i], true))
		}
		line(cells)
	}
	totals := r.totalRows()
	for i := range totals {
		totals[i].Note = ""
		for j, c := range cols {
			v := escapeMarkdown(c.cell(&totals[i], true))
			if v != "" && (j == 0 || c.numeric) {
				v = "**" + v + "**"
			}
			cells[j] = v
		}
		line(cells)
	}

	t := &r.Totals
	covers := "no row has a market-based figure"
	if t.MarketBasedRows > 0 {
		covers = fmt.Sprintf("it covers %s (%d of %d rows)", list(t.MarketBasedProviders), t.MarketBasedRows, t.Rows)
	}
	foot := []string{
		"Location-based and market-based emissions follow the GHG Protocol Scope 2 Guidance: two figures for the same emissions, never to be added together.",
		"An empty market-based cell means that the provider reports no market-based figure for at least one month or record of the row (IBM Cloud and Azure report none, GCP none before 2023); a partial sum is never shown. The market-based total sums only the rows with a figure: " + covers + ".",
		"Scope is the provider's GHG Protocol scope; a customer books its cloud provider's scopes 1-3 as its own Scope 3, category 1 (purchased goods and services). Scope none: figures without a scope (billing cost, yearly water).",
		"Months: months of the period with data for the row / months in the period; fewer means the period is incomplete (not yet published, or outside the months held).",
		"Provisional: a month of the period can still change: the period is not over, or the provider may still publish or restate it.",
		"Model versions: the provider's model or data versions of the months summed; a new version means the provider restated its figures.",
		"The location-based total row also carries the totals of energy, water and cost.",
	}
	w.WriteString("\nNotes:\n\n")
	for i, n := range append(foot, r.Notes...) {
		fmt.Fprintf(w, "%d. %s\n", i+1, escapeMarkdown(n))
	}
}

// escapeMarkdown keeps a cell's text inside its cell.
func escapeMarkdown(s string) string {
	return strings.NewReplacer(`\`, `\\`, "|", `\|`, "\n", " ", "\r", " ").Replace(s)
}

package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// notes returns what the report leaves out or how to read it, for this
// data.
func (b *builder) notes(rows []Row, totals []Total) []string {
	notes := b.yearlyNotes()
	for _, name := range b.names {
		notes = append(notes, b.gapNotes(name)...)
	}
	notes = append(notes, b.fallbackNotes(totals)...)
	if slices.ContainsFunc(rows, func(r Row) bool { return r.Provisional }) {
		in := "they are in no total (include_provisional adds them)"
		if b.o.IncludeProvisional {
			in = "they are in the totals, as include_provisional asks, which are flagged provisional"
		}
		notes = append(notes, "Rows flagged provisional hold estimates of months the provider has not published: "+in+".")
	}
	if !b.o.AsOf.IsZero() {
		superseded := 0
		for _, name := range b.names {
			for m, v := range b.views[name] {
				if v.superseded && b.inRange(m) {
					superseded++
				}
			}
		}
		notes = append(notes, fmt.Sprintf("Figures as the exporter held them at %s: %d months restated since show the figures they had then (flag superseded); "+
			"months first published since are left out; yearly water and account names are those held now.", dataTime(b.o.AsOf), superseded))
	}
	for _, name := range b.names {
		if l := b.in.Sources[name].Ledger; l != nil && l.Dropped > 0 {
			notes = append(notes, fmt.Sprintf("Source %s let go of its %d oldest restatements (the ledger keeps %d), the latest of them recorded at %s: "+
				"they are not listed, and a report as of an earlier time shows the figures that replaced them.",
				clean(name), l.Dropped, store.LedgerLimit, dataTime(l.DroppedThrough)))
		}
	}
	return notes
}

// yearlyNotes say where water reported per calendar year went.
func (b *builder) yearlyNotes() []string {
	var who []string
	for _, name := range b.names {
		if d := b.in.Sources[name]; len(d.Yearly) > 0 {
			who = addOnce(who, d.Provider+": "+b.water(d.Provider))
		}
	}
	if len(who) == 0 {
		return nil
	}
	slices.Sort(who)
	if !b.yearlyFits {
		return []string{fmt.Sprintf("Water reported per calendar year (%s) is left out: it fits calendar-year reports only (period year, fiscal_year_start 1).",
			strings.Join(who, "; "))}
	}
	return []string{fmt.Sprintf("Water reported per calendar year (%s) is in columns of its own, in the year rows with scope none; it is never added to monthly water.",
		strings.Join(who, "; "))}
}

// gapNotes say which months of the report's range that are over source
// name holds no published data for, apart from those it fetched and got
// nothing for, and which accounts it is denied: a row's coverage says
// that a period is incomplete, not that a source is missing altogether.
func (b *builder) gapNotes(name string) []string {
	d := b.in.Sources[name]
	first, last := b.cal.first(b.from), b.cal.first(b.to).Add(b.cal.size-1)
	last = min(last, provider.MonthOf(b.at)-1)
	var missing, empty []provider.Month
	for m := first; m <= last; m++ {
		v, ok := b.views[name][m]
		switch {
		case ok && v.md.Len() == 0 && !v.md.FetchedAt.IsZero():
			empty = append(empty, m)
		case !ok || !d.Published(v.md):
			missing = append(missing, m)
		}
	}
	var notes []string
	if len(missing) > 0 {
		notes = append(notes, fmt.Sprintf("Source %s (%s) holds no emissions for %s: not published yet, not fetched, or older than the data kept.",
			clean(name), d.Provider, spans(missing)))
	}
	if len(empty) > 0 {
		notes = append(notes, fmt.Sprintf("Source %s (%s) fetched %s and the provider returned nothing: no usage, usage of services it does not track, or figures it has not published yet.",
			clean(name), d.Provider, spans(empty)))
	}
	if n := len(d.Denied); n > 0 {
		var accounts []string
		for i, dn := range d.Denied {
			if i == 5 {
				accounts = append(accounts, fmt.Sprintf("and %d more", n-5))
				break
			}
			accounts = append(accounts, clean(dn.Account))
		}
		what := "accounts"
		if n == 1 {
			what = "account"
		}
		notes = append(notes, fmt.Sprintf("Source %s (%s) is denied access to %d %s (%s): their figures are in no row.",
			clean(name), d.Provider, n, what, strings.Join(accounts, ", ")))
	}
	return notes
}

// fallbackNotes say which providers' market-based figures were filled.
func (b *builder) fallbackNotes(totals []Total) []string {
	if !b.o.MarketBasedFallback {
		return nil
	}
	var filled []string
	for _, t := range totals {
		filled = union(filled, t.Methods.MarketBasedFallback)
	}
	if len(filled) == 0 {
		return []string{"The market-based fallback is on, but every market-based figure of the report is the provider's own: nothing was filled."}
	}
	return []string{fmt.Sprintf("Market-based figures are filled with location-based ones where the provider reports none (%s), "+
		"the last resort of the GHG Protocol Scope 2 Guidance's hierarchy when no contractual instrument, supplier-specific or residual-mix factor is known; "+
		"such rows and totals carry the flag market_based_fallback, and the market-based fallback column gives the part filled.", strings.Join(filled, ", "))}
}

// spans names months as runs, at most eight.
func spans(months []provider.Month) string {
	const maxRuns = 8
	var out []string
	runs := provider.Runs(months)
	for i, run := range runs {
		if i == maxRuns {
			out = append(out, fmt.Sprintf("and %d more", len(runs)-maxRuns))
			break
		}
		span := run[0].String()
		if run[1] != run[0] {
			span += " to " + run[1].String()
		}
		out = append(out, span)
	}
	return strings.Join(out, ", ")
}

// clean keeps a name from a provider or a file valid UTF-8.
func clean(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

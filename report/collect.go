package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// builder holds what one Build works out, step by step.
type builder struct {
	in  Input
	o   Options
	cal calendar
	// at is the time the data is shown as of: Options.AsOf, or Now.
	at         time.Time
	names      []string
	cols       []column
	yearlyFits bool
	// dims is the position in By of each dimension, in the order of
	// dimensions; -1 if absent.
	dims [5]int
	// views are the sources' months as they stood at at.
	views map[string]map[provider.Month]view
	// from and to are the report's periods; -1 without data.
	from, to int

	rowSums  map[rowKey]*sum
	provSums map[provKey]*sum
	// emptyMonths notes the periods in which a source fetched a month and got
	// nothing.
	emptyMonths  map[string]map[int]bool
	accountNames map[[2]string]string
}

// view is one month of one source as it stood at the report's time.
type view struct {
	md *store.MonthData
	// superseded: the figures are those a restatement after the report's
	// time replaced; restated: they replace others since published.
	superseded, restated bool
}

// Positions of the dimensions in a row key's values, as in dimensions.
const (
	dProvider = iota
	dAccount
	dService
	dLocation
	dScope
)

type rowKey struct {
	period      int
	provisional bool
	dims        [5]string
}

type provKey struct {
	period   int
	provider string
}

func newBuilder(in Input, o Options) *builder {
	b := &builder{in: in, o: o, cal: newCalendar(o.Period, o.FiscalYearStart), at: o.Now, from: -1, to: -1,
		rowSums: map[rowKey]*sum{}, provSums: map[provKey]*sum{}, emptyMonths: map[string]map[int]bool{},
		accountNames: map[[2]string]string{}}
	if !o.AsOf.IsZero() {
		b.at = o.AsOf
	}
	b.names = slices.Sorted(maps.Keys(in.Sources))
	b.yearlyFits = o.Period == PeriodYear && !b.cal.fiscal
	for i, d := range dimensions {
		b.dims[i] = slices.Index(o.By, d)
	}
	b.views = make(map[string]map[provider.Month]view, len(b.names))
	for _, name := range b.names {
		b.views[name] = viewsAt(in.Sources[name], b.at)
	}
	b.cols = columns(o.Unit, b.waterKinds())
	return b
}

// viewsAt returns d's months as they stood at t.
func viewsAt(d *store.SourceData, t time.Time) map[provider.Month]view {
	months := slices.Collect(maps.Keys(d.Months))
	restated := map[provider.Month]bool{}
	if d.Ledger != nil {
		for _, e := range d.Ledger.Entries {
			months = append(months, e.Month)
			if !e.At.After(t) {
				restated[e.Month] = true
			}
		}
	}
	out := make(map[provider.Month]view, len(months))
	for _, m := range months {
		if _, done := out[m]; done {
			continue
		}
		if md, superseded := d.MonthAt(m, t); md != nil {
			out[m] = view{md: md, superseded: superseded, restated: restated[m]}
		}
	}
	return out
}

// water returns what prov's water figures measure.
func (b *builder) water(prov string) string {
	return cmp.Or(b.in.Methodology[prov].Water, unspecifiedWater)
}

// waterKinds are the water measures the sources hold, whatever the
// report's range, so that reports of one exporter have one layout.
func (b *builder) waterKinds() waterKinds {
	var w waterKinds
	for _, name := range b.names {
		d := b.in.Sources[name]
		for _, v := range b.views[name] {
			if v.md.Carries()&provider.Water != 0 {
				w.monthly = addOnce(w.monthly, b.water(d.Provider))
			}
		}
		if len(d.Yearly) > 0 {
			w.yearly = addOnce(w.yearly, b.water(d.Provider))
		}
	}
	slices.Sort(w.monthly)
	slices.Sort(w.yearly)
	return w
}

// setRange sets the report's periods: those asked for, or those of the
// data for the ends not asked for.
func (b *builder) setRange() error {
	first, last, found := 0, 0, false
	see := func(p int) {
		first, last = min(first, p), max(last, p)
		if !found {
			first, last = p, p
		}
		found = true
	}
	for _, name := range b.names {
		for m, v := range b.views[name] {
			if v.md.Len() > 0 {
				see(b.cal.index(m))
			}
		}
		if b.yearlyFits {
			for _, w := range b.in.Sources[name].Yearly {
				see(w.Year)
			}
		}
		for _, rec := range b.provisional(name) {
			see(b.cal.index(rec.Month))
		}
	}
	from, to := -1, -1
	if b.o.From != "" {
		from, _ = b.cal.parse(b.o.From)
	}
	if b.o.To != "" {
		to, _ = b.cal.parse(b.o.To)
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
	if n := to - from + 1; from >= 0 && n > MaxPeriods {
		return fmt.Errorf("report: %s to %s spans %d %ss; at most %d: narrow it with from and to",
			b.cal.name(from), b.cal.name(to), n, b.o.Period, MaxPeriods)
	}
	b.from, b.to = from, to
	return nil
}

// provisional returns the source's estimates of months it has not
// published, none in a report as of a past time: estimates are not kept.
func (b *builder) provisional(name string) []provider.Record {
	if !b.o.AsOf.IsZero() {
		return nil
	}
	d := b.in.Sources[name]
	return slices.DeleteFunc(slices.Clone(b.in.Provisional[name]), func(r provider.Record) bool {
		v, ok := b.views[name][r.Month]
		return r.Known == 0 || ok && d.Published(v.md)
	})
}

// skeleton returns the report with its options and metadata, before any
// row.
func (b *builder) skeleton() *Report {
	o := b.o
	r := &Report{
		Schema: Schema,
		Metadata: Metadata{
			Exporter: Exporter, Version: b.in.Version, GeneratedAt: o.Now.UTC(), ConfigHash: b.in.ConfigHash,
			Sources: []SourceMeta{}, ModelVersions: map[string][]string{},
		},
		Options: Settings{
			Period: o.Period, FiscalYearStart: int(o.FiscalYearStart), By: o.By, Unit: o.Unit,
			MarketBasedFallback: o.MarketBasedFallback, IncludeProvisional: o.IncludeProvisional, Format: o.Format,
		},
		Columns: publicColumns(b.cols), Rows: []Row{}, Totals: []Total{}, Restatements: []Restatement{},
		Methodology: b.methodology(), Notes: []string{},
	}
	if !o.AsOf.IsZero() {
		r.Metadata.AsOf, r.Options.AsOf = o.AsOf.UTC(), o.AsOf.UTC()
	}
	return r
}

// key returns the row key of a figure whose dimension values are values,
// in the order of dimensions.
func (b *builder) key(period int, provisional bool, values [5]string) rowKey {
	k := rowKey{period: period, provisional: provisional}
	for d, i := range b.dims {
		if i >= 0 {
			k.dims[i] = strings.ToValidUTF8(values[d], "\uFFFD")
		}
	}
	return k
}

// dim returns the value of dimension d (in the order of dimensions) in
// a row key.
func (b *builder) dim(k rowKey, d int) string {
	if i := b.dims[d]; i >= 0 {
		return k.dims[i]
	}
	return ""
}

func addOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
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

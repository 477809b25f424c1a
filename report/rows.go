package report

import (
	"cmp"
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// rows returns the rows of every period of the range, in order; a period
// without data gets a row saying so, so that a report never silently
// covers less than it says.
func (b *builder) rows() []Row {
	keys := slices.SortedFunc(maps.Keys(b.rowSums), func(x, y rowKey) int {
		if c := cmp.Compare(x.period, y.period); c != 0 {
			return c
		}
		if x.provisional != y.provisional {
			if x.provisional {
				return 1
			}
			return -1
		}
		for i := range b.o.By {
			if c := strings.Compare(x.dims[i], y.dims[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	var rows []Row
	next := 0
	for p := b.from; p <= b.to; p++ {
		start := next
		for next < len(keys) && keys[next].period == p {
			next++
		}
		if start == next {
			rows = append(rows, Row{Period: b.cal.name(p), Figures: b.figures(newSum(len(b.cols)), p, nil), Note: "no data for this period"})
			continue
		}
		for _, k := range keys[start:next] {
			rows = append(rows, b.row(k))
		}
	}
	return rows
}

func (b *builder) row(k rowKey) Row {
	s := b.rowSums[k]
	row := Row{
		Period: b.cal.name(k.period), Provider: b.dim(k, dProvider), Account: b.dim(k, dAccount),
		Service: b.dim(k, dService), Location: b.dim(k, dLocation), Scope: b.dim(k, dScope),
		Figures: b.figures(s, k.period, nil),
	}
	if b.dims[dAccount] >= 0 {
		var names []string
		for _, prov := range slices.Sorted(maps.Keys(s.shares)) {
			if n := b.accountNames[[2]string{prov, row.Account}]; n != "" {
				names = addOnce(names, strings.ToValidUTF8(n, "\uFFFD"))
			}
		}
		row.AccountName = strings.Join(names, "; ")
	}
	return row
}

// figures works out what s says of period p. sources, for a total, are
// the sources it covers, by provider: those without data are listed.
func (b *builder) figures(s *sum, p int, sources map[string][]string) Figures {
	f := Figures{Values: make(map[string]*float64, len(b.cols)), MonthsExpected: b.cal.size,
		Provisional: s.provisional, ModelVersions: slices.Sorted(slices.Values(s.revisions))}
	if f.ModelVersions == nil {
		f.ModelVersions = []string{}
	}
	fallback := b.o.MarketBasedFallback
	for i, c := range b.cols {
		f.Values[c.Key] = nil
		if v, _, ok := s.value(b.cols, i, fallback); ok {
			f.Values[c.Key] = rounded(v/c.scale, c.dec)
		}
	}
	if mkt := index(b.cols, provider.EmissionsMarketBased); mkt >= 0 && fallback && s.lacking[mkt] {
		f.MarketBasedFallback = rounded(s.fill[mkt]/b.cols[mkt].scale, b.cols[mkt].dec)
	}
	f.Coverage, f.MonthsCovered = b.coverage(s, sources)
	providers := slices.Sorted(maps.Keys(s.shares))
	if len(providers) == 0 {
		providers = b.allProviders()
	}
	f.Revisable = b.revisable(p, providers)
	f.Flags = b.flags(s, &f, p, sources != nil)
	return f
}

// coverage returns each provider's share of s, with the sources of
// sources that have none, and the months every provider with data has
// data for.
func (b *builder) coverage(s *sum, sources map[string][]string) ([]Coverage, int) {
	full := uint16(1)<<b.cal.size - 1
	mask, any := full, false
	provs := slices.Sorted(maps.Keys(s.shares))
	provs = union(provs, slices.Sorted(maps.Keys(sources)))
	out := make([]Coverage, 0, len(provs))
	for _, prov := range provs {
		c := Coverage{Provider: prov, Sources: []string{}}
		if sh := s.shares[prov]; sh != nil {
			c.Months, c.CalendarYear, c.Sources = bits.OnesCount16(sh.months), sh.yearly, slices.Sorted(slices.Values(sh.sources))
			months := sh.months
			if months == 0 && sh.yearly {
				months = full
			}
			mask &= months
			any = true
		}
		for _, name := range sources[prov] {
			if !slices.Contains(c.Sources, name) {
				c.SourcesWithoutData = append(c.SourcesWithoutData, name)
			}
		}
		out = append(out, c)
	}
	if !any {
		return out, 0
	}
	return out, bits.OnesCount16(mask)
}

// revisable reports whether a month of period p can still change for one
// of providers at the report's time.
func (b *builder) revisable(p int, providers []string) bool {
	if b.at.Before(b.cal.end(p)) {
		return true
	}
	last := b.cal.first(p).Add(b.cal.size - 1)
	for _, prov := range providers {
		if b.at.Before(b.in.Schedules[prov].FinalAt(last)) {
			return true
		}
	}
	return false
}

// allProviders are the providers of the sources and schedules.
func (b *builder) allProviders() []string {
	var out []string
	for _, d := range b.in.Sources {
		out = addOnce(out, d.Provider)
	}
	for p := range b.in.Schedules {
		out = addOnce(out, p)
	}
	slices.Sort(out)
	return out
}

// flags returns the flags of figures f of s in period p; a total also
// says whether a source it covers fetched a month and got nothing.
func (b *builder) flags(s *sum, f *Figures, p int, total bool) []string {
	out := []string{}
	add := func(ok bool, flag string) {
		if ok {
			out = append(out, flag)
		}
	}
	add(f.MonthsCovered < f.MonthsExpected, FlagIncomplete)
	add(f.Revisable, FlagRevisable)
	add(s.provisional, FlagProvisional)
	add(f.MarketBasedFallback != nil, FlagMarketBasedFallback)
	add(s.restated, FlagRestated)
	add(s.superseded, FlagSuperseded)
	if total {
		add(slices.ContainsFunc(f.Coverage, func(c Coverage) bool {
			return slices.ContainsFunc(slices.Concat(c.Sources, c.SourcesWithoutData), func(name string) bool { return b.emptyMonths[name][p] })
		}), FlagEmptyMonths)
	}
	var caveats []string
	for prov := range s.shares {
		for _, c := range b.in.Methodology[prov].Caveats {
			caveats = addOnce(caveats, c.Flag)
		}
	}
	slices.Sort(caveats)
	return append(out, caveats...)
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

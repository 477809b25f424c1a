package report

import (
	"maps"
	"slices"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// splitByProvider reports whether the rows are split by provider and
// more, so that each provider's total per period says something the rows
// do not.
func (b *builder) splitByProvider() bool { return b.dims[dProvider] >= 0 && len(b.o.By) > 1 }

// totals returns each period's totals: its providers' when the rows are
// split by provider and more, then its own.
func (b *builder) totals(rows []Row) []Total {
	sources := map[string][]string{}
	for _, name := range b.names {
		prov := b.in.Sources[name].Provider
		sources[prov] = append(sources[prov], name)
	}
	var out []Total
	for p := b.from; p <= b.to; p++ {
		if b.splitByProvider() {
			for _, prov := range slices.Sorted(maps.Keys(sources)) {
				if b.provSums[provKey{p, prov}] != nil {
					out = append(out, b.total(p, prov, map[string][]string{prov: sources[prov]}, rows))
				}
			}
		}
		out = append(out, b.total(p, "", sources, rows))
	}
	return out
}

// total sums the providers' figures of period p that sources name (one
// provider's when prov is set).
func (b *builder) total(p int, prov string, sources map[string][]string, rows []Row) Total {
	parts := map[string]*sum{}
	for name := range sources {
		if s := b.provSums[provKey{p, name}]; s != nil {
			parts[name] = s
		}
	}
	merged, methods := b.combine(parts)
	t := Total{Period: b.cal.name(p), Provider: prov, Figures: b.figures(merged, p, sources), Methods: methods}
	if mkt := index(b.cols, provider.EmissionsMarketBased); len(methods.MarketBasedFallback) > 0 {
		// combine filled the figure and kept the part it filled.
		t.MarketBasedFallback = rounded(merged.fill[mkt]/b.cols[mkt].scale, b.cols[mkt].dec)
		t.Flags = b.flags(merged, &t.Figures, p, true)
	}
	for _, row := range rows {
		if row.Period == t.Period && len(row.Coverage) > 0 && (!row.Provisional || b.o.IncludeProvisional) && (prov == "" || row.Provider == prov) {
			t.Rows++
		}
	}
	return t
}

// combine adds the providers' sums of a period into one whose figures are
// whole: a market-based figure counts only for the providers whose every
// record with location-based emissions has one, or with the fallback,
// filled; the others are left out, and methods says which are which.
func (b *builder) combine(parts map[string]*sum) (*sum, Methods) {
	merged := newSum(len(b.cols))
	m := Methods{LocationBased: []string{}, MarketBased: []string{}, MarketBasedFallback: []string{}, MarketBasedLeftOut: []string{},
		Comparable: Comparable{Providers: []string{}}}
	loc, mkt := index(b.cols, provider.Emissions), index(b.cols, provider.EmissionsMarketBased)
	var cmpLoc, cmpMkt float64
	for _, prov := range slices.Sorted(maps.Keys(parts)) {
		s := parts[prov]
		for i, c := range b.cols {
			v, filled, ok := s.value(b.cols, i, b.o.MarketBasedFallback)
			if !ok {
				continue
			}
			merged.v[i] += v
			merged.has[i] = true
			if c.q.Merge == provider.MergeComplete {
				merged.fill[i] += filled
			}
		}
		for name, sh := range s.shares {
			for _, src := range sh.sources {
				merged.from(name, src, sh.months, sh.yearly)
			}
		}
		merged.revisions = union(merged.revisions, slices.Sorted(slices.Values(s.revisions)))
		merged.restated = merged.restated || s.restated
		merged.superseded = merged.superseded || s.superseded
		merged.provisional = merged.provisional || s.provisional
		hasLoc := loc >= 0 && s.has[loc]
		if hasLoc {
			m.LocationBased = append(m.LocationBased, prov)
		}
		if mkt < 0 {
			continue
		}
		mv, _, mok := s.value(b.cols, mkt, b.o.MarketBasedFallback)
		switch {
		case s.lacking[mkt] && b.o.MarketBasedFallback:
			m.MarketBasedFallback = append(m.MarketBasedFallback, prov)
			if s.has[mkt] {
				m.MarketBased = append(m.MarketBased, prov)
			}
		case s.lacking[mkt]:
			m.MarketBasedLeftOut = append(m.MarketBasedLeftOut, prov)
		case s.has[mkt]:
			m.MarketBased = append(m.MarketBased, prov)
		}
		if hasLoc && mok {
			m.Comparable.Providers = append(m.Comparable.Providers, prov)
			cmpLoc += s.v[loc]
			cmpMkt += mv
		}
	}
	if len(m.Comparable.Providers) > 0 {
		m.Comparable.LocationBased = rounded(cmpLoc/b.cols[loc].scale, b.cols[loc].dec)
		m.Comparable.MarketBased = rounded(cmpMkt/b.cols[mkt].scale, b.cols[mkt].dec)
	}
	return merged, m
}

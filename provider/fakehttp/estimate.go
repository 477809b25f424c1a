package fakehttp

import (
	"math"
	"sort"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// CarbonRow and CostRow are a fake's dataset as the reference estimate
// reads it, in base units (grams, US dollars), each fake converting its
// own rows with its own constants.
type (
	CarbonRow struct {
		Account, Service, Location, Scope string
		Month                             provider.Month
		// Grams and Market are the location- and market-based figures,
		// NaN when the row has none.
		Grams, Market float64
	}
	CostRow struct {
		Account, Service, Location string
		Month                      provider.Month
		USD                        float64
	}
)

// Estimated is one expected provisional figure: what the exporter must
// serve for a cost row's labels, scope and month.
type Estimated struct {
	Account, Service, Location, Scope, Basis string
	Month                                    provider.Month
	// Grams and Market are NaN where the method has no estimate.
	Grams, Market float64
}

// ReferenceEstimates works out, row by row and independently of the
// exporter's code, the provisional figures the exporter must serve from
// carbon (the published months) and cost: each cost row after the latest
// published month times the grams per dollar of the latest published
// month in which its labels have both, matched by location, else
// service, else account, else the whole dataset; a method only where
// every carbon row of the match has it; "all" for the labels a cost row
// lacks. Equal labels are summed.
func ReferenceEstimates(carbon []CarbonRow, cost []CostRow) []Estimated {
	latest := provider.Month(math.MinInt32)
	for _, c := range carbon {
		if c.Month > latest {
			latest = c.Month
		}
	}
	sums := map[Estimated]Estimated{}
	for _, row := range cost {
		if row.Month <= latest || row.USD == 0 {
			continue
		}
		for _, e := range referenceRow(carbon, cost, row, latest) {
			k := e
			k.Grams, k.Market = 0, 0
			s, held := sums[k]
			if !held {
				sums[k] = e
				continue
			}
			s.Grams += e.Grams
			s.Market += e.Market
			sums[k] = s
		}
	}
	out := make([]Estimated, 0, len(sums))
	for _, e := range sums {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Month != b.Month {
			return a.Month < b.Month
		}
		for _, p := range [][2]string{{a.Account, b.Account}, {a.Service, b.Service}, {a.Location, b.Location}, {a.Scope, b.Scope}, {a.Basis, b.Basis}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
	return out
}

// referenceRow estimates one cost row from the published months up to
// last.
func referenceRow(carbon []CarbonRow, cost []CostRow, row CostRow, last provider.Month) []Estimated {
	levels := []struct {
		basis string
		same  func(a, s, l string) bool
		ok    bool
	}{
		{"location", func(a, s, l string) bool { return a == row.Account && s == row.Service && l == row.Location }, row.Service != "" && row.Location != ""},
		{"service", func(a, s, _ string) bool { return a == row.Account && s == row.Service }, row.Service != ""},
		{"account", func(a, _, _ string) bool { return a == row.Account }, true},
		{"source", func(string, string, string) bool { return true }, true},
	}
	for _, lv := range levels {
		if !lv.ok {
			continue
		}
		for m := last; m > last-120; m-- {
			usd := 0.0
			for _, c := range cost {
				if c.Month == m && lv.same(c.Account, c.Service, c.Location) {
					usd += c.USD
				}
			}
			var rows []CarbonRow
			for _, c := range carbon {
				if c.Month == m && lv.same(c.Account, c.Service, c.Location) {
					rows = append(rows, c)
				}
			}
			if usd <= 0 || len(rows) == 0 {
				continue
			}
			return referencePerScope(rows, usd, row, lv.basis)
		}
	}
	return nil
}

// referencePerScope applies the grams per dollar of rows, per scope, to
// row's cost.
func referencePerScope(rows []CarbonRow, usd float64, row CostRow, basis string) []Estimated {
	type scoped struct {
		grams, market       float64
		hasGrams, hasMarket bool
	}
	per := map[string]*scoped{}
	for _, c := range rows {
		s := per[c.Scope]
		if s == nil {
			s = &scoped{hasGrams: true, hasMarket: true}
			per[c.Scope] = s
		}
		s.hasGrams = s.hasGrams && !math.IsNaN(c.Grams)
		s.hasMarket = s.hasMarket && !math.IsNaN(c.Market)
		if !math.IsNaN(c.Grams) {
			s.grams += c.Grams
		}
		if !math.IsNaN(c.Market) {
			s.market += c.Market
		}
	}
	label := func(s string) string {
		if s == "" {
			return "all"
		}
		return s
	}
	var out []Estimated
	for scope, s := range per {
		if !s.hasGrams && !s.hasMarket {
			continue
		}
		e := Estimated{Account: row.Account, Service: label(row.Service), Location: label(row.Location), Scope: scope,
			Basis: basis, Month: row.Month, Grams: math.NaN(), Market: math.NaN()}
		if s.hasGrams {
			e.Grams = row.USD * s.grams / usd
		}
		if s.hasMarket {
			e.Market = row.USD * s.market / usd
		}
		out = append(out, e)
	}
	return out
}

// ReferenceBacktest works out, independently of the exporter's code, the
// error the exporter must report for each of the last n carbon months
// that have cost: the month estimated from its cost and the carbon months
// at least lag months before it, minus the month's carbon, over the
// month's carbon, per method ([0] location-based, [1] market-based; NaN
// where either side has none). Months are ascending.
func ReferenceBacktest(carbon []CarbonRow, cost []CostRow, lag, n int) (months []provider.Month, ratios [][2]float64) {
	published := map[provider.Month]bool{}
	for _, c := range carbon {
		published[c.Month] = true
	}
	var candidates []provider.Month
	for m := range published {
		candidates = append(candidates, m)
	}
	sort.Slice(candidates, func(i, j int) bool { return candidates[i] > candidates[j] })
	for _, m := range candidates {
		if len(months) == n {
			break
		}
		var rows []CostRow
		for _, c := range cost {
			if c.Month == m {
				rows = append(rows, c)
			}
		}
		var before []CarbonRow
		var actual [2]float64
		any := [2]bool{}
		for _, c := range carbon {
			switch {
			case c.Month <= m-provider.Month(lag):
				before = append(before, c)
			case c.Month == m:
				for j, v := range []float64{c.Grams, c.Market} {
					if !math.IsNaN(v) {
						actual[j] += v
						any[j] = true
					}
				}
			}
		}
		if len(rows) == 0 || len(before) == 0 {
			continue
		}
		var est [2]float64
		estimated := [2]bool{}
		last := before[0].Month
		for _, c := range before {
			last = max(last, c.Month)
		}
		for _, row := range rows {
			for _, e := range referenceRow(before, cost, row, last) {
				for j, v := range []float64{e.Grams, e.Market} {
					if !math.IsNaN(v) {
						est[j] += v
						estimated[j] = true
					}
				}
			}
		}
		r := [2]float64{math.NaN(), math.NaN()}
		for j := range r {
			if estimated[j] && any[j] && actual[j] != 0 {
				r[j] = (est[j] - actual[j]) / actual[j]
			}
		}
		if math.IsNaN(r[0]) && math.IsNaN(r[1]) {
			continue
		}
		months = append(months, m)
		ratios = append(ratios, r)
	}
	for i, j := 0, len(months)-1; i < j; i, j = i+1, j-1 {
		months[i], months[j] = months[j], months[i]
		ratios[i], ratios[j] = ratios[j], ratios[i]
	}
	return months, ratios
}

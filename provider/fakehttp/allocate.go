package fakehttp

import (
	"math"
	"sort"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// TagRow is a fake's weight of one tag value in one cell, in base units
// (US dollars, or grams for a dimension of the carbon data), "" for the
// labels the fake's API cannot group by together with the tag and for
// weight without the tag.
type TagRow struct {
	Account, Service, Location, Value string
	Month                             provider.Month
	Weight                            float64
}

// Allocated is the reference allocation of one month to one value: the
// location- and market-based grams, NaN where no carbon row has the
// method.
type Allocated struct {
	Month         provider.Month
	Value         string
	Grams, Market float64
}

// ReferenceAllocation works out, row by row and independently of the
// exporter's code, what the exporter must allocate to each value of a tag
// per month: the values past the top by total weight become "(other)";
// each carbon row is split by the positive weight of each value among
// the tag rows of its month and account (or of no account) with its
// service and location, else its service, else any, the first that has
// positive weight; "(untagged)" takes weight without the tag, and rows
// that match no weight whole.
func ReferenceAllocation(carbon []CarbonRow, tags []TagRow, top int) []Allocated {
	tags = referenceFold(tags, top)
	sums := map[[2]any]*Allocated{}
	add := func(m provider.Month, value string, grams, market float64) {
		k := [2]any{m, value}
		a := sums[k]
		if a == nil {
			a = &Allocated{Month: m, Value: value, Grams: math.NaN(), Market: math.NaN()}
			sums[k] = a
		}
		if !math.IsNaN(grams) {
			a.Grams = nanSum(a.Grams, grams)
		}
		if !math.IsNaN(market) {
			a.Market = nanSum(a.Market, market)
		}
	}
	for _, c := range carbon {
		weights := referenceShares(c, tags)
		var total float64
		for _, w := range weights {
			total += w
		}
		if total == 0 {
			add(c.Month, "(untagged)", c.Grams, c.Market)
			continue
		}
		for v, w := range weights {
			add(c.Month, v, c.Grams*w/total, c.Market*w/total)
		}
	}
	out := make([]Allocated, 0, len(sums))
	for _, a := range sums {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Month != out[j].Month {
			return out[i].Month < out[j].Month
		}
		return out[i].Value < out[j].Value
	})
	return out
}

func nanSum(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return a + b
}

// referenceShares returns the positive weight per value of the finest
// match of row c, or nil.
func referenceShares(c CarbonRow, tags []TagRow) map[string]float64 {
	for _, account := range []string{c.Account, ""} {
		for level := range 3 {
			weights := map[string]float64{}
			found := false
			for _, t := range tags {
				if t.Month != c.Month || t.Account != account ||
					level < 2 && t.Service != c.Service || level < 1 && t.Location != c.Location {
					continue
				}
				found = true
				v := t.Value
				if v == "" {
					v = "(untagged)"
				}
				weights[v] += t.Weight
			}
			positive := map[string]float64{}
			for v, w := range weights {
				if w > 0 {
					positive[v] = w
				}
			}
			if found && len(positive) > 0 {
				return positive
			}
		}
	}
	return nil
}

// referenceFold renames the values past the top by total weight (ties by
// name) "(other)".
func referenceFold(tags []TagRow, top int) []TagRow {
	totals := map[string]float64{}
	for _, t := range tags {
		if t.Value != "" {
			totals[t.Value] += t.Weight
		}
	}
	values := make([]string, 0, len(totals))
	for v := range totals {
		values = append(values, v)
	}
	sort.Slice(values, func(i, j int) bool {
		if totals[values[i]] != totals[values[j]] {
			return totals[values[i]] > totals[values[j]]
		}
		return values[i] < values[j]
	})
	if len(values) <= top {
		return tags
	}
	folded := map[string]bool{}
	for _, v := range values[top:] {
		folded[v] = true
	}
	out := make([]TagRow, len(tags))
	for i, t := range tags {
		if folded[t.Value] {
			t.Value = "(other)"
		}
		out[i] = t
	}
	return out
}

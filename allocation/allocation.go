// Package allocation splits the figures a provider reports per account,
// service, location and month among the values of one of the user's tags
// or labels, in proportion to each value's share of the cell's cost (or
// of another weight the provider reports per value). Every figure is
// split whole: the values of a cell add up to what the provider reported.
// It is a pure function of one source's data: no clock, no state, no
// cloud.
package allocation

import (
	"cmp"
	"maps"
	"slices"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The values that are not a tag's: weight that carries no value of the
// key, and the values past the top N by weight. Parentheses are in no
// value GCP or AWS allow, and rare in the others'.
const (
	Untagged = "(untagged)"
	Other    = "(other)"
)

// Part is the part of a record that falls to one value of a tag:
// every quantity of the record times the value's share.
type Part struct {
	provider.Record
	Value string
}

// Weight is what a tag record's share is taken from: its cost, or, for a
// dimension of the carbon data itself, its emissions.
func Weight(r *provider.Record) float64 {
	if r.Known&provider.Cost != 0 {
		return r.CostUSD
	}
	return r.EmissionsGrams
}

// cell is one month of a group of the tag records at one level: a
// dimension the level drops, or the provider did not give, is "".
type cell struct {
	month                      provider.Month
	account, service, location string
}

// shares are the weight of each value in one cell.
type shares map[string]float64

// index holds the tag records' weight per value at three levels: as the
// provider grouped them, without location, and per account.
type index map[cell]shares

func newIndex(tags []provider.TagCost) index {
	ix := make(index)
	for i := range tags {
		t := &tags[i]
		w := Weight(&t.Record)
		value := cmp.Or(t.Value, Untagged)
		levels := []cell{
			{t.Month, t.Account, t.Service, t.Location},
			{t.Month, t.Account, t.Service, ""},
			{t.Month, t.Account, "", ""},
		}
		for j, c := range levels {
			// A record that lacks location or service is its own coarser
			// cell: count it once.
			if slices.Contains(levels[:j], c) {
				continue
			}
			s := ix[c]
			if s == nil {
				s = make(shares)
				ix[c] = s
			}
			s[value] += w
		}
	}
	return ix
}

// match returns the shares of the finest cell that holds item's and has
// weight: the item's own, then its service in its account, then its
// account; each also among tag records that carry no account (a provider
// that cannot group the tag by account). Values of negative weight
// (credits) take no share.
func (ix index) match(it *provider.Record) (shares, float64) {
	for _, account := range []string{it.Account, ""} {
		for _, c := range []cell{
			{it.Month, account, it.Service, it.Location},
			{it.Month, account, it.Service, ""},
			{it.Month, account, "", ""},
		} {
			s, ok := ix[c]
			if !ok {
				continue
			}
			// Summed in value order, so that the shares are the same to
			// the bit at every render.
			var total float64
			for _, v := range slices.Sorted(maps.Keys(s)) {
				if w := s[v]; w > 0 {
					total += w
				}
			}
			if total > 0 {
				return s, total
			}
		}
	}
	return nil, 0
}

// Split allocates every record by the shares of the values of tags in
// its cell (see match); a record whose cell and coarser groups carry no
// weight falls whole to Untagged. The parts of a record add up to it, in
// every quantity; parts of one value in one series are summed.
func Split(records []provider.Record, tags []provider.TagCost) []Part {
	ix := newIndex(tags)
	type key struct {
		provider, account, service, location string
		scope                                provider.Scope
		month                                provider.Month
		value                                string
	}
	sums := make(map[key]*Part, len(records))
	add := func(r *provider.Record, value string, f float64) {
		k := key{r.Provider, r.Account, r.Service, r.Location, r.Scope, r.Month, value}
		p := sums[k]
		if p == nil {
			p = &Part{Record: provider.Record{Provider: r.Provider, Account: r.Account, Service: r.Service, Location: r.Location,
				Scope: r.Scope, Month: r.Month}, Value: value}
			sums[k] = p
		}
		p.EmissionsGrams += r.EmissionsGrams * f
		p.MarketBasedGrams += r.MarketBasedGrams * f
		p.EnergyJoules += r.EnergyJoules * f
		p.CostUSD += r.CostUSD * f
		p.WaterCubicMeters += r.WaterCubicMeters * f
		p.Known |= r.Known
	}
	for i := range records {
		r := &records[i]
		s, total := ix.match(r)
		if s == nil {
			add(r, Untagged, 1)
			continue
		}
		for _, v := range slices.Sorted(maps.Keys(s)) {
			if w := s[v]; w > 0 {
				add(r, v, w/total)
			}
		}
	}
	out := make([]Part, 0, len(sums))
	for _, p := range sums {
		out = append(out, *p)
	}
	slices.SortFunc(out, compare)
	return out
}

func compare(a, b Part) int {
	return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Location, b.Location), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.Value, b.Value))
}

// Folded says what Fold did with one key's values.
type Folded struct {
	// Values counts the distinct values the tag records carry; Kept those
	// kept, the rest folded into Other.
	Values, Kept int
	// Weight is the records' total weight, Tagged the part with a value
	// and Folded the part folded into Other.
	Weight, Tagged, Folded float64
}

// Fold keeps the top values of tags by their weight over every month
// given, and relabels the rest Other, so that a key has at most top + 2
// values per cell (with Other and Untagged) whatever its cardinality. The
// weight of each cell is unchanged.
func Fold(tags []provider.TagCost, top int) ([]provider.TagCost, Folded) {
	var f Folded
	totals := make(map[string]float64)
	for i := range tags {
		w := Weight(&tags[i].Record)
		f.Weight += w
		if v := tags[i].Value; v != "" {
			totals[v] += w
			f.Tagged += w
		}
	}
	f.Values = len(totals)
	ranked := slices.SortedFunc(maps.Keys(totals), func(a, b string) int {
		return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b))
	})
	if len(ranked) <= top {
		f.Kept = len(ranked)
		return tags, f
	}
	f.Kept = top
	folded := make(map[string]bool, len(ranked)-top)
	for _, v := range ranked[top:] {
		folded[v] = true
		f.Folded += totals[v]
	}
	out := slices.Clone(tags)
	for i := range out {
		if folded[out[i].Value] {
			out[i].Value = Other
		}
	}
	return out, f
}

package exposition

import (
	"maps"
	"slices"
	"strconv"

	"github.com/cloudcarbon/cloudcarbon_exporter/allocation"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provisional"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// allocationDefs are the families of the emissions allocated to the
// values of the user's tags (allocate_by), and what the allocation did.
type allocationDefs struct {
	grams, market, provisionalGrams, provisionalMarket *def
	values, kept, taggedRatio, foldedRatio             *def
	success, lastSuccess                               *def
}

func newAllocationDefs() allocationDefs {
	labels := []string{"provider", "account", "service", "location", "scope", "month", "key", "value"}
	source := []string{"provider", "source", "key"}
	return allocationDefs{
		grams: newDef("allocated_emissions_grams",
			"Emissions of the provider's latest published month, in grams of CO2e, allocated to the values of a tag or label key (allocate_by) in proportion to each value's cost in the same account, service, location and month; the values of a series add up to cloudcarbon_emissions_grams. "+
				"value is "+allocation.Untagged+" for cost without the tag and "+allocation.Other+" for the values past allocate_top.",
			labels...),
		market: newDef("allocated_emissions_market_based_grams",
			"Market-based emissions of the provider's latest published month, in grams of CO2e, allocated as cloudcarbon_allocated_emissions_grams.",
			labels...),
		provisionalGrams: newDef("provisional_allocated_emissions_grams",
			"Estimated emissions of a month the provider has not published yet (cloudcarbon_provisional_emissions_grams, summed over basis), in grams of CO2e, allocated as cloudcarbon_allocated_emissions_grams.",
			append(slices.Clone(labels), "months_ahead")...),
		provisionalMarket: newDef("provisional_allocated_emissions_market_based_grams",
			"Estimated market-based emissions of a month the provider has not published yet, in grams of CO2e, allocated as cloudcarbon_allocated_emissions_grams.",
			append(slices.Clone(labels), "months_ahead")...),
		values: newDef("allocation_values",
			"Distinct values of the allocation key in the source's cost of the months held, before folding.", source...),
		kept: newDef("allocation_kept_values",
			"Values of the allocation key shown; the rest (cloudcarbon_allocation_values minus these) are folded into "+allocation.Other+" (allocate_top).", source...),
		taggedRatio: newDef("allocation_tagged_ratio",
			"Share of the source's cost of the months held that carries a value of the allocation key; the rest is allocated to "+allocation.Untagged+".", source...),
		foldedRatio: newDef("allocation_folded_ratio",
			"Share of the source's cost of the months held whose value was folded into "+allocation.Other+".", source...),
		success: newDef("allocation_refresh_success",
			"Whether the latest read of the source's tag weights, for allocation, succeeded (1) or failed (0).", "provider", "source"),
		lastSuccess: newDef("allocation_last_refresh_success_timestamp_seconds",
			"When the source's tag weights, for allocation, were last read successfully, as a Unix timestamp.", "provider", "source"),
	}
}

// allocated sums the allocated series of every source, so that two
// sources of one provider on disjoint accounts give one series set.
type allocated struct {
	sums map[allocatedKey]allocatedSum
}

// allocatedSum is one allocated series: both methods, and which the parts
// summed carry.
type allocatedSum struct {
	grams [2]float64
	known provider.Quantity
}

type allocatedKey struct {
	provider, account, service, location string
	scope                                provider.Scope
	month                                provider.Month
	key, value                           string
	ahead                                int // months after the latest published; 0: published
}

// collect adds the allocations of source d to s and their self-metrics
// to c: the latest published month's records and the estimates of the
// months after it (nil without provisional months), split by the tag
// weights of each key, folded to the source's top values over every month
// held.
func (p *allocationDefs) collect(c *collection, s *allocated, d *store.SourceData, estimates []provisional.Estimate) {
	a := d.Allocations
	if a == nil || len(a.Keys) == 0 {
		return
	}
	latest, ok := d.LatestMonth()
	if !ok {
		return
	}
	var records []provider.Record
	if md := d.Months[latest]; md != nil {
		records = md.Records()
	}
	for _, e := range estimates {
		records = append(records, provider.Record{Provider: d.Provider, Account: e.Account, Service: e.Service, Location: e.Location,
			Scope: e.Scope, Month: e.Month, EmissionsGrams: e.Grams, MarketBasedGrams: e.MarketBasedGrams,
			Known: e.Known & (provider.Emissions | provider.EmissionsMarketBased)})
	}
	for _, key := range slices.Sorted(maps.Keys(a.Keys)) {
		tags, folded := allocation.Fold(a.Rows(key), a.Top)
		for _, part := range allocation.Split(records, tags) {
			if part.Known&(provider.Emissions|provider.EmissionsMarketBased) == 0 {
				continue
			}
			s.add(allocatedKey{provider: d.Provider, account: part.Account, service: part.Service, location: part.Location,
				scope: part.Scope, month: part.Month, key: key, value: valueLabel(part.Value), ahead: int(part.Month - latest)}, &part.Record)
		}
		c.add(p.values, float64(folded.Values), d.Provider, d.Name, key)
		c.add(p.kept, float64(folded.Kept), d.Provider, d.Name, key)
		if folded.Weight > 0 {
			c.add(p.taggedRatio, folded.Tagged/folded.Weight, d.Provider, d.Name, key)
			c.add(p.foldedRatio, folded.Folded/folded.Weight, d.Provider, d.Name, key)
		}
	}
}

// valueLabel is a part's value as a label: Split names untagged weight
// Untagged already, and a provider's empty value is untagged too.
func valueLabel(v string) string {
	if v == "" {
		return allocation.Untagged
	}
	return v
}

func (s *allocated) add(k allocatedKey, r *provider.Record) {
	if s.sums == nil {
		s.sums = map[allocatedKey]allocatedSum{}
	}
	v := s.sums[k]
	v.grams[0] += r.EmissionsGrams
	v.grams[1] += r.MarketBasedGrams
	v.known |= r.Known
	s.sums[k] = v
}

// emit adds the summed series to c.
func (p *allocationDefs) emit(c *collection, s *allocated) {
	for k, v := range s.sums {
		values := []string{k.provider, k.account, k.service, k.location, string(k.scope), k.month.String(), k.key, k.value}
		grams, market := p.grams, p.market
		if k.ahead > 0 {
			values = append(values, strconv.Itoa(k.ahead))
			grams, market = p.provisionalGrams, p.provisionalMarket
		}
		if v.known&provider.Emissions != 0 {
			c.add(grams, v.grams[0], slices.Clone(values)...)
		}
		if v.known&provider.EmissionsMarketBased != 0 {
			c.add(market, v.grams[1], values...)
		}
	}
}

// freshness adds the tag feed's freshness of d to c.
func (p *allocationDefs) freshness(c *collection, d *store.SourceData) {
	a := d.Allocations
	if a == nil {
		return
	}
	if !a.Attempt.IsZero() {
		c.add(p.success, b2f(a.OK), d.Provider, d.Name)
	}
	if !a.Success.IsZero() {
		c.add(p.lastSuccess, float64(a.Success.UnixMilli())/1e3, d.Provider, d.Name)
	}
}

package provider

import "math"

// Merge says how the values of one quantity combine when records that
// share a row or a series are added up.
type Merge uint8

const (
	// MergeSum adds every value.
	MergeSum Merge = iota
	// MergeComplete adds the values only when every record of the row
	// that carries location-based emissions carries this quantity too:
	// market-based figures are an alternative to location-based ones, and
	// a sum over some of a row's records would read as the whole row's.
	MergeComplete
)

// QuantityInfo is everything the exporter says of one quantity, in one
// place: the metric families that expose it, the report column that
// totals it, how values merge, and how a record holds it.
type QuantityInfo struct {
	Quantity Quantity
	// Name names the quantity in messages and tests.
	Name string
	// Family is the data family's name without the namespace; its
	// history family is "history_" + Family.
	Family string
	// Help is the family's HELP text, without the month it describes.
	Help string
	// Scoped families carry the scope label.
	Scoped bool
	// Column is the report column's name in CSV and Markdown; "" for the
	// emissions columns, whose names carry the report's unit.
	Column string
	Merge  Merge
	// MayBeNegative allows values below zero (cost net of credits); for
	// the others a negative value is not a measurement and is dropped.
	MayBeNegative bool
	// Value points at the record's field holding the quantity.
	Value func(r *Record) *float64
}

// Quantities returns the quantities a record may carry, in the order the
// exposition and reports list them.
func Quantities() []QuantityInfo {
	return []QuantityInfo{
		{
			Quantity: Emissions, Name: "location-based emissions", Family: "emissions_grams", Scoped: true,
			Help:  "Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods).",
			Value: func(r *Record) *float64 { return &r.EmissionsGrams },
		},
		{
			Quantity: EmissionsMarketBased, Name: "market-based emissions", Family: "emissions_market_based_grams", Scoped: true,
			Help:  "Market-based greenhouse gas emissions reported by the provider, in grams of CO2e, all scopes.",
			Merge: MergeComplete,
			Value: func(r *Record) *float64 { return &r.MarketBasedGrams },
		},
		{
			Quantity: Energy, Name: "energy", Family: "energy_joules", Column: "energy_kwh",
			Help:  "Energy consumption reported by the provider, in joules.",
			Value: func(r *Record) *float64 { return &r.EnergyJoules },
		},
		{
			Quantity: Water, Name: "water", Family: "water_cubic_meters", Column: "water_m3",
			Help:  "Water reported by the provider for the month, in cubic metres (Scaleway: water usage).",
			Value: func(r *Record) *float64 { return &r.WaterCubicMeters },
		},
		{
			Quantity: Cost, Name: "cost", Family: "billing_cost_usd", Column: "cost_usd", MayBeNegative: true,
			Help:  "Billing cost net of credits for the same month as the emissions, in US dollars.",
			Value: func(r *Record) *float64 { return &r.CostUSD },
		},
	}
}

// Value returns the record's value of q, 0 when q is not a single
// quantity.
func (r *Record) Value(q Quantity) float64 {
	for _, qi := range Quantities() {
		if qi.Quantity == q {
			return *qi.Value(r)
		}
	}
	return 0
}

// Published reports whether a month whose records carry known counts as
// published, for a source whose months carry reports over all: any
// quantity other than cost publishes a month, and cost does only for a
// source that reports nothing else. A billing export holds a month's cost
// days before the carbon export holds its emissions, so cost next to
// emissions elsewhere does not mean the month has landed.
func Published(known, reports Quantity) bool {
	if known&^Cost != 0 {
		return true
	}
	return known&Cost != 0 && reports&^Cost == 0
}

// Sanitize applies the one policy for values that are not measurements,
// the same for every cloud: a value that is not a finite number, or that
// is negative where the quantity cannot be (every one but cost), is
// dropped from the record, which then no longer carries that quantity; a
// value that is not known is absent, never zero. The refresher counts and
// logs what it drops, so that the gap is seen, while the rest of the
// provider's answer is served. It returns the quantities it dropped for
// each cause.
func (r *Record) Sanitize() (notFinite, negative Quantity) {
	for _, qi := range Quantities() {
		if !r.Has(qi.Quantity) {
			continue
		}
		switch v := *qi.Value(r); {
		case math.IsNaN(v) || math.IsInf(v, 0):
			notFinite |= qi.Quantity
		case v < 0 && !qi.MayBeNegative:
			negative |= qi.Quantity
		default:
			continue
		}
		*qi.Value(r) = 0
		r.Known &^= qi.Quantity
	}
	return notFinite, negative
}

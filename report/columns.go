package report

import (
	"cmp"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// column is a Column with what it takes to sum and print it.
type column struct {
	Column
	// q is the quantity summed; zero for yearly water.
	q      provider.QuantityInfo
	yearly bool
	// scale divides the base unit (grams, joules) into the column's.
	scale    float64
	dec      int
	humanDec int
}

// unitGrams is the grams in one unit of emissions.
var unitGrams = map[string]float64{UnitTonnes: 1e6, UnitKilograms: 1e3, UnitGrams: 1}

// decimals of emissions in CSV and JSON, and in Markdown.
var (
	emissionDecimals = map[string]int{UnitTonnes: 6, UnitKilograms: 3, UnitGrams: 0}
	humanEmissions   = map[string]int{UnitTonnes: 3, UnitKilograms: 1, UnitGrams: 0}
)

const (
	otherDecimals = 6
	joulesPerKWh  = 3.6e6
)

// Keys of the emissions columns, whose CSV headers carry the unit.
const (
	KeyLocationBased = "location_based_co2e"
	KeyMarketBased   = "market_based_co2e"
)

// unspecifiedWater is the measure of water from a cloud that declares
// none.
const unspecifiedWater = "unspecified"

// waterKinds are the water measures the data holds, monthly and yearly.
type waterKinds struct{ monthly, yearly []string }

// columns returns the report's columns: one per quantity of the quantity
// table, in its order, but for water, which gets one per measure held
// monthly followed by one per measure held per calendar year, so that
// figures of different measures or granularities are never added.
func columns(unit string, water waterKinds) []column {
	var cols []column
	for _, qi := range provider.Quantities() {
		c := column{q: qi, scale: 1, dec: otherDecimals, humanDec: 2}
		c.Key, c.Header, c.Unit, c.Quantity = cmp.Or(qi.Column, qi.Family), cmp.Or(qi.Column, qi.Family), "", qi.Name
		c.Title = strings.ToUpper(c.Key[:1]) + strings.ReplaceAll(c.Key[1:], "_", " ")
		switch qi.Quantity {
		case provider.Emissions, provider.EmissionsMarketBased:
			method, title := "location_based", "Location-based"
			if qi.Quantity == provider.EmissionsMarketBased {
				method, title = "market_based", "Market-based"
			}
			c.Key, c.Header, c.Title, c.Unit = method+"_co2e", method+"_"+unit+"co2e", title+" "+unit+" CO2e", unit+" CO2e"
			c.scale, c.dec, c.humanDec = unitGrams[unit], emissionDecimals[unit], humanEmissions[unit]
		case provider.Energy:
			c.Title, c.Unit, c.scale, c.humanDec = "Energy kWh", "kWh", joulesPerKWh, 1
		case provider.Cost:
			c.Title, c.Unit = "Cost USD", "USD"
		case provider.Water:
			cols = append(cols, waterColumns(qi, water)...)
			continue
		}
		cols = append(cols, c)
	}
	return cols
}

// waterColumns are the columns of the water quantity qi, one per measure
// and granularity held.
func waterColumns(qi provider.QuantityInfo, water waterKinds) []column {
	var cols []column
	add := func(measure string, yearly bool) {
		c := column{q: qi, yearly: yearly, scale: 1, dec: otherDecimals, humanDec: 3}
		c.Unit, c.Water, c.Quantity, c.Granularity = "m3", measure, qi.Name, Monthly
		c.Key = strings.Replace(cmp.Or(qi.Column, "water_m3"), "water_", "water_"+measure+"_", 1)
		c.Title = "Water " + measure + " m³"
		if yearly {
			c.q = provider.QuantityInfo{Name: YearlyWater}
			c.Quantity, c.Granularity = YearlyWater, CalendarYear
			c.Key = strings.TrimSuffix(c.Key, "_m3") + "_calendar_year_m3"
			c.Title += " (calendar year)"
		}
		c.Header = c.Key
		cols = append(cols, c)
	}
	for _, w := range water.monthly {
		add(w, false)
	}
	for _, w := range water.yearly {
		add(w, true)
	}
	return cols
}

// index returns the position of the column of quantity q, -1 if none.
func index(cols []column, q provider.Quantity) int {
	return slices.IndexFunc(cols, func(c column) bool { return !c.yearly && c.q.Quantity == q })
}

// publicColumns returns the columns as the report lists them.
func publicColumns(cols []column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = c.Column
	}
	return out
}

// Has reports whether row carries a figure of quantity q, in any of its
// columns.
func (r *Report) Has(row *Row, q provider.Quantity) bool {
	for _, qi := range provider.Quantities() {
		if qi.Quantity != q {
			continue
		}
		for _, c := range r.Columns {
			if c.Quantity == qi.Name && row.Values[c.Key] != nil {
				return true
			}
		}
	}
	return false
}

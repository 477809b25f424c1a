package ocifake

import (
	"math"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Allocation is what an exporter allocates a month's emissions by: the
// tag (Namespace and Key as the Usage API names it, FreeformNamespace
// for a free-form tag), the calculation method (PowerBased or
// SpendBased), the compartment depth both queries are grouped at, and
// how many values are kept before the rest is folded.
type Allocation struct {
	Namespace, Key string
	Method         string
	Depth          int
	Top            int
}

// ReferenceAllocation is what an exporter must allocate to each value of
// a.Namespace.a.Key in month m: fakehttp's reference, worked out row by
// row from the fake's own rows and costs, labelled as the fake's answers
// label them (the compartment path cut at a.Depth, the service, the
// region in lower case, as the provider keys both feeds), in grams. The
// Usage API groups cost by the tag together with all three labels, so
// the tag rows have the carbon rows' full granularity. Power-based
// calculations give location- and market-based figures and leave out
// the spend-only services; spend-based ones give market-based figures
// only, so their location-based grams are NaN.
func (d Dataset) ReferenceAllocation(m provider.Month, a Allocation) []fakehttp.Allocated {
	var carbon []fakehttp.CarbonRow
	for _, r := range d.Rows {
		if r.Month != m {
			continue
		}
		grams, market := math.NaN(), math.NaN()
		if v, ok := r.value(a.Method, LocationBased); ok {
			grams = v * gramsPerMetricTon
		}
		if v, ok := r.value(a.Method, MarketBased); ok {
			market = v * gramsPerMetricTon
		}
		if math.IsNaN(grams) && math.IsNaN(market) {
			continue // the method leaves the row out
		}
		account, service, location := allocationCell(r.CompartmentPath, r.Service, r.Region, a.Depth)
		// OCI does not split its figures by GHG scope.
		carbon = append(carbon, fakehttp.CarbonRow{Account: account, Service: service, Location: location,
			Scope: string(provider.ScopeUnspecified), Month: m, Grams: grams, Market: market})
	}
	var tags []fakehttp.TagRow
	for _, c := range d.Costs {
		if c.Month != m {
			continue
		}
		account, service, location := allocationCell(c.CompartmentPath, c.Service, c.Region, a.Depth)
		for value, cost := range c.values(a.Namespace, a.Key) {
			tags = append(tags, fakehttp.TagRow{Account: account, Service: service, Location: location, Value: value, Month: m, Weight: cost})
		}
	}
	return fakehttp.ReferenceAllocation(carbon, tags, a.Top)
}

// allocationCell labels a row as the fake's answers at compartment depth
// depth do, and as a client keying emissions and cost alike must: the
// path cut at depth, and the region in lower case, as OCI's region
// identifiers are. The fake's rows always name a compartment, a service
// and a region, so no placeholder is needed.
func allocationCell(path, service, region string, depth int) (account, svc, location string) {
	return truncatePath(path, depth), service, strings.ToLower(region)
}

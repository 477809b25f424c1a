package exposition

import (
	"slices"
	"strconv"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provisional"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// provisionalDefs are the families of the estimates of months the
// providers have not published yet, and of their error.
type provisionalDefs struct {
	grams, market, backtest, backtestMonths, realized *def
	costSuccess, costLastSuccess                      *def
}

func newProvisionalDefs() provisionalDefs {
	labels := []string{"provider", "account", "service", "location", "scope", "month", "basis", "months_ahead"}
	source := []string{"provider", "source", "method"}
	return provisionalDefs{
		grams: newDef("provisional_emissions_grams",
			"Estimated emissions of a month the provider has not published yet, in grams of CO2e: the month's cost (to date for the current month) times the emissions per dollar of the latest published month with both, matched at basis (location, service, account or source). Never in the data or history families; gone once the provider publishes the month.",
			labels...),
		market: newDef("provisional_emissions_market_based_grams",
			"Estimated market-based emissions of a month the provider has not published yet, in grams of CO2e, as cloudcarbon_provisional_emissions_grams.",
			labels...),
		backtest: newDef("provisional_backtest_error_ratio",
			"Mean absolute error of the estimates the source would have served for its last published months (each estimated from the emissions per dollar one publication lag earlier), relative to what was published; 0.1 is 10%.",
			source...),
		backtestMonths: newDef("provisional_backtest_months",
			"Published months the backtest of cloudcarbon_provisional_backtest_error_ratio estimated.", source...),
		realized: newDef("provisional_realized_error_ratio",
			"Error of the estimate served for a month that the provider has since published: (estimated - published) / published.",
			"provider", "source", "method", "month"),
		costSuccess: newDef("cost_refresh_success",
			"Whether the latest read of the source's cost, for provisional months, succeeded (1) or failed (0).", "provider", "source"),
		costLastSuccess: newDef("cost_last_refresh_success_timestamp_seconds",
			"When the source's cost, for provisional months, was last read successfully, as a Unix timestamp.", "provider", "source"),
	}
}

// methods label the two methods in the error families.
var methods = [2]string{"location", "market"}

// collectProvisional adds the estimates of source d and their error to c,
// and returns the estimates.
// lag is the provider's publication lag in months (provisional.Lag).
func (p *provisionalDefs) collectProvisional(c *collection, d *store.SourceData, lag int) []provisional.Estimate {
	if len(d.Costs) == 0 {
		return nil
	}
	latest, ok := d.LatestMonth()
	if !ok {
		return nil
	}
	published, costs := d.CostInputs()
	estimates := provisional.Estimates(published, costs)
	for _, e := range estimates {
		values := []string{d.Provider, e.Account, e.Service, e.Location, string(e.Scope), e.Month.String(), string(e.Basis),
			strconv.Itoa(int(e.Month - latest))}
		if e.Known&provider.Emissions != 0 {
			c.add(p.grams, e.Grams, slices.Clone(values)...)
		}
		if e.Known&provider.EmissionsMarketBased != 0 {
			c.add(p.market, e.MarketBasedGrams, values...)
		}
	}
	mean, months := provisional.MeanAbsolute(provisional.Backtest(published, costs, lag, provisional.BacktestMonths))
	for j, method := range methods {
		if months[j] > 0 {
			c.add(p.backtest, mean[j], d.Provider, d.Name, method)
			c.add(p.backtestMonths, float64(months[j]), d.Provider, d.Name, method)
		}
	}
	for _, r := range d.Realized {
		for j, q := range []provider.Quantity{provider.Emissions, provider.EmissionsMarketBased} {
			if r.Known&q != 0 && r.Published[j] != 0 {
				c.add(p.realized, (r.Estimated[j]-r.Published[j])/r.Published[j], d.Provider, d.Name, methods[j], r.Month.String())
			}
		}
	}
	return estimates
}

// freshness adds the cost feed's freshness of d to c.
func (p *provisionalDefs) freshness(c *collection, d *store.SourceData) {
	if !d.CostAttempt.IsZero() {
		c.add(p.costSuccess, b2f(d.CostOK), d.Provider, d.Name)
	}
	if !d.CostSuccess.IsZero() {
		c.add(p.costLastSuccess, float64(d.CostSuccess.UnixMilli())/1e3, d.Provider, d.Name)
	}
}

// lagOf returns the publication lag of a provider, in months.
func (e *Exposition) lagOf(prov string) int {
	if s, ok := e.schedules[prov]; ok {
		return provisional.Lag(s)
	}
	return provisional.Lag(provider.Schedule{})
}

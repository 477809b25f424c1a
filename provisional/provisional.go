// Package provisional estimates the emissions of the months a provider has
// not published yet from their cost, which providers publish daily: the
// published emissions per dollar of a month that has both (its intensity),
// times the cost of the month to estimate. It measures how good such an
// estimate would have been on the source's own published months (the
// backtest). It is a pure function of one source's months: no clock, no
// state, no cloud.
package provisional

import (
	"cmp"
	"maps"
	"math"
	"slices"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Basis says at which level an estimate's intensity was matched: the
// finest level at which the month of the intensity had both emissions and
// cost.
type Basis string

// Bases, finest first. A new region of a known service falls back to the
// service's intensity in the account, a new service to the account's, a
// new account to the source's.
const (
	BasisLocation Basis = "location"
	BasisService  Basis = "service"
	BasisAccount  Basis = "account"
	BasisSource   Basis = "source"
)

// Bases returns every basis, finest first.
func Bases() []Basis { return []Basis{BasisLocation, BasisService, BasisAccount, BasisSource} }

// Unmatched is the service or location label of an estimate whose cost
// came without one (a provider that bills per account only): the estimate
// covers the whole account.
const Unmatched = "all"

// key is one level's grouping of a record.
type key struct {
	account, service, location string
}

// keyAt returns r's key at basis b.
func keyAt(r *provider.Record, b Basis) key {
	switch b {
	case BasisLocation:
		return key{r.Account, r.Service, r.Location}
	case BasisService:
		return key{account: r.Account, service: r.Service}
	case BasisAccount:
		return key{account: r.Account}
	}
	return key{}
}

// Estimate is the estimated emissions of one month of one series.
type Estimate struct {
	Account, Service, Location string
	Scope                      provider.Scope
	Month                      provider.Month
	Basis                      Basis
	// Grams and MarketBasedGrams are the estimates of the two methods;
	// Known says which the intensity month had.
	Grams, MarketBasedGrams float64
	Known                   provider.Quantity
}

// Months are one source's records by month.
type Months map[provider.Month][]provider.Record

// intensity is the grams per dollar of one key, per scope and method, in
// the latest month that had both emissions and cost for the key.
type intensity struct {
	month provider.Month
	cost  float64
	grams map[provider.Scope][2]float64 // location-, market-based
	known map[provider.Scope]provider.Quantity
}

// table holds the intensities of every key at every basis, taken from
// the published months up to a month.
type table map[Basis]map[key]*intensity

// newTable returns the intensities of published (emissions) and costs
// (cost of the same months) from the months up to and including last.
// The latest month with both wins for each key.
func newTable(published, costs Months, last provider.Month) table {
	t := table{}
	for _, b := range Bases() {
		t[b] = map[key]*intensity{}
	}
	months := slices.Sorted(maps.Keys(published))
	for i := len(months) - 1; i >= 0; i-- {
		m := months[i]
		if m > last {
			continue
		}
		for _, b := range Bases() {
			t.add(b, m, published[m], costs[m])
		}
	}
	return t
}

// add takes month m's intensities at basis b for the keys that have none
// from a later month.
func (t table) add(b Basis, m provider.Month, emissions, costs []provider.Record) {
	cost := map[key]float64{}
	for i := range costs {
		if costs[i].Has(provider.Cost) {
			cost[keyAt(&costs[i], b)] += costs[i].CostUSD
		}
	}
	found := map[key]*intensity{}
	for i := range emissions {
		r := &emissions[i]
		if !r.Has(provider.Emissions | provider.EmissionsMarketBased) {
			continue
		}
		k := keyAt(r, b)
		if _, held := t[b][k]; held || cost[k] <= 0 {
			continue
		}
		in := found[k]
		if in == nil {
			in = &intensity{month: m, cost: cost[k], grams: map[provider.Scope][2]float64{}, known: map[provider.Scope]provider.Quantity{}}
			found[k] = in
		}
		g, seen := in.grams[r.Scope]
		if r.Has(provider.Emissions) {
			g[0] += r.EmissionsGrams
		}
		if r.Has(provider.EmissionsMarketBased) {
			g[1] += r.MarketBasedGrams
		}
		in.grams[r.Scope] = g
		// A method counts only where every record of the key has it:
		// the cost covers them all, and a sum over some of them would
		// read as an intensity of all (MergeComplete).
		methods := r.Known & (provider.Emissions | provider.EmissionsMarketBased)
		if seen {
			methods &= in.known[r.Scope]
		}
		in.known[r.Scope] = methods
	}
	maps.Copy(t[b], found)
}

// match returns the finest intensity for a cost record. A record
// without a service (or location) is matched no finer than its account
// (or service): its cost is the whole of the coarser key's.
func (t table) match(r *provider.Record) (*intensity, Basis) {
	for _, b := range Bases() {
		switch {
		case b == BasisLocation && (r.Service == "" || r.Location == ""):
			continue
		case b == BasisService && r.Service == "":
			continue
		}
		if in := t[b][keyAt(r, b)]; in != nil {
			return in, b
		}
	}
	return nil, ""
}

// Estimates returns the estimates of the months of costs after the
// latest published month, from the intensities of the published months.
// Equal labels are summed; estimates are sorted by month, account,
// service, location and scope.
func Estimates(published, costs Months) []Estimate {
	latest, ok := latestOf(published)
	if !ok {
		return nil
	}
	t := newTable(published, costs, latest)
	var out []Estimate
	for m, recs := range costs {
		if m > latest {
			out = append(out, estimate(t, m, recs)...)
		}
	}
	return merge(out)
}

// estimate returns month m's estimates from the cost records recs.
func estimate(t table, m provider.Month, recs []provider.Record) []Estimate {
	var out []Estimate
	for i := range recs {
		r := &recs[i]
		if !r.Has(provider.Cost) || r.CostUSD == 0 {
			continue
		}
		in, basis := t.match(r)
		if in == nil {
			continue
		}
		for scope, g := range in.grams {
			e := Estimate{Account: r.Account, Service: cmp.Or(r.Service, Unmatched), Location: cmp.Or(r.Location, Unmatched),
				Scope: scope, Month: m, Basis: basis, Known: in.known[scope]}
			if e.Known == 0 {
				continue
			}
			if e.Known&provider.Emissions != 0 {
				e.Grams = r.CostUSD * g[0] / in.cost
			}
			if e.Known&provider.EmissionsMarketBased != 0 {
				e.MarketBasedGrams = r.CostUSD * g[1] / in.cost
			}
			out = append(out, e)
		}
	}
	return out
}

// merge sums estimates with equal labels and sorts them.
func merge(es []Estimate) []Estimate {
	slices.SortFunc(es, func(a, b Estimate) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Location, b.Location), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.Basis, b.Basis))
	})
	out := es[:0]
	for _, e := range es {
		if n := len(out); n > 0 && sameSeries(out[n-1], e) {
			out[n-1].Grams += e.Grams
			out[n-1].MarketBasedGrams += e.MarketBasedGrams
			out[n-1].Known |= e.Known
			continue
		}
		out = append(out, e)
	}
	return out
}

func sameSeries(a, b Estimate) bool {
	return a.Month == b.Month && a.Account == b.Account && a.Service == b.Service && a.Location == b.Location &&
		a.Scope == b.Scope && a.Basis == b.Basis
}

// latestOf returns the latest month of published that holds emissions.
func latestOf(published Months) (provider.Month, bool) {
	var latest provider.Month
	found := false
	for m, recs := range published {
		for i := range recs {
			if recs[i].Has(provider.Emissions|provider.EmissionsMarketBased) && (!found || m > latest) {
				latest, found = m, true
				break
			}
		}
	}
	return latest, found
}

// Totals sums estimates per method: location-based (0) and market-based
// (1), each only over the estimates that carry it.
func Totals(es []Estimate) (sums [2]float64, known provider.Quantity) {
	for _, e := range es {
		if e.Known&provider.Emissions != 0 {
			sums[0] += e.Grams
		}
		if e.Known&provider.EmissionsMarketBased != 0 {
			sums[1] += e.MarketBasedGrams
		}
		known |= e.Known
	}
	return sums, known
}

// Error is how far an estimate of a month was from what the provider then
// published, relative to the published figure, per method.
type Error struct {
	Month provider.Month
	// Ratio is (estimated - published) / published, per method; NaN
	// where the method has no published figure.
	Ratio [2]float64
}

// Backtest estimates each of the last n published months from the
// intensities of the published months at least lag months before it
// (what the exporter would have served before the month was published)
// and the month's own cost, and returns how far each estimate was from
// the published figure. Months without cost, or without an earlier
// intensity, are left out.
func Backtest(published, costs Months, lag, n int) []Error {
	months := slices.Sorted(maps.Keys(published))
	var out []Error
	for i := len(months) - 1; i >= 0 && len(out) < n; i-- {
		m := months[i]
		if len(costs[m]) == 0 {
			continue
		}
		t := newTable(published, costs, m-provider.Month(lag))
		est, known := Totals(merge(estimate(t, m, costs[m])))
		actual, actualKnown := PublishedTotals(published[m])
		e := Error{Month: m, Ratio: [2]float64{math.NaN(), math.NaN()}}
		for j, q := range []provider.Quantity{provider.Emissions, provider.EmissionsMarketBased} {
			if known&q != 0 && actualKnown&q != 0 && actual[j] != 0 {
				e.Ratio[j] = (est[j] - actual[j]) / actual[j]
			}
		}
		if !math.IsNaN(e.Ratio[0]) || !math.IsNaN(e.Ratio[1]) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Error) int { return cmp.Compare(a.Month, b.Month) })
	return out
}

// PublishedTotals sums a published month's emissions per method.
func PublishedTotals(recs []provider.Record) (sums [2]float64, known provider.Quantity) {
	for i := range recs {
		if recs[i].Has(provider.Emissions) {
			sums[0] += recs[i].EmissionsGrams
		}
		if recs[i].Has(provider.EmissionsMarketBased) {
			sums[1] += recs[i].MarketBasedGrams
		}
		known |= recs[i].Known
	}
	return sums, known
}

// MeanAbsolute returns the mean of the absolute error ratios per method,
// over the months that have one, and how many months that is.
func MeanAbsolute(errs []Error) (mean [2]float64, months [2]int) {
	for _, e := range errs {
		for j, r := range e.Ratio {
			if !math.IsNaN(r) {
				mean[j] += math.Abs(r)
				months[j]++
			}
		}
	}
	for j := range mean {
		if months[j] > 0 {
			mean[j] /= float64(months[j])
		}
	}
	return mean, months
}

// BacktestMonths is how many published months the backtest estimates.
const BacktestMonths = 6

// Of returns the estimates of month m.
func Of(es []Estimate, m provider.Month) []Estimate {
	var out []Estimate
	for _, e := range es {
		if e.Month == m {
			out = append(out, e)
		}
	}
	return out
}

// Lag returns the publication lag of schedule s in months: how many
// months before the one in progress the latest published month is, at
// worst. An estimate of a month is made from the intensity of the month
// that many months earlier.
func Lag(s provider.Schedule) int {
	const month = 30 * 24 * 3600 * 1e9
	return 1 + int(math.Ceil(float64(s.PublishDelay)/month))
}

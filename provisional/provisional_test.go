package provisional

import (
	"math"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

var (
	jan = provider.NewMonth(2026, time.January)
	feb = jan + 1
	mar = jan + 2
	apr = jan + 3
)

func emissions(m provider.Month, account, service, location string, scope provider.Scope, grams, market float64) provider.Record {
	r := provider.Record{Provider: "x", Account: account, Service: service, Location: location, Scope: scope, Month: m,
		EmissionsGrams: grams, Known: provider.Emissions}
	if market >= 0 {
		r.MarketBasedGrams, r.Known = market, r.Known|provider.EmissionsMarketBased
	}
	return r
}

func cost(m provider.Month, account, service, location string, usd float64) provider.Record {
	return provider.Record{Provider: "x", Account: account, Service: service, Location: location, Month: m, CostUSD: usd, Known: provider.Cost}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// TestEstimates: every basis, worked by hand. February is the latest
// month with both emissions and cost; January's intensities serve keys
// February lacks.
func TestEstimates(t *testing.T) {
	published := Months{
		jan: {emissions(jan, "a", "vm", "eu", provider.Scope2, 1000, 400), emissions(jan, "a", "db", "us", provider.Scope2, 300, -1)},
		feb: {emissions(feb, "a", "vm", "eu", provider.Scope2, 1200, 600), emissions(feb, "a", "vm", "eu", provider.Scope3, 240, 250),
			emissions(feb, "b", "vm", "us", provider.Scope2, 500, -1)},
	}
	costs := Months{
		jan: {cost(jan, "a", "vm", "eu", 100), cost(jan, "a", "db", "us", 30)},
		feb: {cost(feb, "a", "vm", "eu", 120), cost(feb, "b", "vm", "us", 50)},
		mar: {
			cost(mar, "a", "vm", "eu", 60), // location: feb, 10 g/$ scope 2, 2 g/$ scope 3
			cost(mar, "a", "db", "us", 15), // location: jan, 10 g/$ (no feb cost for it)
			cost(mar, "a", "vm", "us", 12), // new region: service a/vm in feb, 1440 g / 120 $
			cost(mar, "a", "fn", "eu", 10), // new service: account a in feb: 1440 g over 120 $
			cost(mar, "c", "vm", "eu", 20), // new account: the source in feb: 1940 g over 170 $
			cost(mar, "b", "", "", 25),     // account-level cost: account b, 10 g/$
		},
		apr: {cost(apr, "a", "vm", "eu", 6)},
	}
	got := Estimates(published, costs)
	type want struct {
		account, service, location string
		scope                      provider.Scope
		month                      provider.Month
		basis                      Basis
		grams, market              float64
		known                      provider.Quantity
	}
	both := provider.Emissions | provider.EmissionsMarketBased
	wants := []want{
		{"a", "db", "us", provider.Scope2, mar, BasisLocation, 150, 0, provider.Emissions},
		{"a", "fn", "eu", provider.Scope2, mar, BasisAccount, 100, 50, both},
		{"a", "fn", "eu", provider.Scope3, mar, BasisAccount, 20, 250.0 / 12, both},
		{"a", "vm", "eu", provider.Scope2, mar, BasisLocation, 600, 300, both},
		{"a", "vm", "eu", provider.Scope3, mar, BasisLocation, 120, 125, both},
		{"a", "vm", "us", provider.Scope2, mar, BasisService, 120, 60, both},
		{"a", "vm", "us", provider.Scope3, mar, BasisService, 24, 25, both},
		{"b", Unmatched, Unmatched, provider.Scope2, mar, BasisAccount, 250, 0, provider.Emissions},
		// b has no market-based figure: the source's scope 2 has none.
		{"c", "vm", "eu", provider.Scope2, mar, BasisSource, 20 * 1700.0 / 170, 0, provider.Emissions},
		{"c", "vm", "eu", provider.Scope3, mar, BasisSource, 20 * 240.0 / 170, 20 * 250.0 / 170, both},
		{"a", "vm", "eu", provider.Scope2, apr, BasisLocation, 60, 30, both},
		{"a", "vm", "eu", provider.Scope3, apr, BasisLocation, 12, 12.5, both},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d estimates, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Account != w.account || g.Service != w.service || g.Location != w.location || g.Scope != w.scope ||
			g.Month != w.month || g.Basis != w.basis || g.Known != w.known || !near(g.Grams, w.grams) || !near(g.MarketBasedGrams, w.market) {
			t.Errorf("estimate %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestNothingBeforeTheLatestPublishedMonth: cost of published months
// gives intensities, never estimates.
func TestNothingBeforeTheLatestPublishedMonth(t *testing.T) {
	published := Months{feb: {emissions(feb, "a", "vm", "eu", provider.Scope2, 100, -1)}}
	costs := Months{jan: {cost(jan, "a", "vm", "eu", 5)}, feb: {cost(feb, "a", "vm", "eu", 10)}}
	if got := Estimates(published, costs); len(got) != 0 {
		t.Errorf("estimates %+v of published months", got)
	}
	if got := Estimates(nil, costs); got != nil {
		t.Errorf("estimates %+v without a published month", got)
	}
}

// TestBacktest: each month is estimated from the intensity lag months
// before it and compared with what was published.
func TestBacktest(t *testing.T) {
	published := Months{
		jan: {emissions(jan, "a", "vm", "eu", provider.Scope2, 1000, 500)},
		feb: {emissions(feb, "a", "vm", "eu", provider.Scope2, 1100, -1)},
		mar: {emissions(mar, "a", "vm", "eu", provider.Scope2, 1320, 660)},
	}
	costs := Months{
		jan: {cost(jan, "a", "vm", "eu", 100)},
		feb: {cost(feb, "a", "vm", "eu", 100)},
		mar: {cost(mar, "a", "vm", "eu", 120)},
	}
	got := Backtest(published, costs, 2, 6)
	// March from January (10 g/$, 5 g/$): 1200 against 1320, 600 against
	// 660. February from nothing two months before: left out.
	if len(got) != 1 || got[0].Month != mar || !near(got[0].Ratio[0], -120.0/1320) || !near(got[0].Ratio[1], -60.0/660) {
		t.Fatalf("Backtest = %+v", got)
	}
	mean, n := MeanAbsolute(got)
	if n != [2]int{1, 1} || !near(mean[0], 120.0/1320) {
		t.Errorf("MeanAbsolute = %v over %v", mean, n)
	}
	if got := Backtest(published, costs, 1, 1); len(got) != 1 || got[0].Month != mar || !math.IsNaN(got[0].Ratio[1]) {
		t.Errorf("Backtest(lag 1, one month) = %+v: March from February, which has no market-based figure", got)
	}
}

func TestLag(t *testing.T) {
	for _, tt := range []struct {
		delay time.Duration
		want  int
	}{{0, 1}, {15 * 24 * time.Hour, 2}, {19 * 24 * time.Hour, 2}, {45 * 24 * time.Hour, 3}} {
		if got := Lag(provider.Schedule{PublishDelay: tt.delay}); got != tt.want {
			t.Errorf("Lag(%s) = %d, want %d", tt.delay, got, tt.want)
		}
	}
}

package fakehttp

import (
	"math"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// TestReferenceEstimates works one dataset by hand: each basis, a method
// missing from part of a match, an account-level cost.
func TestReferenceEstimates(t *testing.T) {
	jan := provider.NewMonth(2026, time.January)
	feb, mar := jan+1, jan+2
	nan := math.NaN()
	carbon := []CarbonRow{
		{"a", "vm", "eu", "2", jan, 1000, 400}, {"a", "db", "us", "2", jan, 300, nan},
		{"a", "vm", "eu", "2", feb, 1200, 600}, {"a", "vm", "eu", "3", feb, 240, 250}, {"b", "vm", "us", "2", feb, 500, nan},
	}
	cost := []CostRow{
		{"a", "vm", "eu", jan, 100}, {"a", "db", "us", jan, 30}, {"a", "vm", "eu", feb, 120}, {"b", "vm", "us", feb, 50},
		{"a", "db", "us", mar, 15}, {"a", "vm", "us", mar, 12}, {"c", "vm", "eu", mar, 20}, {"b", "", "", mar, 25},
	}
	want := []Estimated{
		{"a", "db", "us", "2", "location", mar, 150, nan},
		{"a", "vm", "us", "2", "service", mar, 120, 60},
		{"a", "vm", "us", "3", "service", mar, 24, 25},
		{"b", "all", "all", "2", "account", mar, 250, nan},
		{"c", "vm", "eu", "2", "source", mar, 200, nan},
		{"c", "vm", "eu", "3", "source", mar, 20 * 240.0 / 170, 20 * 250.0 / 170},
	}
	got := ReferenceEstimates(carbon, cost)
	if len(got) != len(want) {
		t.Fatalf("%d estimates, want %d: %+v", len(got), len(want), got)
	}
	same := func(a, b float64) bool {
		return math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
	}
	for i, w := range want {
		g := got[i]
		if g.Account != w.Account || g.Service != w.Service || g.Location != w.Location || g.Scope != w.Scope ||
			g.Basis != w.Basis || g.Month != w.Month || !same(g.Grams, w.Grams) || !same(g.Market, w.Market) {
			t.Errorf("estimate %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestReferenceBacktest: March from January's grams per dollar, two
// months before it; February has nothing two months before.
func TestReferenceBacktest(t *testing.T) {
	jan := provider.NewMonth(2026, time.January)
	feb, mar := jan+1, jan+2
	carbon := []CarbonRow{{"a", "vm", "eu", "2", jan, 1000, 500}, {"a", "vm", "eu", "2", feb, 1100, math.NaN()}, {"a", "vm", "eu", "2", mar, 1320, 660}}
	cost := []CostRow{{"a", "vm", "eu", jan, 100}, {"a", "vm", "eu", feb, 100}, {"a", "vm", "eu", mar, 120}}
	months, ratios := ReferenceBacktest(carbon, cost, 2, 6)
	if len(months) != 1 || months[0] != mar || math.Abs(ratios[0][0]+120.0/1320) > 1e-12 || math.Abs(ratios[0][1]+60.0/660) > 1e-12 {
		t.Errorf("ReferenceBacktest = %v %v", months, ratios)
	}
}

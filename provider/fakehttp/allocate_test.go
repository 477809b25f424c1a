package fakehttp

import (
	"math"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

func TestReferenceAllocation(t *testing.T) {
	const m = provider.Month(24300)
	nan := math.NaN()
	carbon := []CarbonRow{
		{Account: "a", Service: "vm", Location: "eu", Month: m, Grams: 100, Market: 10},
		{Account: "a", Service: "vm", Location: "us", Month: m, Grams: 40, Market: nan}, // no cost in the cell: the service's
		{Account: "a", Service: "db", Location: "eu", Month: m, Grams: 30, Market: nan}, // no cost for the service: the account's
		{Account: "b", Service: "vm", Location: "eu", Month: m, Grams: 7, Market: nan},  // no cost in the account: untagged
	}
	tags := []TagRow{
		{Account: "a", Service: "vm", Location: "eu", Value: "web", Month: m, Weight: 3},
		{Account: "a", Service: "vm", Location: "eu", Value: "", Month: m, Weight: 1},
		{Account: "a", Service: "vm", Location: "ap", Value: "data", Month: m, Weight: 4},
		{Account: "a", Service: "vm", Location: "ap", Value: "tiny", Month: m, Weight: 0.5},
		{Account: "a", Service: "vm", Location: "ap", Value: "promo", Month: m, Weight: -2},
	}
	got := map[string][2]float64{}
	for _, a := range ReferenceAllocation(carbon, tags, 2) {
		got[a.Value] = [2]float64{a.Grams, a.Market}
	}
	// The top two by weight are data (4) and web (3); tiny and promo
	// fold into (other), whose weight is then -1.5: no share.
	// vm/eu: web 75, untagged 25 (market 7.5, 2.5). vm/us, by the
	// service (web 3, untagged 1, data 4): 15, 5, 20. db/eu, by the
	// account: the same shares of 30: 11.25, 3.75, 15. b: untagged 7.
	want := map[string][2]float64{
		"web": {75 + 15 + 11.25, 7.5}, "(untagged)": {25 + 5 + 3.75 + 7, 2.5}, "data": {20 + 15, nan},
	}
	if len(got) != len(want) {
		t.Fatalf("values %v, want %v", got, want)
	}
	for v, w := range want {
		for j := range 2 {
			g := got[v][j]
			if math.IsNaN(w[j]) != math.IsNaN(g) || !math.IsNaN(w[j]) && math.Abs(g-w[j]) > 1e-9 {
				t.Errorf("%s[%d]: %v, want %v", v, j, g, w[j])
			}
		}
	}
}

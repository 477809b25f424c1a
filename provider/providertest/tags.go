package providertest

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// UnknownTagKey is a key no fake tags anything with.
const UnknownTagKey = "cloudcarbon-no-such-key"

// ValueTotals are sums of a tag feed's weight per month and value, ""
// for weight without the tag.
type ValueTotals map[provider.Month]map[string]float64

// runTagFeed runs the scenarios of the tag feed: the cloud's real client,
// built from an entry that sets allocate_by, reads the weight of each tag
// value through the same HTTP layer, bounds and failure classification as
// the rest.
func runTagFeed(t *testing.T, c Cloud, out *outputs, secrets *[]string) {
	scenario := func(name string, s Scenario, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			h := Cloud{Plugin: c.Plugin, Start: c.TagFeed}.start(t, s, out)
			if h.fake.TagKey == "" || h.fake.TagExpected == nil {
				t.Fatal("a tag feed's fake names no TagKey or TagExpected")
			}
			*secrets = append(*secrets, h.fake.Secret)
			*secrets = append(*secrets, h.fake.Derived...)
			f(h)
		})
	}
	scenario("values", Scenario{}, func(h *harness) {
		got, err := h.tagCosts(h.fake.TagKey, httpx.Limits{}, 30*time.Second)
		if err != nil {
			h.t.Fatalf("TagCosts: %v", err)
		}
		compareValues(h.t, got, h.fake.TagExpected)
		h.checkWeightTotals(got)
	})
	scenario("paging", Scenario{PageSize: 2}, func(h *harness) {
		got, err := h.tagCosts(h.fake.TagKey, httpx.Limits{}, 30*time.Second)
		if err != nil {
			h.t.Fatalf("TagCosts: %v", err)
		}
		if n := len(h.inj.Arrivals()); n < 3 {
			h.t.Errorf("%d tag requests for pages of 2 rows, want at least 3", n)
		}
		compareValues(h.t, got, h.fake.TagExpected)
	})
	scenario("unknown key", Scenario{}, func(h *harness) {
		got, err := h.tagCosts(UnknownTagKey, httpx.Limits{}, 30*time.Second)
		if err != nil {
			h.t.Fatalf("TagCosts of a key nothing carries: %v, want every weight untagged", err)
		}
		for m, values := range got {
			for v := range values {
				if v != "" {
					h.t.Errorf("%s: a key nothing carries has the value %q", m, v)
				}
			}
		}
		h.checkWeightTotals(got)
	})
	for _, fc := range []struct {
		name   string
		status int
		reason provider.Reason
	}{
		{"server errors", http.StatusInternalServerError, provider.ReasonServer},
		{"forbidden", http.StatusForbidden, provider.ReasonPermission},
	} {
		scenario(fc.name, Scenario{}, func(h *harness) {
			h.inj.Inject(withTimes(h.fake.Error(fc.status), 1000))
			_, err := h.tagCosts(h.fake.TagKey, httpx.Limits{}, 30*time.Second)
			want := ""
			if fc.status == http.StatusForbidden {
				want = h.fake.Permission
			}
			h.expectErr(err, fc.reason, want)
		})
	}
	scenario("records per refresh", Scenario{}, func(h *harness) {
		_, err := h.tagCosts(h.fake.TagKey, httpx.Limits{MaxRecords: 1}, 30*time.Second)
		h.expectErr(err, provider.ReasonMalformed, "records")
	})
}

// tagCosts reads the tag feed of the fake's source for every month the
// fake has values of, and sums the weight per month and value.
func (h *harness) tagCosts(key string, limits httpx.Limits, timeout time.Duration) (ValueTotals, error) {
	h.t.Helper()
	src := h.source(h.ts.Client())
	feed, ok := src.Provider.(provider.TagFeed)
	if !ok {
		h.t.Fatalf("a %s source that sets allocate_by reads no tags", h.cloud.Plugin.Name)
	}
	h.t.Cleanup(func() { _ = src.Provider.Close() })
	ctx, cancel := context.WithTimeout(httpx.WithBudget(h.t.Context(), httpx.NewBudget(limits)), timeout)
	defer cancel()
	records, err := feed.TagCosts(ctx, slices.Sorted(maps.Keys(h.fake.TagExpected)), key)
	h.out.err(err)
	if err != nil {
		return nil, err
	}
	got := ValueTotals{}
	for _, rec := range records {
		if rec.Provider != h.cloud.Plugin.Name {
			h.t.Errorf("a tag record of another provider: %+v", rec)
		}
		w, ok := weight(rec.Record)
		if !ok {
			h.t.Errorf("a tag record that carries no weight: %+v", rec)
		}
		if got[rec.Month] == nil {
			got[rec.Month] = map[string]float64{}
		}
		got[rec.Month][rec.Value] += w
	}
	return got, nil
}

// weight is what a tag record's share is taken from: its cost, or its
// emissions for a dimension of the carbon data itself.
func weight(r provider.Record) (float64, bool) {
	switch {
	case r.Known&provider.Cost != 0:
		return r.CostUSD, true
	case r.Known&provider.Emissions != 0:
		return r.EmissionsGrams, true
	}
	return 0, false
}

// checkWeightTotals checks that the values of each month add up to the
// fake's total of that month: a tag splits the weight, it adds none.
func (h *harness) checkWeightTotals(got ValueTotals) {
	h.t.Helper()
	for m, values := range h.fake.TagExpected {
		var want, sum float64
		for _, w := range values {
			want += w
		}
		for _, w := range got[m] {
			sum += w
		}
		if !near(sum, want) {
			h.t.Errorf("%s: the values add up to %v, the fake's total is %v", m, sum, want)
		}
	}
}

func compareValues(t *testing.T, got, want ValueTotals) {
	t.Helper()
	months := map[provider.Month]bool{}
	for m := range got {
		months[m] = true
	}
	for m := range want {
		months[m] = true
	}
	for _, m := range slices.Sorted(maps.Keys(months)) {
		values := map[string]bool{}
		for v := range got[m] {
			values[v] = true
		}
		for v := range want[m] {
			values[v] = true
		}
		for _, v := range slices.Sorted(maps.Keys(values)) {
			g, gok := got[m][v]
			w, wok := want[m][v]
			switch {
			case gok != wok:
				t.Errorf("%s value %q: served %v (%v), fake has %v (%v)", m, v, gok, g, wok, w)
			case gok && !near(g, w):
				t.Errorf("%s value %q: served %v, want %v", m, v, g, w)
			}
		}
	}
}

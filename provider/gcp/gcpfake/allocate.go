package gcpfake

import (
	"math"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// The fake's own expectation of allocation by labels, for tests of the
// gcp provider's tag feed through the exporter's split.

// unknownLabel is the exporter's label of a service or location the
// export leaves NULL, by the fake's reading of the gcp provider's
// documentation (kept apart from its constant, as publishDelay is).
const unknownLabel = "unknown"

// series are the labels the exporter gives a row of either export: the
// project id, or provider.AccountPlaceholder for rows without a project
// (the support fee, a deleted project's footprint); the service's
// description with its white space collapsed; the region lower-cased,
// else the location (a multi-region, a country, "global"). A zone's
// billing rows and its region's carbon rows share a series so: that is
// what lets a carbon row find the cost of its own series.
type series struct{ account, service, location string }

func seriesOf(project, service, region, location string) series {
	s := series{account: strings.TrimSpace(project), service: strings.Join(strings.Fields(service), " "), location: unknownLabel}
	if s.account == "" {
		s.account = provider.AccountPlaceholder
	}
	if s.service == "" {
		s.service = unknownLabel
	}
	for _, l := range []string{region, location} {
		if l = strings.ToLower(strings.TrimSpace(l)); l != "" {
			s.location = l
			break
		}
	}
	return s
}

// tagCell is one series and one value of an allocation key: "" for cost
// without the label or with an empty value.
type tagCell struct {
	series
	value string
}

// tagMicros returns the net micros of invoice month m by series, value of
// key and conversion rate, over the rows the exporter's partition window
// reads: what the tag query groups by, but for the billing account,
// currency and raw region and location, which the series merge.
func (d Dataset) tagMicros(m provider.Month, key string) map[tagCell]map[float64]int64 {
	out := map[tagCell]map[float64]int64{}
	start, end := billingWindow(m, m)
	for _, r := range d.Billing {
		if r.InvoiceMonth != m || !inWindow(r.ExportTime, start, end) {
			continue
		}
		v, _ := r.label(key)
		c := tagCell{seriesOf(r.ProjectID, r.Service, r.Region, r.Location), v}
		if out[c] == nil {
			out[c] = map[float64]int64{}
		}
		out[c][r.ConversionRate] += r.netMicros()
	}
	return out
}

// ReferenceAllocation is what the exporter must allocate to each value of
// key in month m, the top values by cost kept and the rest folded:
// fakehttp's reference, worked out row by row from the fake's own carbon
// rows of every billing account (in grams, both methods, labelled as the
// exporter labels them) and the net cost of each series and value of the
// invoice month (the tag query groups by project, service and location,
// so every tag row has all three labels).
func (d Dataset) ReferenceAllocation(m provider.Month, key string, top int) []fakehttp.Allocated {
	var tags []fakehttp.TagRow
	for c, micros := range d.tagMicros(m, key) {
		tags = append(tags, fakehttp.TagRow{Account: c.account, Service: c.service, Location: c.location, Value: c.value,
			Month: m, Weight: toUSD(micros)})
	}
	return fakehttp.ReferenceAllocation(d.referenceCarbon(m), tags, top)
}

// referenceCarbon returns the carbon rows of month m as the reference
// reads them: scopes 1 and 3 are the same figure by either method, as
// Google publishes only scope 2 by both; a series any of whose rows lacks
// the market-based figure has none (the exporter reports none rather than
// a part of one).
func (d Dataset) referenceCarbon(m provider.Month) []fakehttp.CarbonRow {
	noMarket := map[series]bool{}
	for _, r := range d.Carbon {
		if r.Month == m && r.Scope2Market == nil {
			noMarket[seriesOf(r.ProjectID, r.Service, r.Region, r.Location)] = true
		}
	}
	var out []fakehttp.CarbonRow
	for _, r := range d.Carbon {
		if r.Month != m {
			continue
		}
		s := seriesOf(r.ProjectID, r.Service, r.Region, r.Location)
		figures := []struct {
			scope         provider.Scope
			location, mkt float64
		}{
			{provider.Scope1, r.Scope1, r.Scope1},
			{provider.Scope2, r.Scope2Location, math.NaN()},
			{provider.Scope3, r.Scope3, r.Scope3},
		}
		if noMarket[s] {
			for i := range figures {
				figures[i].mkt = math.NaN()
			}
		} else {
			figures[1].mkt = *r.Scope2Market
		}
		for _, f := range figures {
			out = append(out, fakehttp.CarbonRow{Account: s.account, Service: s.service, Location: s.location, Scope: string(f.scope),
				Month: m, Grams: f.location * gramsPerKilogram, Market: f.mkt * gramsPerKilogram})
		}
	}
	return out
}

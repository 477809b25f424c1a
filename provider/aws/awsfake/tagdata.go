package awsfake

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// TeamKey is the cost allocation tag key of the demo's and the tests'
// cost, and PlatformTeam the team of the global services of every
// account (Teams).
const (
	TeamKey      = "team"
	PlatformTeam = "platform"
)

// teamOf is how Teams spreads the other lines: three in ten are web's,
// three data's, two ml's and two nobody's.
var teamOf = []string{"web", "web", "web", "data", "data", "data", "ml", "ml", "", ""}

// Tagger returns the value of a tag a usage line carries, "" for none.
type Tagger func(c CostRow) string

// Teams tags usage lines with a team, as an organization's tagging
// policy might: the lines of the accounts in untagged carry none; the
// global services (CloudFront, Route 53) are PlatformTeam's in every
// other account, one value in several accounts' cells; every other line,
// whole, is web's, data's or ml's, or nobody's, by a hash of its account,
// region and service, the same every month. Each line goes whole to one
// value, so that the cost of every cell, and the estimates made of it,
// stay what they were before the tags, to the last bit.
func Teams(untagged ...string) Tagger {
	return func(c CostRow) string {
		switch {
		case slices.Contains(untagged, c.Account):
			return ""
		case c.Region == "global":
			return PlatformTeam
		}
		return teamOf[seed("team/"+c.Account+"/"+c.Region+"/"+c.Service)%uint64(len(teamOf))]
	}
}

// WithTags returns d with each usage line tagged key = tag(line), none
// when tag says "". Taxes, credits and refunds carry no tag.
func (d Dataset) WithTags(key string, tag Tagger) Dataset {
	costs := slices.Clone(d.Costs)
	for i := range costs {
		c := &costs[i]
		if c.RecordType != RecordUsage {
			continue
		}
		if v := tag(*c); v != "" {
			c.Tags = maps.Clone(c.Tags)
			if c.Tags == nil {
				c.Tags = make(map[string]string, 1)
			}
			c.Tags[key] = v
		}
	}
	d.Costs = costs
	return d
}

// WithManyValues returns d with the usage of one cell, the account,
// region and service of its first usage line, split every month into n
// lines of equal cost tagged key = "value-001" to n, for tests of a key
// with more values than an exporter keeps. The lines add up to the cost
// they replace, to the last bit or so.
func (d Dataset) WithManyValues(key string, n int) Dataset {
	i := slices.IndexFunc(d.Costs, func(c CostRow) bool { return c.RecordType == RecordUsage })
	if i < 0 || n < 1 {
		return d
	}
	cell := d.Costs[i]
	var costs []CostRow
	for _, c := range d.Costs {
		if c.RecordType != RecordUsage || c.Account != cell.Account || c.Region != cell.Region || c.Service != cell.Service {
			costs = append(costs, c)
			continue
		}
		var amortized, unblended float64
		for j := range n {
			part := c
			part.Tags = maps.Clone(c.Tags)
			if part.Tags == nil {
				part.Tags = make(map[string]string, 1)
			}
			part.Tags[key] = fmt.Sprintf("value-%03d", j+1)
			part.Amortized, part.Unblended = c.Amortized/float64(n), c.Unblended/float64(n)
			if j == n-1 {
				part.Amortized, part.Unblended = c.Amortized-amortized, c.Unblended-unblended
			}
			amortized += part.Amortized
			unblended += part.Unblended
			costs = append(costs, part)
		}
	}
	d.Costs = costs
	return d
}

// TagTotals is the cost of month m per value of key that an exporter
// reading Cost Explorer must serve, "" for the cost without the tag:
// CostTotal split by the tag.
func (d Dataset) TagTotals(m provider.Month, key string) map[string]float64 {
	out := make(map[string]float64)
	for _, c := range d.Costs {
		if c.Month == m && c.usage() {
			out[c.Tags[key]] += c.Amortized
		}
	}
	return out
}

// The fake's own reading of the labels an exporter gives what names no
// account, region or service: the exporter's placeholder account, and
// "unknown" for the others.
const (
	noAccount = "none"
	noLabel   = "unknown"
)

// ReferenceAllocation is what an exporter must allocate to each value of
// tag key in month m, the top values by cost kept and the rest folded:
// fakehttp's reference, worked out row by row from the fake's own carbon
// rows (in grams, both methods, scope 1 in each, labelled as the
// Sustainability API names them) and usage lines (amortized, as the tag
// feed reads them, taxes, credits and refunds left out). The lines are
// weighed per account and service of the Sustainability API, the fake's
// own reading of Cost Explorer's names (ceServices), with location "":
// Cost Explorer groups by two keys at most, and a read of a tag takes one
// for the tag; a read that falls back to the survey's per account grain
// (more accounts and values than it splits into) is not what this
// reference covers.
func (d Dataset) ReferenceAllocation(m provider.Month, key string, top int) []fakehttp.Allocated {
	var carbon []fakehttp.CarbonRow
	for _, r := range d.Rows {
		if r.Month != m {
			continue
		}
		for _, s := range []struct {
			scope       provider.Scope
			lbm, market float64
		}{{provider.Scope1, r.Scope1, r.Scope1}, {provider.Scope2, r.Scope2LBM, r.Scope2MBM}, {provider.Scope3, r.Scope3LBM, r.Scope3MBM}} {
			carbon = append(carbon, fakehttp.CarbonRow{Account: cmp.Or(r.Account, noAccount), Service: cmp.Or(r.Service, noLabel),
				Location: cmp.Or(r.Region, noLabel), Scope: string(s.scope), Month: m,
				Grams: s.lbm * gramsPerMetricTon, Market: s.market * gramsPerMetricTon})
		}
	}
	codes := make(map[string]string) // by Cost Explorer name
	for code, names := range ceServices {
		for _, n := range names {
			codes[n.name] = code
		}
	}
	var tags []fakehttp.TagRow
	for _, c := range d.Costs {
		if c.Month != m || !c.usage() {
			continue
		}
		tags = append(tags, fakehttp.TagRow{Account: cmp.Or(c.Account, noAccount), Service: cmp.Or(codes[c.Service], c.Service, noLabel),
			Value: c.Tags[key], Month: m, Weight: c.Amortized})
	}
	return fakehttp.ReferenceAllocation(carbon, tags, top)
}

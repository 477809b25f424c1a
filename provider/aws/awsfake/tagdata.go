package awsfake

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
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

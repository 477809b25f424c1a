package ocifake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// FreeformNamespace is the namespace under which the Usage API, like the
// Console's tag pickers, names free-form tags, which belong to no tag
// namespace: the fake's reading, kept apart from the provider's.
const FreeformNamespace = "None"

// Tag is one tag of a resource as the Usage API names it: a defined
// tag's namespace and key, or FreeformNamespace and a free-form tag's
// key. OCI compares namespaces and keys regardless of case.
type Tag struct{ Namespace, Key, Value string }

// matches reports whether t is the tag namespace.key.
func (t Tag) matches(namespace, key string) bool {
	return strings.EqualFold(t.Namespace, namespace) && strings.EqualFold(t.Key, key)
}

// TaggedCost is the part of a cost row's cost whose resources carry Tags
// (one value per key at most). The rest of the row's cost carries none.
type TaggedCost struct {
	Tags []Tag
	Cost float64
}

// TagPlan says how WithTags tags a dataset's cost: the rows Where
// selects (every row when nil) are split among resources, each of which
// carries one of Values, or, with probability Untagged, no value of
// the tag at all.
type TagPlan struct {
	Namespace, Key string
	Values         []string
	Untagged       float64
	Where          func(CostRow) bool
}

// WithTags returns d with the cost of every row split among two to four
// resources and a remainder that carries no tag, each resource tagged
// by every plan that selects the row. A value therefore recurs across
// compartments, services and regions, several values share a row, and
// every key has cost without it. Parts are whole 64ths of a dollar, as
// the rows are, so that sums are exact. The split depends only on the
// row, not on the other rows.
func (d Dataset) WithTags(plans ...TagPlan) Dataset {
	d.Costs = slices.Clone(d.Costs)
	for i := range d.Costs {
		c := &d.Costs[i]
		rng := rand.New(rand.NewPCG(costSeed("tags|"+c.CompartmentPath+"|"+c.Service+"|"+c.Region), uint64(c.Month)))
		units := int(math.Round(c.Cost * costStep))
		weights := []float64{0.1 + 0.2*rng.Float64()} // the remainder's
		for range 2 + rng.IntN(3) {
			weights = append(weights, 0.2+rng.Float64())
		}
		var sum float64
		for _, w := range weights {
			sum += w
		}
		c.Tagged = nil
		for _, w := range weights[1:] {
			part := TaggedCost{Cost: math.Floor(float64(units)*w/sum) / costStep}
			for _, pl := range plans {
				if (pl.Where == nil || pl.Where(*c)) && rng.Float64() >= pl.Untagged && len(pl.Values) > 0 {
					part.Tags = append(part.Tags, Tag{Namespace: pl.Namespace, Key: pl.Key, Value: pl.Values[rng.IntN(len(pl.Values))]})
				}
			}
			if part.Cost > 0 && len(part.Tags) > 0 {
				c.Tagged = append(c.Tagged, part)
			}
		}
	}
	return d
}

// WithManyValues returns d with the cost of its largest row in the
// latest month before the current one (Today's) split evenly among n
// values of namespace.key and a remainder without it, in place of the
// row's other tags: a cell with more values than an exporter keeps.
func (d Dataset) WithManyValues(namespace, key string, n int) Dataset {
	d.Costs = slices.Clone(d.Costs)
	current := provider.MonthOf(d.today())
	best := -1
	for i, c := range d.Costs {
		if c.Month < current && (best < 0 || c.Month > d.Costs[best].Month || c.Month == d.Costs[best].Month && c.Cost > d.Costs[best].Cost) {
			best = i
		}
	}
	if best < 0 || n < 1 {
		return d
	}
	c := &d.Costs[best]
	each := math.Floor(c.Cost*costStep/float64(n+1)) / costStep
	c.Tagged = nil
	for i := range n {
		c.Tagged = append(c.Tagged, TaggedCost{Tags: []Tag{{Namespace: namespace, Key: key, Value: fmt.Sprintf("%s-%03d", key, i+1)}}, Cost: each})
	}
	return d
}

// values splits the row's cost by the value of namespace.key: "" for the
// cost without it.
func (c CostRow) values(namespace, key string) map[string]float64 {
	out := make(map[string]float64)
	rest := c.Cost
	for _, part := range c.Tagged {
		if i := slices.IndexFunc(part.Tags, func(t Tag) bool { return t.matches(namespace, key) }); i >= 0 {
			out[part.Tags[i].Value] += part.Cost
			rest -= part.Cost
		}
	}
	if rest != 0 {
		out[""] += rest
	}
	return out
}

// TagTotals is the cost of each month by the value of namespace.key, ""
// for the cost without it, in the dataset's currency: what an exporter
// grouping the Usage API's COST queries by that tag must serve. Every
// month with cost is there, whether or not anything carries the tag.
func (d Dataset) TagTotals(namespace, key string) map[provider.Month]map[string]float64 {
	out := make(map[provider.Month]map[string]float64)
	for _, c := range d.Costs {
		if out[c.Month] == nil {
			out[c.Month] = make(map[string]float64)
		}
		for v, cost := range c.values(namespace, key) {
			out[c.Month][v] += cost
		}
	}
	return out
}

// TagValues returns the values of namespace.key that carry cost, sorted.
func (d Dataset) TagValues(namespace, key string) []string {
	seen := make(map[string]bool)
	for _, byValue := range d.TagTotals(namespace, key) {
		for v := range byValue {
			if v != "" {
				seen[v] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// wireTag is the Usage API's Tag: in a groupByTag, the namespace and
// key to group by; in an item, those and the item's value, null for
// cost without the tag.
type wireTag struct {
	Namespace string  `json:"namespace"`
	Key       string  `json:"key"`
	Value     *string `json:"value"`
}

// decodeGroupByTag checks a cost query's groupByTag: absent, or one tag
// (the API groups by one tag at most) with a namespace and a key and no
// value.
func decodeGroupByTag(raw json.RawMessage) (*wireTag, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var tags []wireTag
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tags); err != nil {
		return nil, invalid("Invalid groupByTag: %v.", err)
	}
	switch {
	case len(tags) == 0:
		return nil, nil
	case len(tags) > 1:
		return nil, invalid("groupByTag supports only one tag in the list.")
	case tags[0].Namespace == "" || tags[0].Key == "":
		return nil, invalid("groupByTag needs the tag's namespace and key.")
	case tags[0].Value != nil:
		return nil, invalid("groupByTag takes a tag's namespace and key, not its value.")
	}
	return &tags[0], nil
}

// costParts returns the parts of a cost row a query sums: the row whole,
// or its cost by the value of the query's tag.
func costParts(c CostRow, tag *wireTag) map[string]float64 {
	if tag == nil {
		return map[string]float64{"": c.Cost}
	}
	return c.values(tag.Namespace, tag.Key)
}

// itemTags is an item's tags: the query's tag with the item's value.
func itemTags(tag *wireTag, value string) []wireTag {
	if tag == nil {
		return nil
	}
	t := wireTag{Namespace: tag.Namespace, Key: tag.Key}
	if value != "" {
		t.Value = &value
	}
	return []wireTag{t}
}

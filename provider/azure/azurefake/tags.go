package azurefake

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Tags in Cost Management, by the fake's reading of the Query API: a
// grouping {"type": "TagKey", "name": key} answers two columns in its
// place, TagKey and TagValue. Cost whose usage records carry the tag has
// the key and its value in them; cost that carries no such tag has null
// in both (Microsoft, in Azure/azure-sdk-for-java#24285: a query grouped
// by a tag key answers TagKey and TagValue by design, null where the cost
// has no value for the key). ARM tag names are case-insensitive and their
// values case-sensitive, and cost reports keep each resource's casing of
// a name (Microsoft's tagging guide); whether the grouping itself matches
// without case Microsoft does not say: the fake does, and answers the
// record's own spelling.

// tagOf returns the spelling and value of tag key in tags, and whether
// tags has it. Azure keeps one spelling of a name per resource; of two
// that differ in case (which only a hand-made dataset holds) the first in
// byte order wins, so that answers do not depend on map order.
func tagOf(tags map[string]string, key string) (name, value string, ok bool) {
	if v, found := tags[key]; found {
		return key, v, true
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if strings.EqualFold(k, key) {
			return k, tags[k], true
		}
	}
	return "", "", false
}

// TagCostKey is what the azure provider groups the cost of a tag's
// values by within a subscription: Cost Management groups by two columns
// at most, the resource type and the tag, so the region is not one.
type TagCostKey struct {
	SubscriptionID, ResourceType, Value string
}

// TagCostTotals returns the US dollars of month m per subscription,
// resource type and value of tag key ("" for cost without the tag), over
// the subscriptions whose cost may be read.
func (d Dataset) TagCostTotals(m provider.Month, key string) map[TagCostKey]float64 {
	out := map[TagCostKey]float64{}
	for _, c := range d.Costs {
		if c.Month != m || !d.costAllowed(c.SubscriptionID) {
			continue
		}
		_, v, _ := tagOf(c.Tags, key)
		out[TagCostKey{strings.ToLower(c.SubscriptionID), c.ResourceType, v}] += c.USD
	}
	return out
}

// TagTotals returns the US dollars of month m per value of tag key, ""
// for cost without the tag, over the subscriptions whose cost may be
// read: what an exact tag feed must report. A tag whose value is empty
// counts as no tag.
func (d Dataset) TagTotals(m provider.Month, key string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range d.TagCostTotals(m, key) {
		out[k.Value] += v
	}
	return out
}

// ReferenceAllocation is what the exporter must allocate to each value of
// tag key in month m, the top values by cost kept and the rest folded:
// fakehttp's reference, worked out row by row from the fake's own items
// (in grams, labelled as Fetch labels them, location-based only, as Azure
// reports) and TagCostTotals (whose location is "", as Cost Management
// cannot group by the region and the tag together).
func (d Dataset) ReferenceAllocation(m provider.Month, key string, top int) []fakehttp.Allocated {
	denied := map[string]bool{}
	for _, s := range d.Subscriptions {
		denied[strings.ToLower(s.ID)] = s.Denied
	}
	var carbon []fakehttp.CarbonRow
	for _, it := range d.Items {
		sub := strings.ToLower(it.SubscriptionID)
		if it.Month != m || denied[sub] {
			continue
		}
		for _, s := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
			carbon = append(carbon, fakehttp.CarbonRow{Account: sub, Service: strings.ToLower(it.ResourceType),
				Location: armLocation(it.Location), Scope: string(s), Month: m,
				Grams: it.Emissions(s) * gramsPerKilogram, Market: math.NaN()})
		}
	}
	var tags []fakehttp.TagRow
	for k, usd := range d.TagCostTotals(m, key) {
		tags = append(tags, fakehttp.TagRow{Account: k.SubscriptionID, Service: k.ResourceType, Value: k.Value, Month: m, Weight: usd})
	}
	return fakehttp.ReferenceAllocation(carbon, tags, top)
}

// WithManyTagValues returns d with n more resources in one cell, the
// resource type and region of the first cost of the first subscription
// whose cost may be read, each tagged key with a value of its own
// (value-001, value-002, ...) and each with a cost in every month that
// has cost, the first value's the highest: a key of high cardinality in
// one cell, for folding the values past a top N. Their costs differ, so
// that a top N is one set of values.
func (d Dataset) WithManyTagValues(key string, n int) Dataset {
	var cell *Cost
	for i, c := range d.Costs {
		if d.costAllowed(c.SubscriptionID) {
			cell = &d.Costs[i]
			break
		}
	}
	if cell == nil || n <= 0 {
		return d
	}
	base := *cell
	costs := slices.Clone(d.Costs)
	for _, m := range d.CostMonths() {
		for i := range n {
			c := base
			c.ResourceID = fmt.Sprintf("%s-many-%03d", base.ResourceID, i+1)
			c.Month = m
			c.USD = round6(0.01 * float64(n-i))
			c.Tags = map[string]string{key: fmt.Sprintf("value-%03d", i+1)}
			costs = append(costs, c)
		}
	}
	d.Costs = costs
	return d
}

// The demo's tags: every resource carries its team's tag, by resource
// group, but for the sandboxes and a few resources nobody tagged; the
// managed disks the AKS clusters' volumes run on carry the namespace of
// their claim, as the Azure Disk CSI driver tags the disks it creates.
const (
	// DemoTagKey is the key of the demo's team tag.
	DemoTagKey = "team"
	// PVCNamespaceTag is the tag the Azure Disk CSI driver gives the
	// disk of a persistent volume: the namespace of its claim.
	PVCNamespaceTag = "kubernetes.io-created-for-pvc-namespace"
)

// demoTeams maps the demo's resource groups to the team that owns them;
// groups not listed (the sandboxes) carry no team tag.
var demoTeams = map[string]string{
	"rg-web-prod": "web", "rg-api-prod": "api", "rg-shared-prod": "platform",
	"rg-ingest": "data", "rg-lake": "data", "rg-analytics": "data",
	"rg-web-stg": "web", "rg-api-stg": "api", "rg-finance": "finance",
}

// demoNamespaces are the namespaces of the demo's volume claims.
var demoNamespaces = []string{"checkout", "search", "ingest", "monitoring"}

// demoTags are the tags of the demo resource key (its name in the
// dataset's seed space) of type typ in resource group group. They are
// drawn from a hash of key, not from the dataset's random stream, so that
// the emissions and costs do not depend on them.
func demoTags(key, typ, group string, aks bool) map[string]string {
	tags := map[string]string{}
	h := seed(key + "/tags")
	if team, ok := demoTeams[group]; ok && h%100 >= 8 {
		tags[DemoTagKey] = team
	}
	if aks && typ == "microsoft.compute/disks" && (h>>8)%2 == 0 {
		tags[PVCNamespaceTag] = demoNamespaces[(h>>16)%uint64(len(demoNamespaces))]
		tags["k8s-azure-created-by"] = "kubernetes-azure-dd"
	}
	if len(tags) == 0 {
		return nil
	}
	return tags
}

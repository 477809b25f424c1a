// Package azurefake is an in-process Azure: the Entra authority a
// credential needs (OpenID discovery, instance discovery, the v2.0 token
// endpoint with client secret and certificate grants) and the Azure
// Resource Manager operations the azure provider calls (Microsoft.Carbon
// reports and available date range, subscription listing, Cost Management
// queries), over a dataset of per-resource monthly emissions and the cost
// derived from them.
//
// Tests drive the real armcarbonoptimization client and a real azidentity
// credential against it over TLS, and the exporter's demo mode serves its
// built-in dataset, so both exercise the same code path as production.
package azurefake

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The fake's own reading of Azure's documentation, kept apart from the
// azure provider's constants so that a schedule, range or unit error in
// the client shows up as a difference from the fake instead of being
// mirrored by it: the previous month's emissions are available by day 19
// of the current month, the API serves the last 12 months, and it reports
// kgCO2e.
const (
	publishDelay     = 18 * 24 * time.Hour
	monthsServed     = 12
	gramsPerKilogram = 1000.0
)

// Subscription is a subscription of the dataset's tenant.
type Subscription struct {
	ID          string // lower-case GUID
	DisplayName string
	// State is the subscription state listing reports; "" is Enabled.
	State string
	// Denied subscriptions are listed but the carbon API refuses them:
	// they appear as Denied in subscriptionAccessDecisionList with
	// DenialReason, and their items are never returned.
	Denied       bool
	DenialReason string
	// CostDenied subscriptions refuse Cost Management queries (403), as
	// they do for an identity without Cost Management Reader; their
	// carbon access is Denied's.
	CostDenied bool
	// Currency is the billing currency, in Cost Management's Cost column:
	// "" or "USD" is US dollars, "EUR" euros. CostUSD is always dollars.
	Currency string
}

// Item is one resource's emissions in one month, the grain of an
// ItemDetailsReport with categoryType Resource.
type Item struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	// ResourceType is lower-case, e.g. "microsoft.compute/virtualmachines".
	ResourceType string
	// Location is the region display name in lower case, as the API
	// reports it, e.g. "east us".
	Location string
	Month    provider.Month
	// Scope1, Scope2 and Scope3 are kgCO2e.
	Scope1, Scope2, Scope3 float64
	// Tags are the resource's tags, which its usage records carry into
	// Cost Management (WithCosts copies them); the carbon API has none.
	Tags map[string]string
}

// ResourceID returns the item's ARM resource id.
func (it Item) ResourceID() string {
	ns, typ, _ := strings.Cut(it.ResourceType, "/")
	types := strings.Split(typ, "/")
	// Child types (servers/databases) nest a parent name per level; the
	// fake uses the resource's own name for every level.
	var b strings.Builder
	fmt.Fprintf(&b, "/subscriptions/%s/resourceGroups/%s/providers/%s", it.SubscriptionID, it.ResourceGroup, ns)
	for _, t := range types {
		fmt.Fprintf(&b, "/%s/%s", t, it.Name)
	}
	return b.String()
}

// Emissions returns the item's kgCO2e in scope s (0 for other scopes).
func (it Item) Emissions(s provider.Scope) float64 {
	switch s {
	case provider.Scope1:
		return it.Scope1
	case provider.Scope2:
		return it.Scope2
	case provider.Scope3:
		return it.Scope3
	}
	return 0
}

// Dataset is what the fake serves.
type Dataset struct {
	TenantID      string
	Subscriptions []Subscription
	Items         []Item
	// First and Last are the available date range the API reports.
	// Zero values are derived from Items.
	First, Last provider.Month
	// Costs are what Cost Management serves, per resource and month;
	// WithCosts derives them from Items.
	Costs []Cost
}

// Range returns the available date range: First and Last when set, else
// the months of the items.
func (d Dataset) Range() (first, last provider.Month) {
	first, last = d.First, d.Last
	if first != 0 && last != 0 {
		return first, last
	}
	lo, hi := provider.Month(math.MaxInt32), provider.Month(0)
	for _, it := range d.Items {
		lo, hi = min(lo, it.Month), max(hi, it.Month)
	}
	if hi == 0 {
		lo = hi
	}
	if first == 0 {
		first = lo
	}
	if last == 0 {
		last = hi
	}
	return first, last
}

// SubscriptionIDs returns the ids of every subscription, denied ones
// included, in dataset order.
func (d Dataset) SubscriptionIDs() []string {
	out := make([]string, len(d.Subscriptions))
	for i, s := range d.Subscriptions {
		out[i] = s.ID
	}
	return out
}

// Total returns the kgCO2e of month m in scope s over the subscriptions
// that are not denied: what an exact client must report.
func (d Dataset) Total(m provider.Month, s provider.Scope) float64 {
	denied := map[string]bool{}
	for _, sub := range d.Subscriptions {
		if sub.Denied {
			denied[sub.ID] = true
		}
	}
	var sum float64
	for _, it := range d.Items {
		if it.Month == m && !denied[it.SubscriptionID] {
			sum += it.Emissions(s)
		}
	}
	return sum
}

// TotalGrams is Total in grams: what the exporter must report for month m
// in scope s.
func (d Dataset) TotalGrams(m provider.Month, s provider.Scope) float64 {
	return d.Total(m, s) * gramsPerKilogram
}

// MonthGrams is TotalGrams summed over the three scopes: the emissions
// the exporter must report for month m.
func (d Dataset) MonthGrams(m provider.Month) float64 {
	return d.TotalGrams(m, provider.Scope1) + d.TotalGrams(m, provider.Scope2) + d.TotalGrams(m, provider.Scope3)
}

// The demo's identity. The fake accepts only these; they open nothing real.
const (
	DemoTenantID     = "5c2a7e1d-8f3b-4a6c-9d0e-1f2a3b4c5d6e"
	DemoClientID     = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"
	DemoClientSecret = "demo-azure-client-secret"
)

// DemoMonths is how many months Demo covers: all the API serves.
const DemoMonths = monthsServed

// LatestMonth returns the latest month Azure has published by now.
func LatestMonth(now time.Time) provider.Month {
	return provider.Schedule{PublishDelay: publishDelay}.LatestPublished(now)
}

// demoGUID derives a stable GUID from name.
func demoGUID(name string) string {
	sum := sha256.Sum256([]byte("cloudcarbon-demo/azure/" + name))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// demoType is a resource type of the demo: a typical resource's monthly
// kgCO2e (all scopes) and the share of each scope. Scope 3 (embodied
// hardware emissions) dominates for storage-heavy services, scope 2
// (electricity) for compute; scope 1 is small everywhere.
type demoType struct {
	typ, prefix string
	kg          float64
	s1, s3      float64 // scope 2 is the rest
}

var demoTypes = []demoType{
	{"microsoft.compute/virtualmachines", "vm", 28, 0.012, 0.52},
	{"microsoft.containerservice/managedclusters", "aks", 95, 0.010, 0.50},
	{"microsoft.storage/storageaccounts", "st", 6, 0.006, 0.74},
	{"microsoft.sql/servers/databases", "sqldb", 14, 0.011, 0.58},
	{"microsoft.web/sites", "app", 4, 0.009, 0.55},
	{"microsoft.documentdb/databaseaccounts", "cosmos", 11, 0.010, 0.60},
	{"microsoft.compute/disks", "disk", 2.5, 0.004, 0.81},
	{"microsoft.cache/redis", "redis", 5, 0.010, 0.54},
}

// demoRegions: display name and relative grid carbon intensity, which
// scales scope 2.
var demoRegions = []struct {
	name      string
	intensity float64
}{
	{"east us", 1.0},
	{"west us 2", 0.55},
	{"west europe", 0.75},
	{"north europe", 0.45},
	{"uk south", 0.55},
	{"southeast asia", 1.25},
}

type demoSub struct {
	name     string
	denied   string // denial reason; "" when allowed
	currency string // billing currency; "" is USD
	scale    float64
	growth   float64 // per month
	regions  []int
	groups   []string
	// counts of resources per demoTypes index
	counts []int
}

// Demo returns a deterministic, plausible tenant: five subscriptions (one
// denied to the carbon API but not to Cost Management, one billed in
// euros), eight resource types in six regions, a few hundred resources
// tagged by team and, for the disks of the AKS clusters' volumes, by
// namespace (demoTags),
// DemoMonths months ending at the latest month Azure has published by
// now, and their cost (WithCosts) through the month in progress. A
// month's figures depend only on the month, not on now (but for the
// month in progress, its cost to date), so a demo that runs for weeks
// shows a stable history. Resources come and go across months, and every
// month has more items than a small page holds.
func Demo(now time.Time) Dataset {
	last := LatestMonth(now)
	first := last.Add(-(DemoMonths - 1))
	subs := []demoSub{
		{name: "Contoso Production", scale: 1.0, growth: 0.011, regions: []int{0, 2, 4},
			groups: []string{"rg-web-prod", "rg-api-prod", "rg-shared-prod"},
			counts: []int{14, 3, 8, 6, 7, 2, 14, 3}},
		{name: "Contoso Data Platform", currency: "EUR", scale: 1.4, growth: 0.02, regions: []int{0, 3},
			groups: []string{"rg-ingest", "rg-lake", "rg-analytics"},
			counts: []int{8, 2, 12, 5, 0, 4, 8, 1}},
		{name: "Contoso Staging", scale: 0.35, growth: 0.0, regions: []int{0, 2},
			groups: []string{"rg-web-stg", "rg-api-stg"},
			counts: []int{6, 1, 4, 3, 4, 1, 6, 1}},
		{name: "Contoso Dev/Test", scale: 0.15, growth: -0.008, regions: []int{1, 5},
			groups: []string{"rg-dev", "rg-sandbox"},
			counts: []int{9, 1, 5, 2, 6, 0, 9, 0}},
		{name: "Contoso Finance (legacy)", denied: "Carbon Optimization Reader permission required", scale: 0.5, growth: 0.0,
			regions: []int{0}, groups: []string{"rg-finance"},
			counts: []int{4, 0, 2, 2, 1, 0, 4, 0}},
	}

	ds := Dataset{TenantID: DemoTenantID, First: first, Last: last}
	// epoch anchors growth, so that a month's value does not depend on now.
	epoch := provider.NewMonth(2024, time.January)
	for _, sub := range subs {
		id := demoGUID("subscription/" + sub.name)
		ds.Subscriptions = append(ds.Subscriptions, Subscription{
			ID: id, DisplayName: sub.name, Denied: sub.denied != "", DenialReason: sub.denied, Currency: sub.currency,
		})
		for ti, n := range sub.counts {
			dt := demoTypes[ti]
			for i := range n {
				key := fmt.Sprintf("%s/%s/%d", sub.name, dt.typ, i)
				rng := rand.New(rand.NewPCG(seed(key), 1))
				region := demoRegions[sub.regions[rng.IntN(len(sub.regions))]]
				group := sub.groups[rng.IntN(len(sub.groups))]
				name := fmt.Sprintf("%s-%s-%02d", dt.prefix, strings.TrimPrefix(group, "rg-"), i+1)
				tags := demoTags(key, dt.typ, group, sub.counts[1] > 0)
				// Relative size of this resource, and the months it
				// exists: most resources span the whole window, some
				// were created or deleted within it.
				size := dt.kg * sub.scale * (0.4 + 1.2*rng.Float64())
				// Creation and deletion months are absolute, so that a
				// month's items do not depend on now.
				born, died := provider.Month(0), provider.Month(math.MaxInt32)
				switch r := rng.Float64(); {
				case r < 0.15:
					born = epoch.Add(rng.IntN(48))
				case r < 0.25:
					died = epoch.Add(6 + rng.IntN(48))
				}
				for m := first; m <= last; m++ {
					if m <= born || m >= died {
						continue
					}
					noise := rand.New(rand.NewPCG(seed(key), uint64(m)))
					season := 1 + 0.07*math.Cos(2*math.Pi*float64(int(m.Month())-1)/12)
					total := size * math.Pow(1+sub.growth, float64(m-epoch)) * season * (0.9 + 0.2*noise.Float64())
					s1 := total * dt.s1
					s3 := total * dt.s3
					s2 := (total - s1 - s3) * region.intensity
					ds.Items = append(ds.Items, Item{
						SubscriptionID: id, ResourceGroup: group, Name: name,
						ResourceType: dt.typ, Location: region.name, Month: m,
						Scope1: round6(s1), Scope2: round6(s2), Scope3: round6(s3), Tags: tags,
					})
				}
			}
		}
	}
	return ds.WithCosts(now)
}

func seed(key string) uint64 {
	sum := sha256.Sum256([]byte(key))
	return binary.LittleEndian.Uint64(sum[:8])
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

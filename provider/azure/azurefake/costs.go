package azurefake

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The fake's own model of what Azure charges for what it emits, kept apart
// from the azure provider: a resource's ActualCost in a month is its
// emissions (all scopes) divided by grams per US dollar that depend on its
// resource type and region, drift slowly from month to month (hardware and
// grids get cleaner faster than prices fall) and carry seeded noise, so
// that intensities are plausible but never constant. Months Azure has not
// published yet have no emissions: their cost carries on from the latest
// published month with a slow growth and noise, the month in progress to
// the fake's clock. A subscription billed in another currency gets that
// currency in Cost Management's Cost column; CostUSD is always dollars.
const (
	// defaultGramsPerDollar is the intensity of resource types the table
	// below does not know.
	defaultGramsPerDollar = 110.0
	// intensityDriftPerMonth is the relative change of every intensity
	// per month, from costEpoch on.
	intensityDriftPerMonth = -0.004
	// usageGrowthPerMonth is the growth of the cost of months after the
	// latest published one.
	usageGrowthPerMonth = 0.012
	// eurPerUSD converts the fake's dollars to the Cost column of a
	// subscription billed in euros.
	eurPerUSD = 0.92
)

// costEpoch anchors the drift, so that a month's cost does not depend on
// the clock.
var costEpoch = provider.NewMonth(2024, time.January)

// typeGramsPerDollar: typical grams of CO2e (all scopes) per dollar of
// ActualCost, per resource type. Compute emits more per dollar than the
// managed, licence-heavy services.
var typeGramsPerDollar = map[string]float64{
	"microsoft.compute/virtualmachines":          185,
	"microsoft.containerservice/managedclusters": 160,
	"microsoft.storage/storageaccounts":          62,
	"microsoft.sql/servers/databases":            88,
	"microsoft.web/sites":                        71,
	"microsoft.documentdb/databaseaccounts":      54,
	"microsoft.compute/disks":                    47,
	"microsoft.cache/redis":                      83,
}

// Cost is one resource's ActualCost in one month, the grain Cost
// Management sums.
type Cost struct {
	SubscriptionID string
	ResourceGroup  string
	ResourceID     string
	// ResourceType is lower case, as Cost Management groups it.
	ResourceType string
	// Location is the ARM region name ("eastus"), the label the exporter
	// must give the cost.
	Location string
	// ResourceLocation is the region as Cost Management's ResourceLocation
	// spells it: billing geography first ("US East") for the regions
	// costManagementRegions knows, the ARM name for others.
	ResourceLocation string
	Month            provider.Month
	// USD is the cost in US dollars (Cost Management's CostUSD).
	USD float64
	// Tags are the tags the usage records carry: the resource's, as
	// Cost Management receives them with each record. The Costs derived
	// from an Item share its map: read only.
	Tags map[string]string
}

// CostKey is what the azure provider groups cost by within a
// subscription, with the subscription.
type CostKey struct {
	SubscriptionID, ResourceType, Location string
}

// WithCosts returns d with Costs derived from its Items, through the
// month in progress at now: each resource's cost in every month it has
// emissions, and, for the months after the latest published one, its
// cost carried on from that month (the month in progress in the part of
// it elapsed at now). Costs already in d are replaced.
func (d Dataset) WithCosts(now time.Time) Dataset {
	_, last := d.Range()
	current := provider.MonthOf(now)
	d.Costs = nil
	var base []Cost // the costs of the latest published month
	for _, it := range d.Items {
		c := Cost{
			SubscriptionID: it.SubscriptionID, ResourceGroup: it.ResourceGroup, ResourceID: it.ResourceID(),
			ResourceType: strings.ToLower(it.ResourceType), Location: armLocation(it.Location), Month: it.Month,
			Tags: it.Tags,
		}
		c.ResourceLocation = cmp.Or(costManagementRegions[c.Location], c.Location)
		kg := math.Abs(it.Scope1) + math.Abs(it.Scope2) + math.Abs(it.Scope3)
		c.USD = round6(kg * gramsPerKilogram / gramsPerDollar(c, it.Month))
		if c.USD == 0 {
			continue
		}
		if it.Month == last {
			base = append(base, c)
		}
		d.Costs = append(d.Costs, c)
	}
	for m := last + 1; m <= current; m++ {
		part := 1.0
		if m == current {
			part = float64(now.Sub(m.Start())) / float64(m.End().Sub(m.Start()))
		}
		for _, b := range base {
			c := b
			c.Month = m
			c.USD = round6(b.USD * math.Pow(1+usageGrowthPerMonth, float64(m-last)) * noise(b.ResourceID+"/usage", m, 0.08) * part)
			if c.USD != 0 {
				d.Costs = append(d.Costs, c)
			}
		}
	}
	return d
}

// gramsPerDollar is the intensity of c's resource in month m.
func gramsPerDollar(c Cost, m provider.Month) float64 {
	g, ok := typeGramsPerDollar[c.ResourceType]
	if !ok {
		g = defaultGramsPerDollar * noise(c.ResourceType, 0, 0.3)
	}
	return g * noise("location/"+c.Location, 0, 0.25) *
		math.Pow(1+intensityDriftPerMonth, float64(m-costEpoch)) * noise(c.ResourceID, m, 0.06)
}

// noise returns a factor within 1±spread that depends only on key and m.
func noise(key string, m provider.Month, spread float64) float64 {
	h := sha256.Sum256([]byte("cloudcarbon-fake/azure/cost|" + key + "|" + m.String()))
	u := float64(binary.LittleEndian.Uint64(h[:8])>>11) / (1 << 53)
	return 1 - spread + 2*spread*u
}

// costManagementRegions: how Cost Management's ResourceLocation spells
// regions, by the fake's reading of its answers (the billing geography,
// then the direction).
var costManagementRegions = map[string]string{
	"eastus": "US East", "eastus2": "US East 2", "westus": "US West", "westus2": "US West 2", "centralus": "US Central",
	"westcentralus": "US West Central", "westeurope": "EU West", "northeurope": "EU North", "uksouth": "UK South",
	"ukwest": "UK West", "southeastasia": "AP Southeast", "eastasia": "AP East", "japaneast": "JA East",
	"australiaeast": "AU East", "francecentral": "FR Central", "germanywestcentral": "DE West Central",
}

// armLocation is the ARM name of a region display name: "east us" is
// "eastus".
func armLocation(display string) string {
	return strings.ToLower(strings.Join(strings.Fields(display), ""))
}

// costAllowed reports whether the cost of subscription id may be read.
func (d Dataset) costAllowed(id string) bool {
	for _, s := range d.Subscriptions {
		if strings.EqualFold(s.ID, id) {
			return !s.CostDenied
		}
	}
	return false
}

// CostTotal returns the US dollars of month m over the subscriptions
// whose cost may be read: what an exact client must report.
func (d Dataset) CostTotal(m provider.Month) float64 {
	var sum float64
	for _, c := range d.Costs {
		if c.Month == m && d.costAllowed(c.SubscriptionID) {
			sum += c.USD
		}
	}
	return sum
}

// CostTotals returns the US dollars of month m per subscription, resource
// type and ARM region, over the subscriptions whose cost may be read.
func (d Dataset) CostTotals(m provider.Month) map[CostKey]float64 {
	out := map[CostKey]float64{}
	for _, c := range d.Costs {
		if c.Month == m && d.costAllowed(c.SubscriptionID) {
			out[CostKey{strings.ToLower(c.SubscriptionID), c.ResourceType, c.Location}] += c.USD
		}
	}
	return out
}

// CostMonths returns the months that have cost, oldest first.
func (d Dataset) CostMonths() []provider.Month {
	seen := map[provider.Month]bool{}
	var out []provider.Month
	for _, c := range d.Costs {
		if !seen[c.Month] {
			seen[c.Month] = true
			out = append(out, c.Month)
		}
	}
	slices.Sort(out)
	return out
}

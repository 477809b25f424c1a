// Package ocifake is an in-process Oracle Cloud Usage API: POST
// /20200107/usageCarbonEmissions and, for cost, POST /20200107/usage
// (RequestSummarizedUsages, COST queries, grouped by one tag or not) with
// their JSON, grouping, compartment depth and opc-next-page paging,
// behind OCI's HTTP request signatures, which it checks for shape and,
// given the caller's public key, verifies.
// Tests drive the real oci provider and the real oci-go-sdk client
// against it over HTTP, and the exporter's demo mode serves its built-in
// tenancy, so both exercise the production code path.
//
// The fake keeps its own reading of the API (units, wire names, the
// publication delay) rather than importing the provider's, so that a
// mistake in the provider shows up as a difference instead of being
// mirrored. Its cost derives from its emissions (Dataset.WithCosts) and
// runs past the latest published month to the current month to date; its
// tags split that cost (Dataset.WithTags), and Dataset.TagTotals is what
// a client grouping by a tag must find.
package ocifake

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The fake's own reading of Oracle's documentation and SDK: the Usage API
// reports computedCarbonEmission in metric tons (MTCO2e); Oracle publishes
// no date for a month's carbon figures, so the fake takes them to be
// there from the 4th of the next month.
const (
	gramsPerMetricTon = 1e6
	publishDelay      = 3 * 24 * time.Hour
	// DemoMonths is how many months Demo covers: more than a year, so
	// that year-over-year comparisons have data.
	DemoMonths = 15
)

// Calculation methods and emission types, as the API spells them.
const (
	PowerBased    = "POWER_BASED"
	SpendBased    = "SPEND_BASED"
	LocationBased = "LOCATION_BASED"
	MarketBased   = "MARKET_BASED"
)

// Row is one compartment / service / region / month figure, in the API's
// unit, metric tons of CO2e. Power-based figures come in both emission
// types; spend-based ones are market-based only, as Oracle documents.
type Row struct {
	// CompartmentPath is the compartment's path from the root, whose
	// first element is the tenancy's name: "acme/prod/web".
	CompartmentPath string
	Service, Region string
	Month           provider.Month

	PowerLocation, PowerMarket, SpendMarket float64
	// SpendOnly marks a service that power-based calculations do not
	// cover: it has spend-based figures only, and power-based queries
	// leave it out.
	SpendOnly bool
}

// Dataset is what the fake serves: one tenancy's rows, and its cost.
type Dataset struct {
	TenancyID, TenancyName string
	Rows                   []Row

	// Costs are the tenancy's cost (see WithCosts) in Currency
	// (DefaultCurrency when empty), and Today the clock of cost queries:
	// the current month is the month of Today, to date, and no query
	// may end after it. A zero Today is the time of each request.
	Costs    []CostRow
	Currency string
	Today    time.Time
}

// Months returns the months that have rows, oldest first.
func (d Dataset) Months() []provider.Month {
	var ms []provider.Month
	for _, r := range d.Rows {
		ms = append(ms, r.Month)
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

// value returns the row's figure for a method and an emission type, and
// whether the API has one.
func (r Row) value(method, emissionType string) (float64, bool) {
	switch {
	case method == PowerBased && emissionType == LocationBased:
		return r.PowerLocation, !r.SpendOnly
	case method == PowerBased && emissionType == MarketBased:
		return r.PowerMarket, !r.SpendOnly
	case method == SpendBased && emissionType == MarketBased:
		return r.SpendMarket, true
	}
	return 0, false
}

// Totals sums month m in metric tons for a method ("POWER_BASED" or
// "SPEND_BASED"), location-based and market-based, over every dimension.
func (d Dataset) Totals(m provider.Month, method string) (location, market float64) {
	for _, r := range d.Rows {
		if r.Month != m {
			continue
		}
		if v, ok := r.value(method, LocationBased); ok {
			location += v
		}
		if v, ok := r.value(method, MarketBased); ok {
			market += v
		}
	}
	return location, market
}

// TotalBase is Totals in grams of CO2e: what the exporter's location-based
// and market-based families must each sum to for month m.
func (d Dataset) TotalBase(m provider.Month, method string) (locationGrams, marketGrams float64) {
	l, mb := d.Totals(m, method)
	return l * gramsPerMetricTon, mb * gramsPerMetricTon
}

// Reported sums month m as the API reports it for a method, in grams of
// CO2e by quantity: power-based calculations give location-based and
// market-based figures, spend-based ones market-based figures only.
func (d Dataset) Reported(m provider.Month, method string) map[provider.Quantity]float64 {
	l, mb := d.TotalBase(m, method)
	if method == SpendBased {
		return map[provider.Quantity]float64{provider.EmissionsMarketBased: mb}
	}
	return map[provider.Quantity]float64{provider.Emissions: l, provider.EmissionsMarketBased: mb}
}

// Compartments returns the compartment paths that have rows, sorted.
func (d Dataset) Compartments() []string {
	var cs []string
	for _, r := range d.Rows {
		cs = append(cs, r.CompartmentPath)
	}
	slices.Sort(cs)
	return slices.Compact(cs)
}

// LatestPublished returns the latest month the fake takes Oracle to have
// published by now.
func LatestPublished(now time.Time) provider.Month {
	return provider.Schedule{PublishDelay: publishDelay}.LatestPublished(now)
}

// The demo tenancy. OCIDs have Oracle's shape; they open nothing.
const (
	DemoTenancyID   = "ocid1.tenancy.oc1..aaaaaaaacloudcarbondemotenancy0000000000000000000000000000"
	DemoTenancyName = "acme"
	DemoUserID      = "ocid1.user.oc1..aaaaaaaacloudcarbondemouser000000000000000000000000000000000"
	DemoRegion      = "us-ashburn-1"
)

type demoCompartment struct {
	path     string
	regions  []string
	services []string
	scale    float64
	growth   float64 // monthly
}

// Demo returns a deterministic, plausible tenancy: the root compartment
// and five below it (two levels deep), four regions, compute, storage,
// database, networking and Kubernetes, DemoMonths months ending with the
// latest month published by now. Power-based figures exist for most
// services; API Gateway has spend-based figures only, as services that
// power-based calculations do not cover; and the cost of every month
// through the current one to date (WithCosts), tagged by team and, in
// the OKE cluster's compartment, by Kubernetes namespace (WithTags). A month's figures depend
// only on the month, not on now (but for the cost of the months not
// published yet), so a demo that runs for weeks shows a stable history.
func Demo(now time.Time) Dataset {
	last := LatestPublished(now)
	first := last.Add(-(DemoMonths - 1))

	weights := map[string]float64{
		"COMPUTE": 1.0, "CONTAINER_ENGINE": 0.6, "DATABASE": 0.7, "BLOCK_STORAGE": 0.25,
		"OBJECT_STORAGE": 0.15, "NETWORK": 0.05, "API_GATEWAY": 0.02,
	}
	// Grid intensity relative to the average, and the share of it Oracle's
	// energy purchases remove from market-based figures (Oracle: European
	// regions have market-based zero emission factors).
	grid := map[string]struct{ intensity, matched float64 }{
		"us-ashburn-1": {1.0, 0.6}, "us-phoenix-1": {0.9, 0.5},
		"eu-frankfurt-1": {0.75, 1}, "ap-tokyo-1": {1.3, 0.2},
	}
	compartments := []demoCompartment{
		{path: DemoTenancyName, scale: 0.05, regions: []string{"us-ashburn-1"},
			services: []string{"OBJECT_STORAGE", "NETWORK"}},
		{path: DemoTenancyName + "/prod/web", scale: 1.0, growth: 0.012, regions: []string{"us-ashburn-1", "eu-frankfurt-1"},
			services: []string{"COMPUTE", "CONTAINER_ENGINE", "BLOCK_STORAGE", "NETWORK", "API_GATEWAY"}},
		{path: DemoTenancyName + "/prod/data", scale: 1.3, growth: 0.02, regions: []string{"us-ashburn-1", "us-phoenix-1"},
			services: []string{"DATABASE", "BLOCK_STORAGE", "OBJECT_STORAGE"}},
		{path: DemoTenancyName + "/staging", scale: 0.3, regions: []string{"eu-frankfurt-1", "ap-tokyo-1"},
			services: []string{"COMPUTE", "DATABASE", "BLOCK_STORAGE"}},
		{path: DemoTenancyName + "/shared/network", scale: 0.2, growth: -0.005, regions: []string{"us-ashburn-1", "eu-frankfurt-1", "ap-tokyo-1"},
			services: []string{"NETWORK", "COMPUTE"}},
		{path: DemoTenancyName + "/sandbox", scale: 0.08, regions: []string{"us-phoenix-1"},
			services: []string{"COMPUTE", "OBJECT_STORAGE"}},
	}

	ds := Dataset{TenancyID: DemoTenancyID, TenancyName: DemoTenancyName}
	// epoch anchors growth, so that a month's value does not depend on now.
	epoch := provider.NewMonth(2024, time.January)
	for _, c := range compartments {
		for _, svc := range c.services {
			for _, region := range c.regions {
				key := c.path + "|" + svc + "|" + region
				rng := rand.New(rand.NewPCG(seed(key), 1))
				// Location-based metric tons a month at the epoch: tens to
				// hundreds of kilograms.
				base := 0.3 * weights[svc] * c.scale * grid[region].intensity * (0.6 + 0.8*rng.Float64())
				spendFactor := 0.5 + 0.4*rng.Float64()
				for m := first; m <= last; m++ {
					noise := rand.New(rand.NewPCG(seed(key), uint64(m)))
					season := 1 + 0.07*math.Cos(2*math.Pi*float64(int(m.Month())-1)/12)
					loc := base * math.Pow(1+c.growth, float64(m-epoch)) * season * (0.95 + 0.1*noise.Float64())
					r := Row{
						CompartmentPath: c.path, Service: svc, Region: region, Month: m,
						PowerLocation: round6(loc),
						PowerMarket:   round6(loc * (1 - grid[region].matched)),
						SpendMarket:   round6(loc * spendFactor * (1 - grid[region].matched/2)),
					}
					if svc == "API_GATEWAY" {
						r.PowerLocation, r.PowerMarket, r.SpendOnly = 0, 0, true
					}
					ds.Rows = append(ds.Rows, r)
				}
			}
		}
	}
	return ds.WithCosts(now).WithTags(DemoTeams, DemoNamespaces)
}

// The demo tenancy's tags: teams, a free-form tag on every service but
// for a fifth of the cost, and the Kubernetes namespaces that the
// platform team's OKE cluster in acme/prod/web puts on its worker nodes,
// load balancers and volumes (OCI adds none of its own: see the oci
// package's README section).
var (
	DemoTeams = TagPlan{Namespace: FreeformNamespace, Key: "team",
		Values: []string{"storefront", "payments", "analytics", "platform"}, Untagged: 0.2}
	DemoNamespaces = TagPlan{Namespace: FreeformNamespace, Key: "k8s-namespace",
		Values: []string{"shop", "checkout", "search", "monitoring", "kube-system"}, Untagged: 0.15,
		Where: func(c CostRow) bool {
			return c.CompartmentPath == DemoTenancyName+"/prod/web" && slices.Contains([]string{"CONTAINER_ENGINE", "COMPUTE", "BLOCK_STORAGE", "NETWORK"}, c.Service)
		}}
)

func seed(key string) uint64 {
	sum := sha256.Sum256([]byte("cloudcarbon-demo/oci/" + key))
	return binary.LittleEndian.Uint64(sum[:8])
}

// round6 keeps the micro-ton (gram) precision of the API's figures.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// truncatePath keeps a compartment path's root and its first depth levels,
// which is how the fake reads compartmentDepth: deeper compartments are
// reported under their ancestor at that depth.
func truncatePath(path string, depth int) string {
	parts := strings.Split(path, "/")
	if len(parts) > depth+1 {
		parts = parts[:depth+1]
	}
	return strings.Join(parts, "/")
}

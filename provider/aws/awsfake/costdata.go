package awsfake

import (
	"cmp"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// CostRow is one line of the fake's Cost Explorer: a usage account,
// region and service as Cost Explorer names them (SERVICE is a display
// name such as "Amazon Elastic Compute Cloud - Compute", REGION is
// "NoRegion" for charges tied to none), a record type (RECORD_TYPE:
// "Usage", "Tax", "Credit", ...) and the month's cost in US dollars, both
// amortized (upfront and recurring commitment fees spread over the usage
// they cover) and unblended (as billed), and the cost allocation tags
// of its resources (see WithTags).
type CostRow struct {
	Account, Region, Service, RecordType string
	Month                                provider.Month

	Amortized, Unblended float64

	// Tags are the line's cost allocation tags by key, as Cost Explorer
	// groups by them once the keys are activated: a key the map lacks,
	// or maps to "", is cost without the tag.
	Tags map[string]string
}

// Record types of the fake's cost rows, as Cost Explorer spells them.
const (
	RecordUsage  = "Usage"
	RecordTax    = "Tax"
	RecordCredit = "Credit"
	RecordRefund = "Refund"
)

// NoRegion is Cost Explorer's REGION of charges tied to no region (taxes).
const NoRegion = "NoRegion"

// TaxService is Cost Explorer's SERVICE of tax lines.
const TaxService = "Tax"

// ceServices is the fake's own reading of how Cost Explorer names the
// services the Sustainability API reports under their product codes:
// each code's share of the cost goes to each of its Cost Explorer
// services. EC2's instances are "Amazon Elastic Compute Cloud - Compute",
// its volumes, snapshots and NAT gateways "EC2 - Other". A code it does
// not know keeps its own name.
var ceServices = map[string][]struct {
	name  string
	share float64
}{
	"AmazonEC2":        {{"Amazon Elastic Compute Cloud - Compute", 0.8}, {"EC2 - Other", 0.2}},
	"AmazonEKS":        {{"Amazon Elastic Container Service for Kubernetes", 1}},
	"AmazonECS":        {{"Amazon Elastic Container Service", 1}},
	"AmazonRDS":        {{"Amazon Relational Database Service", 1}},
	"AmazonS3":         {{"Amazon Simple Storage Service", 1}},
	"AmazonDynamoDB":   {{"Amazon DynamoDB", 1}},
	"AWSLambda":        {{"AWS Lambda", 1}},
	"AmazonCloudFront": {{"Amazon CloudFront", 1}},
	"AmazonRoute53":    {{"Amazon Route 53", 1}},
}

// CostExplorerNames returns the Cost Explorer services the fake bills a
// product code's usage under.
func CostExplorerNames(code string) []string {
	var names []string
	for _, s := range ceServices[code] {
		names = append(names, s.name)
	}
	if names == nil {
		names = []string{code}
	}
	return names
}

// How the fake prices emissions: a location-based intensity in grams of
// CO2e per dollar for each service (a dollar of storage carries less
// energy than a dollar of compute), times the region's grid (relative to
// the average), drifting down by driftPerMonth a month from costEpoch as
// grids decarbonise and prices move, with noise of ±noise per key and
// month; the current month is its cost to date. The months after the
// dataset's latest (AWS publishes two or three months late, the cost is
// there the next day) carry each key's emissions of the latest month with
// ±usageNoise of change in usage; a key without emissions in a published
// month had no usage, and no cost, then.
const (
	driftPerMonth = 0.004
	noise         = 0.04
	usageNoise    = 0.03
	taxRate       = 0.08
	creditRate    = 0.05
)

var (
	costEpoch = provider.NewMonth(2024, time.January)

	gramsPerDollar = map[string]float64{
		"AmazonEC2": 260, "AmazonEKS": 230, "AmazonECS": 230, "AmazonRDS": 180, "AmazonS3": 90,
		"AmazonDynamoDB": 70, "AWSLambda": 120, "AmazonCloudFront": 40, "AmazonRoute53": 10,
	}
	gridFactor = map[string]float64{
		"us-east-1": 1.0, "us-west-2": 0.35, "eu-west-1": 0.8, "eu-central-1": 0.9, "ap-southeast-2": 1.7, "global": 1.0,
	}
)

// WithCosts returns d with Cost Explorer's data for every usage account,
// region and service of its rows, from the first month the key has
// emissions through the month of now, to date: each month's location-based
// emissions divided by a grams-per-dollar intensity (see driftPerMonth),
// billed under the service's Cost Explorer names, plus each account's tax
// and, for the first account, a monthly credit, which are cost but carry
// no emissions. now becomes the fake's clock for Cost Explorer
// (Dataset.Today). A key's cost depends only on the key, the month and
// the rows, never on the other keys.
func (d Dataset) WithCosts(now time.Time) Dataset {
	now = now.UTC()
	current := provider.MonthOf(now)
	elapsed := float64(now.Sub(current.Start())) / float64(current.End().Sub(current.Start()))

	type key struct{ account, region, service string }
	emissions := make(map[key]map[provider.Month]float64)
	var lastPublished provider.Month
	for _, r := range d.Rows {
		lastPublished = max(lastPublished, r.Month)
		k := key{r.Account, r.Region, r.Service}
		if emissions[k] == nil {
			emissions[k] = make(map[provider.Month]float64)
		}
		emissions[k][r.Month] += (r.Scope1 + r.Scope2LBM + r.Scope3LBM) * gramsPerMetricTon
	}
	keys := slices.SortedFunc(maps.Keys(emissions), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.account, b.account), cmp.Compare(a.region, b.region), cmp.Compare(a.service, b.service))
	})

	d.Costs = nil
	usage := make(map[string]map[provider.Month]float64) // by account
	var creditKey *key
	for _, k := range keys {
		byMonth := emissions[k]
		first := slices.Min(slices.Collect(maps.Keys(byMonth)))
		id := k.account + "/" + k.region + "/" + k.service
		intensity := cmp.Or(gramsPerDollar[k.service], 100+200*rand.New(rand.NewPCG(costSeed(id), 0)).Float64())
		grid, ok := gridFactor[k.region]
		if !ok {
			grid = 0.5 + rand.New(rand.NewPCG(costSeed(id), 1)).Float64()
		}
		for m := first; m <= current; m++ {
			rng := rand.New(rand.NewPCG(costSeed(id), uint64(m)))
			grams, published := byMonth[m]
			if !published {
				// A key without emissions in a published month had no
				// usage; after the latest published month, the keys of
				// that month go on with their usage.
				latest, ok := byMonth[lastPublished]
				if m <= lastPublished || !ok {
					continue
				}
				grams = latest * (1 + usageNoise*(2*rng.Float64()-1))
			}
			perDollar := intensity * grid * math.Pow(1-driftPerMonth, float64(m-costEpoch)) * (1 + noise*(2*rng.Float64()-1))
			cost := grams / perDollar
			if m == current {
				cost *= elapsed
			}
			if cost <= 0 {
				continue
			}
			if usage[k.account] == nil {
				usage[k.account] = make(map[provider.Month]float64)
			}
			for i, s := range ceServices[k.service] {
				amortized := round4(cost * s.share)
				// Unblended differs by the commitments the amortized cost
				// spreads: up to 15% either way.
				unblended := round4(amortized * (0.85 + 0.3*rand.New(rand.NewPCG(costSeed(id+"/unblended"), uint64(m)*8+uint64(i))).Float64()))
				d.Costs = append(d.Costs, CostRow{Account: k.account, Region: k.region, Service: s.name, RecordType: RecordUsage, Month: m,
					Amortized: amortized, Unblended: unblended})
				usage[k.account][m] += amortized
			}
			if _, ok := ceServices[k.service]; !ok {
				c := round4(cost)
				d.Costs = append(d.Costs, CostRow{Account: k.account, Region: k.region, Service: k.service, RecordType: RecordUsage, Month: m,
					Amortized: c, Unblended: c})
				usage[k.account][m] += c
			}
			if creditKey == nil || *creditKey == k {
				creditKey = &k
				c := -round4(cost * creditRate)
				d.Costs = append(d.Costs, CostRow{Account: k.account, Region: k.region, Service: CostExplorerNames(k.service)[0],
					RecordType: RecordCredit, Month: m, Amortized: c, Unblended: c})
			}
		}
	}
	for _, account := range slices.Sorted(maps.Keys(usage)) {
		for _, m := range slices.Sorted(maps.Keys(usage[account])) {
			tax := round4(usage[account][m] * taxRate)
			d.Costs = append(d.Costs, CostRow{Account: account, Region: NoRegion, Service: TaxService, RecordType: RecordTax, Month: m,
				Amortized: tax, Unblended: tax})
		}
	}
	d.Today = now
	return d
}

// CostTotal is the cost of month m that an exporter reading Cost
// Explorer must serve, in US dollars: the amortized cost of usage, less
// credits, refunds and taxes, which carry no emissions.
func (d Dataset) CostTotal(m provider.Month) float64 {
	var sum float64
	for _, c := range d.Costs {
		if c.Month == m && c.usage() {
			sum += c.Amortized
		}
	}
	return sum
}

// usage reports whether the line is usage, which carries emissions:
// credits, refunds and taxes do not.
func (c CostRow) usage() bool {
	return c.RecordType != RecordTax && c.RecordType != RecordCredit && c.RecordType != RecordRefund
}

// CostMonths returns the months that have cost rows, oldest first.
func (d Dataset) CostMonths() []provider.Month {
	var ms []provider.Month
	for _, c := range d.Costs {
		ms = append(ms, c.Month)
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

// today returns the fake's Cost Explorer clock.
func (d Dataset) today() time.Time {
	if d.Today.IsZero() {
		return time.Now().UTC()
	}
	return d.Today.UTC()
}

func costSeed(key string) uint64 { return seed("cost/" + key) }

// round4 keeps four decimals of a dollar, finer than Cost Explorer's
// bills and coarse enough to read.
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

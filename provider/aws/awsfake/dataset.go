// Package awsfake is an in-process AWS: the Sustainability API (restJson1),
// Organizations ListAccounts and Cost Explorer GetCostAndUsage, by
// dimensions and cost allocation tags (awsJson1.1), and STS AssumeRole
// and AssumeRoleWithWebIdentity (awsQuery), on one handler, checking
// every SigV4 signature by computing it again with the SDK's own signer. Tests
// drive the real aws provider, the real credential chain included, against
// it over HTTP, and the exporter's demo mode serves its built-in
// organization, so both exercise the production code path.
//
// The fake keeps its own reading of the API (units, publication delay,
// wire names, Cost Explorer's names of the services) rather than
// importing the provider's, so that a mistake in the provider shows up as
// a difference instead of being mirrored. Its cost data derives from its
// carbon data (Dataset.WithCosts), and runs past the latest published
// month to the current month to date, as Cost Explorer's does; its tags
// (Dataset.WithTags) split that cost without changing it.
package awsfake

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The fake's own reading of AWS's documentation: the API reports carbon in
// metric tonnes of CO2e (MTCO2e) and water in cubic metres; a month is
// published between the 15th and the 21st of the next, which the fake
// takes as the start of the 16th; the API serves 38 months.
const (
	gramsPerMetricTon = 1e6
	publishDelay      = 15 * 24 * time.Hour
	// DemoMonths is how many months Demo covers: what AWS serves.
	DemoMonths = 38
)

// Model versions the fake reports unless a dataset says otherwise.
const (
	DefaultModelVersion      = "v3.0.0"
	DefaultWaterModelVersion = "v1.0.0"
)

// Row is one usage account / region / service / month figure, in the
// API's unit, MTCO2e. The totals the API reports are computed from it:
// location-based = Scope1 + Scope2LBM + Scope3LBM, market-based = Scope1 +
// Scope2MBM + Scope3MBM.
type Row struct {
	Account, Region, Service string
	Month                    provider.Month

	Scope1, Scope2LBM, Scope2MBM, Scope3LBM, Scope3MBM float64
}

// WaterRow is one usage account / region / service / calendar year of
// water withdrawals, in cubic metres: AWS reports water per calendar year
// only.
type WaterRow struct {
	Account, Region, Service string
	Year                     int
	Withdrawals              float64
}

// Account is a member account of the organization.
type Account struct {
	ID, Name, Email string
}

// Dataset is what the fake serves.
type Dataset struct {
	// OrganizationID ("o-…") and ManagementAccount (an account id) describe
	// the organization; with no OrganizationID, ListAccounts answers
	// AWSOrganizationsNotInUseException as AWS does for a standalone
	// account.
	OrganizationID    string
	ManagementAccount string
	Accounts          []Account

	Rows  []Row
	Water []WaterRow

	// ModelVersion is the carbon model version of every month that
	// ModelVersions does not name; "" means DefaultModelVersion. AWS shows
	// each month under its latest model only, so a changed version is a
	// restatement.
	ModelVersion  string
	ModelVersions map[provider.Month]string
	// WaterModelVersion is "" for DefaultWaterModelVersion.
	WaterModelVersion string

	// Costs are Cost Explorer's lines (see WithCosts), and Today its
	// clock: the current month is the month of Today, to date, and the
	// periods Cost Explorer accepts are relative to it. A zero Today is
	// the time of each request.
	Costs []CostRow
	Today time.Time
}

// modelVersion returns month m's carbon model version.
func (d Dataset) modelVersion(m provider.Month) string {
	if v, ok := d.ModelVersions[m]; ok {
		return v
	}
	return cmp.Or(d.ModelVersion, DefaultModelVersion)
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

// Totals sums month m in MTCO2e, as the API's TOTAL_LBM_CARBON_EMISSIONS
// and TOTAL_MBM_CARBON_EMISSIONS would over every dimension.
func (d Dataset) Totals(m provider.Month) (lbm, mbm float64) {
	for _, r := range d.Rows {
		if r.Month == m {
			lbm += r.Scope1 + r.Scope2LBM + r.Scope3LBM
			mbm += r.Scope1 + r.Scope2MBM + r.Scope3MBM
		}
	}
	return lbm, mbm
}

// TotalBase is Totals in grams of CO2e: what the exporter's location-based
// and market-based families must each sum to for month m.
func (d Dataset) TotalBase(m provider.Month) (lbmGrams, mbmGrams float64) {
	lbm, mbm := d.Totals(m)
	return lbm * gramsPerMetricTon, mbm * gramsPerMetricTon
}

// Reported is TotalBase by quantity: the API reports every result in
// both methods.
func (d Dataset) Reported(m provider.Month) map[provider.Quantity]float64 {
	lbm, mbm := d.TotalBase(m)
	return map[provider.Quantity]float64{provider.Emissions: lbm, provider.EmissionsMarketBased: mbm}
}

// ScopeBase sums one scope of month m in grams of CO2e, location-based
// and market-based; scope 1 has one figure, reported as both.
func (d Dataset) ScopeBase(m provider.Month, scope int) (lbmGrams, mbmGrams float64) {
	for _, r := range d.Rows {
		if r.Month != m {
			continue
		}
		switch scope {
		case 1:
			lbmGrams += r.Scope1
			mbmGrams += r.Scope1
		case 2:
			lbmGrams += r.Scope2LBM
			mbmGrams += r.Scope2MBM
		case 3:
			lbmGrams += r.Scope3LBM
			mbmGrams += r.Scope3MBM
		}
	}
	return lbmGrams * gramsPerMetricTon, mbmGrams * gramsPerMetricTon
}

// WaterTotal sums year's water withdrawals in cubic metres.
func (d Dataset) WaterTotal(year int) float64 {
	var sum float64
	for _, w := range d.Water {
		if w.Year == year {
			sum += w.Withdrawals
		}
	}
	return sum
}

// WaterYears returns the years that have water rows, oldest first.
func (d Dataset) WaterYears() []int {
	var ys []int
	for _, w := range d.Water {
		ys = append(ys, w.Year)
	}
	slices.Sort(ys)
	return slices.Compact(ys)
}

// LatestPublished returns the latest month AWS has published by now.
func LatestPublished(now time.Time) provider.Month {
	return provider.Schedule{PublishDelay: publishDelay}.LatestPublished(now)
}

// Demo organization: ids are 12 digits as AWS's are, the organization id
// has AWS's shape.
const (
	DemoOrganizationID    = "o-a1b2c3d4e5"
	DemoManagementAccount = "314159265358"
	// demoSandbox is the account whose cost carries no team.
	demoSandbox = "173205080756"
)

type demoAccount struct {
	id, name string
	// regions and services the account runs; services in globalServices
	// run in the "global" region instead.
	regions, services []string
	scale, growth     float64 // monthly growth
}

// Demo returns a deterministic, plausible organization: a management
// account and four members, regional services in five regions plus the
// global ones (CloudFront, Route 53) under "global", DemoMonths months
// ending with the latest month AWS has published by now, and water for
// every calendar year those months complete, and Cost Explorer's cost of
// every month through the current one (WithCosts), tagged by team
// (Teams: web, data, ml and platform, the sandbox account untagged). A
// month's figures
// depend only on the month, not on now (but for the cost of the months
// not published yet), so a demo that runs for weeks shows a stable
// history.
func Demo(now time.Time) Dataset {
	last := LatestPublished(now)
	first := last.Add(-(DemoMonths - 1))

	// Relative carbon of a typical footprint of each service.
	weights := map[string]float64{
		"AmazonEC2": 1.0, "AmazonEKS": 0.7, "AmazonRDS": 0.55, "AmazonS3": 0.3,
		"AmazonDynamoDB": 0.2, "AWSLambda": 0.1, "AmazonCloudFront": 0.15, "AmazonRoute53": 0.01,
	}
	globalServices := map[string]bool{"AmazonCloudFront": true, "AmazonRoute53": true}
	// Grid carbon intensity relative to the average, and how much of it
	// AWS's energy contracts remove from the market-based figure.
	grid := map[string]struct{ intensity, matched float64 }{
		"us-east-1": {1.0, 0.9}, "us-west-2": {0.35, 0.97}, "eu-west-1": {0.8, 0.95},
		"eu-central-1": {0.9, 0.92}, "ap-southeast-2": {1.7, 0.6}, "global": {1.0, 0.85},
	}
	accounts := []demoAccount{
		{id: DemoManagementAccount, name: "acme-management", scale: 0.05, growth: 0,
			regions: []string{"us-east-1"}, services: []string{"AmazonS3", "AWSLambda", "AmazonRoute53"}},
		{id: "271828182845", name: "acme-prod-web", scale: 1.0, growth: 0.01,
			regions:  []string{"us-east-1", "us-west-2", "eu-west-1"},
			services: []string{"AmazonEC2", "AmazonEKS", "AmazonS3", "AmazonCloudFront", "AmazonRoute53", "AWSLambda"}},
		{id: "161803398874", name: "acme-prod-data", scale: 1.4, growth: 0.02,
			regions:  []string{"us-east-1", "eu-central-1"},
			services: []string{"AmazonEC2", "AmazonRDS", "AmazonS3", "AmazonDynamoDB"}},
		{id: "141421356237", name: "acme-staging", scale: 0.3, growth: 0,
			regions:  []string{"eu-west-1", "ap-southeast-2"},
			services: []string{"AmazonEC2", "AmazonEKS", "AmazonRDS", "AmazonS3"}},
		{id: demoSandbox, name: "acme-sandbox", scale: 0.1, growth: -0.01,
			regions:  []string{"us-west-2"},
			services: []string{"AmazonEC2", "AWSLambda", "AmazonDynamoDB"}},
	}

	ds := Dataset{OrganizationID: DemoOrganizationID, ManagementAccount: DemoManagementAccount}
	// epoch anchors growth, so that a month's value does not depend on now.
	epoch := provider.NewMonth(2024, time.January)
	for _, a := range accounts {
		ds.Accounts = append(ds.Accounts, Account{ID: a.id, Name: a.name, Email: "aws+" + a.name + "@example.com"})
		for _, svc := range a.services {
			regions := a.regions
			if globalServices[svc] {
				regions = []string{"global"}
			}
			for _, region := range regions {
				key := a.id + "/" + region + "/" + svc
				rng := rand.New(rand.NewPCG(seed(key), 1))
				// Location-based MTCO2e of this account/service/region per
				// month at the epoch: tens to hundreds of kilograms.
				base := 0.4 * weights[svc] * a.scale * grid[region].intensity * (0.6 + 0.8*rng.Float64())
				s1Share := 0.01 + 0.01*rng.Float64()
				s3Share := 0.25 + 0.2*rng.Float64()
				waterPerTon := 2 + 3*rng.Float64() // m3 per MTCO2e location-based
				water := map[int]float64{}
				for m := first; m <= last; m++ {
					noise := rand.New(rand.NewPCG(seed(key), uint64(m)))
					season := 1 + 0.08*math.Cos(2*math.Pi*float64(int(m.Month())-7)/12)
					total := base * math.Pow(1+a.growth, float64(m-epoch)) * season * (0.95 + 0.1*noise.Float64())
					s1 := total * s1Share
					s3l := total * s3Share
					s2l := total - s1 - s3l
					ds.Rows = append(ds.Rows, Row{
						Account: a.id, Region: region, Service: svc, Month: m,
						Scope1:    round6(s1),
						Scope2LBM: round6(s2l),
						Scope2MBM: round6(s2l * (1 - grid[region].matched)),
						Scope3LBM: round6(s3l),
						Scope3MBM: round6(s3l * 1.04),
					})
					water[m.Year()] += total * waterPerTon
				}
				// AWS reports a calendar year once it is over; only years
				// the demo covers entirely have water.
				for y := first.Year(); y <= last.Year(); y++ {
					if first <= provider.NewMonth(y, time.January) && provider.NewMonth(y, time.December) <= last {
						ds.Water = append(ds.Water, WaterRow{Account: a.id, Region: region, Service: svc, Year: y, Withdrawals: round6(water[y])})
					}
				}
			}
		}
	}
	return ds.WithCosts(now).WithTags(TeamKey, Teams(demoSandbox))
}

func seed(key string) uint64 {
	sum := sha256.Sum256([]byte("cloudcarbon-demo/aws/" + key))
	return binary.LittleEndian.Uint64(sum[:8])
}

// round6 keeps the micro-tonne (gram) precision the API's figures have.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

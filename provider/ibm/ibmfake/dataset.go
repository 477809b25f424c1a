// Package ibmfake is an in-process IBM Cloud Carbon Calculator and IAM
// token endpoint. Tests drive the real ibm provider against it over HTTP,
// and the exporter's demo mode serves its built-in dataset, so both
// exercise the same code path as production.
package ibmfake

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Row is one account / service / location / resource group / month figure,
// the grain of the API's group_by=none answer.
type Row struct {
	AccountID, Service, Location, ResourceGroupID string
	Month                                         provider.Month
	// In the API's own units: grams of CO2e and watt-hours.
	CarbonEmission, EnergyConsumption float64
}

// Entity types.
const (
	TypeAccount      = "account"
	TypeAccountGroup = "account_group"
	TypeEnterprise   = "enterprise"
)

// Entity is an enterprise, account group or account of an enterprise
// dataset. ParentName is denormalised because the API reports it.
type Entity struct{ Type, ID, Name, ParentID, ParentName string }

// CostRow is the cost of one account / service / location / month, the
// usage the Carbon Calculator's rows of the same key account for. The
// usage reports give it per account and resource (service) only: the fake
// sums over locations as IBM does.
type CostRow struct {
	AccountID, Service, Location string
	Month                        provider.Month
	// BillableUSD is the billable cost; NonBillableUSD the free tier's,
	// which the usage reports show apart.
	BillableUSD, NonBillableUSD float64
}

// Dataset is what the fake serves.
type Dataset struct {
	// EnterpriseID is "" for a standard account, which makes the
	// enterprise filters and groupings fail as they do for IBM.
	EnterpriseID string
	Entities     []Entity
	Rows         []Row
	// Costs are the usage reports' figures: for the months of Rows and
	// the months after them to now, the current one to date.
	Costs []CostRow
}

// CostTotal sums month m's billable cost of the accounts at or under
// entity (every account when entity is ""): what an exact client of the
// usage reports must report for that month, and whether there is any.
func (d Dataset) CostTotal(m provider.Month, entity string) (usd float64, ok bool) {
	under := map[string]bool{}
	if entity != "" {
		parent := map[string]string{}
		for _, e := range d.Entities {
			parent[e.ID] = e.ParentID
		}
		for _, e := range d.Entities {
			for id, n := e.ID, 0; id != "" && n <= len(d.Entities); id, n = parent[id], n+1 {
				if id == entity {
					under[e.ID] = true
					break
				}
			}
		}
	}
	for _, c := range d.Costs {
		if c.Month == m && (entity == "" || under[c.AccountID]) {
			usd += c.BillableUSD
			ok = true
		}
	}
	return usd, ok
}

// Total sums month m's rows, in API units: what an exact client must
// report for that month.
func (d Dataset) Total(m provider.Month) (carbon, energy float64) {
	for _, r := range d.Rows {
		if r.Month == m {
			carbon += r.CarbonEmission
			energy += r.EnergyConsumption
		}
	}
	return carbon, energy
}

// DemoMonths is how many months Demo covers.
const DemoMonths = 15

// The fake's own reading of IBM's documentation, kept apart from the
// client's constants so that a unit or schedule error in the client shows
// up as a difference from the fake instead of being mirrored by it: IBM
// publishes a month about 16 days after it closes, carbon_emission is in
// grams of CO2e and energy_consumption in watt-hours.
const (
	publishDelay   = 16 * 24 * time.Hour
	gramsPerUnit   = 1.0
	joulesPerWattH = 3600.0
)

// LatestPublished returns the latest month IBM has published by now.
func LatestPublished(now time.Time) provider.Month {
	return provider.Schedule{PublishDelay: publishDelay}.LatestPublished(now)
}

// TotalBase sums month m's rows in base units (grams of CO2e, joules):
// what the exporter must report for that month.
func (d Dataset) TotalBase(m provider.Month) (grams, joules float64) {
	carbon, energy := d.Total(m)
	return carbon * gramsPerUnit, energy * joulesPerWattH
}

// demoID derives a stable 32-hex-digit id, the shape of IBM's ids.
func demoID(name string) string {
	sum := sha256.Sum256([]byte("cloudcarbon-demo/" + name))
	return hex.EncodeToString(sum[:16])
}

type demoAccount struct {
	name, parent string
	services     []string
	locations    []string
	groups       []string
	scale        float64
	growth       float64 // per month
}

// Demo returns a deterministic, plausible enterprise: two account groups,
// five accounts, seven services in six locations, several resource groups,
// DemoMonths months ending at the latest month IBM has published by now.
// A month's figures depend only on the month, not on now, so a demo that
// runs for weeks shows a stable history. The latest month has more than
// 100 rows so that clients page.
//
// Its usage reports run past the Carbon Calculator to now: the cost of
// every month of the range and of the months IBM has not published
// emissions for yet, the current one to date, from the same seeded
// footprint (see demoAccount.rows).
func Demo(now time.Time) Dataset {
	last := LatestPublished(now)
	first := last.Add(-(DemoMonths - 1))
	ent := Entity{Type: TypeEnterprise, ID: demoID("enterprise"), Name: "Acme Corp"}
	prod := Entity{Type: TypeAccountGroup, ID: demoID("group/production"), Name: "Production", ParentID: ent.ID, ParentName: ent.Name}
	nonprod := Entity{Type: TypeAccountGroup, ID: demoID("group/non-production"), Name: "Non-Production", ParentID: ent.ID, ParentName: ent.Name}
	parents := map[string]Entity{ent.Name: ent, prod.Name: prod, nonprod.Name: nonprod}

	ds := Dataset{EnterpriseID: ent.ID, Entities: []Entity{ent, prod, nonprod}}
	for _, a := range demoAccounts(prod.Name, nonprod.Name, ent.Name) {
		parent := parents[a.parent]
		acct := Entity{Type: TypeAccount, ID: demoID("account/" + a.name), Name: a.name, ParentID: parent.ID, ParentName: parent.Name}
		ds.Entities = append(ds.Entities, acct)
		rows, costs := a.rows(acct.ID, first, last, now)
		ds.Rows = append(ds.Rows, rows...)
		ds.Costs = append(ds.Costs, costs...)
	}
	return ds
}

// Account returns a standard account (no enterprise) of Demo's
// generator: the demo's account "prod-web", its carbon of the months
// months ending at the latest month IBM has published by now, and its
// usage reports from the first of them to now.
func Account(now time.Time, months int) Dataset {
	last := LatestPublished(now)
	a := demoAccounts("", "", "")[1]
	rows, costs := a.rows(demoID("account/"+a.name), last.Add(-(months - 1)), last, now)
	return Dataset{Rows: rows, Costs: costs}
}

// demoAccounts are the demo enterprise's accounts, under the account
// groups and enterprise named.
func demoAccounts(prod, nonprod, ent string) []demoAccount {
	return []demoAccount{
		{
			name: "prod-payments", parent: prod, scale: 1.0, growth: 0.012,
			services:  []string{"Virtual Server for VPC", "Kubernetes Service", "Cloud Object Storage", "Databases for PostgreSQL", "Event Streams"},
			locations: []string{"Dallas", "Washington DC", "Frankfurt", "London"},
			groups:    []string{"payments-prod", "shared-prod"},
		},
		{
			name: "prod-web", parent: prod, scale: 0.8, growth: 0.008,
			services:  []string{"Virtual Server for VPC", "Kubernetes Service", "Cloud Object Storage", "Code Engine"},
			locations: []string{"Dallas", "Washington DC", "London", "Tokyo", "Sydney"},
			groups:    []string{"web-prod", "shared-prod"},
		},
		{
			name: "data-platform", parent: ent, scale: 1.3, growth: 0.02,
			services:  []string{"Red Hat OpenShift on IBM Cloud", "Cloud Object Storage", "Databases for PostgreSQL", "Event Streams", "Virtual Server for VPC"},
			locations: []string{"Dallas", "Frankfurt"},
			groups:    []string{"data-ingest", "data-analytics", "default"},
		},
		{
			name: "staging", parent: nonprod, scale: 0.3, growth: 0.0,
			services:  []string{"Virtual Server for VPC", "Kubernetes Service", "Cloud Object Storage", "Databases for PostgreSQL", "Code Engine"},
			locations: []string{"Dallas", "Frankfurt"},
			groups:    []string{"staging", "default"},
		},
		{
			name: "sandbox", parent: nonprod, scale: 0.1, growth: -0.01,
			services:  []string{"Virtual Server for VPC", "Code Engine", "Cloud Object Storage"},
			locations: []string{"Dallas", "London"},
			groups:    []string{"default"},
		},
	}
}

// demoServiceWeight is the relative carbon of a typical footprint of each
// service.
func demoServiceWeight(svc string) float64 {
	return map[string]float64{
		"Virtual Server for VPC":         1.0,
		"Kubernetes Service":             1.4,
		"Red Hat OpenShift on IBM Cloud": 1.8,
		"Cloud Object Storage":           0.25,
		"Databases for PostgreSQL":       0.6,
		"Code Engine":                    0.15,
		"Event Streams":                  0.4,
	}[svc]
}

// demoIntensity is the grid intensity of a location in g CO2e per Wh,
// roughly the public grid averages; energy is derived from carbon with it
// so the two agree.
func demoIntensity(loc string) float64 {
	return map[string]float64{
		"Dallas":        0.38,
		"Washington DC": 0.32,
		"Frankfurt":     0.35,
		"London":        0.19,
		"Tokyo":         0.46,
		"Sydney":        0.62,
	}[loc]
}

// rows returns the account's carbon rows of months first to last, and
// its cost from first to the current month, to date: usage, priced per
// kWh by service and location, with a drift and noise of its own (see
// costFactor). A month's figures depend only on the month (growth is
// anchored at an epoch), so a demo that runs for weeks shows a stable
// history.
func (a demoAccount) rows(accountID string, first, last provider.Month, now time.Time) ([]Row, []CostRow) {
	epoch := provider.NewMonth(2024, time.January)
	current := provider.MonthOf(now)
	// The share of the current month that has passed: its cost to date.
	toDate := float64(now.Sub(current.Start())) / float64(current.End().Sub(current.Start()))
	var rows []Row
	var costs []CostRow
	for _, svc := range a.services {
		for _, loc := range a.locations {
			key := a.name + "/" + svc + "/" + loc
			rng := rand.New(rand.NewPCG(seed(key), 1))
			if rng.Float64() < 0.1 {
				continue // not every account runs every service everywhere
			}
			// Carbon of this account/service/location in grams per month
			// at the epoch: tens of kilograms.
			base := 20000 * demoServiceWeight(svc) * math.Sqrt(a.scale) * (0.6 + rng.Float64())
			base = min(max(base, 1500), 80000)
			shares := make([]float64, len(a.groups))
			var sum float64
			for i := range shares {
				shares[i] = 0.2 + rng.Float64()
				sum += shares[i]
			}
			for m := first; m <= current; m++ {
				noise := rand.New(rand.NewPCG(seed(key), uint64(m)))
				season := 1 + 0.06*math.Cos(2*math.Pi*float64(int(m.Month())-7)/12)
				carbon := base * math.Pow(1+a.growth, float64(m-epoch)) * season * (0.96 + 0.08*noise.Float64())
				if m <= last {
					for i, rg := range a.groups {
						c := carbon * shares[i] / sum
						rows = append(rows, Row{
							AccountID: accountID, Service: svc, Location: loc,
							ResourceGroupID: demoID("rg/" + a.name + "/" + rg), Month: m,
							CarbonEmission: round3(c), EnergyConsumption: round3(c / demoIntensity(loc)),
						})
					}
				}
				share := 1.0
				if m == current {
					share = toDate
				}
				kWh := carbon / demoIntensity(loc) / 1000
				usd := kWh * demoPricePerKWh(svc) * demoLocationPrice(loc) * costFactor(key, m) * share
				cost := CostRow{AccountID: accountID, Service: svc, Location: loc, Month: m, BillableUSD: round6(usd)}
				if svc == "Code Engine" || svc == "Cloud Object Storage" {
					cost.NonBillableUSD = round6(0.03 * usd) // the free tier
				}
				costs = append(costs, cost)
			}
		}
	}
	return rows, costs
}

// demoPricePerKWh is what a service's usage costs, in US dollars per kWh
// it draws: storage and managed services cost more per kWh than compute.
func demoPricePerKWh(svc string) float64 {
	return map[string]float64{
		"Virtual Server for VPC":         1.0,
		"Kubernetes Service":             1.2,
		"Red Hat OpenShift on IBM Cloud": 1.6,
		"Cloud Object Storage":           4.0,
		"Databases for PostgreSQL":       2.5,
		"Code Engine":                    1.8,
		"Event Streams":                  2.2,
	}[svc]
}

// demoLocationPrice is a location's price level.
func demoLocationPrice(loc string) float64 {
	return map[string]float64{
		"Dallas":        1.0,
		"Washington DC": 1.0,
		"Frankfurt":     1.08,
		"London":        1.06,
		"Tokyo":         1.12,
		"Sydney":        1.1,
	}[loc]
}

// costFactor is how a series' cost strays from its usage in month m: a
// slow drift of its own (prices and the mix of its usage change, up to
// 0.3% a month either way) and a few percent of noise, both seeded by the
// series, so that its emissions per dollar are plausible but never
// constant from one month to the next.
func costFactor(key string, m provider.Month) float64 {
	epoch := provider.NewMonth(2024, time.January)
	drift := 0.006 * (rand.New(rand.NewPCG(seed("cost/"+key), 1)).Float64() - 0.5)
	noise := rand.New(rand.NewPCG(seed("cost/"+key), uint64(m))).Float64()
	return math.Pow(1+drift, float64(m-epoch)) * (0.97 + 0.06*noise)
}

func seed(key string) uint64 {
	sum := sha256.Sum256([]byte(key))
	return binary.LittleEndian.Uint64(sum[:8])
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

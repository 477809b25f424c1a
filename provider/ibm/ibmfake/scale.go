package ibmfake

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// ScaleMonths is how many months Scale covers: the current month and the
// 13 before it that the exporter keeps as history.
const ScaleMonths = 14

// Shape of every Scale account, fixed so that the size of a dataset is
// exact; which services and locations an account uses varies.
const (
	scaleServices       = 7 // per account
	scaleLocationsFirst = 3 // locations of an account's first service
	scaleLocationsOther = 2 // locations of each other service
	// scalePairs is the (service, location) pairs of an account; the
	// first pair is split over two resource groups, the others sit in one.
	scalePairs = scaleLocationsFirst + (scaleServices-1)*scaleLocationsOther
	scaleRows  = scalePairs + 1 // per account and month
)

// Scale returns ScaleOver(now, accounts, ScaleMonths): the months the
// exporter exposes as history.
func Scale(now time.Time, accounts int) Dataset { return ScaleOver(now, accounts, ScaleMonths) }

// ScaleOver returns a deterministic enterprise of accounts accounts for
// load tests, in two account groups, over the months months ending at the
// latest month IBM has published by now. Every account runs 7 services,
// the first in 3 locations and the others in 2, so 15 (service, location)
// pairs, one of them split over 2 resource groups. Which services and
// locations an account uses, and every figure, come from generators
// seeded by the account's index, the service, the location and the month,
// so a month's figures depend on neither now, nor the number of accounts,
// nor the number of months.
//
// For n accounts over m months:
//
//	rows (group_by=none)                         16 × m × n
//	pages of 100 (all months in one query)       ⌈16mn / 100⌉
//	records (account, service, location, month)  15 × m × n
//
// and, with the exporter's default history of 13 months (14 months of
// data or more), 2 × 15 × 14 × n = 420n exposed series (emissions and
// energy, the latest month and the history), plus one account _info
// series per account. 250 accounts over ScaleMonths months give 56,000
// rows in 560 pages (and 3 pages of the accounts query), 52,500 records
// and 105,000 series.
func ScaleOver(now time.Time, accounts, months int) Dataset {
	last := LatestPublished(now)
	first := last.Add(-(max(months, 1) - 1))
	services := []struct {
		name   string
		weight float64
	}{
		{"Virtual Server for VPC", 1.0},
		{"Kubernetes Service", 1.4},
		{"Red Hat OpenShift on IBM Cloud", 1.8},
		{"Cloud Object Storage", 0.25},
		{"Databases for PostgreSQL", 0.6},
		{"Code Engine", 0.15},
		{"Event Streams", 0.4},
		{"Databases for MongoDB", 0.5},
		{"Bare Metal Servers for VPC", 2.2},
		{"Load Balancer for VPC", 0.1},
	}
	// Grid intensity in g CO2e per Wh, as in Demo.
	locations := []struct {
		name      string
		intensity float64
	}{
		{"Dallas", 0.38}, {"Washington DC", 0.32}, {"Frankfurt", 0.35}, {"London", 0.19},
		{"Tokyo", 0.46}, {"Sydney", 0.62}, {"Madrid", 0.17}, {"Toronto", 0.03},
	}

	ent := Entity{Type: TypeEnterprise, ID: demoID("scale/enterprise"), Name: "Scale Corp"}
	groups := []Entity{
		{Type: TypeAccountGroup, ID: demoID("scale/group/a"), Name: "Group A", ParentID: ent.ID, ParentName: ent.Name},
		{Type: TypeAccountGroup, ID: demoID("scale/group/b"), Name: "Group B", ParentID: ent.ID, ParentName: ent.Name},
	}
	ds := Dataset{EnterpriseID: ent.ID, Entities: append([]Entity{ent}, groups...)}
	if accounts > 0 {
		ds.Rows = make([]Row, 0, scaleRows*max(months, 1)*accounts)
	}
	epoch := provider.NewMonth(2024, time.January)
	for i := range max(accounts, 0) {
		name := fmt.Sprintf("scale-%05d", i+1)
		parent := groups[i%len(groups)]
		acct := Entity{Type: TypeAccount, ID: demoID("scale/account/" + name), Name: name, ParentID: parent.ID, ParentName: parent.Name}
		ds.Entities = append(ds.Entities, acct)
		rng := rand.New(rand.NewPCG(seed("scale/"+name), 2))
		growth := 0.02*rng.Float64() - 0.005
		rgs := []string{demoID("scale/rg/" + name + "/default"), demoID("scale/rg/" + name + "/shared")}
		pair := 0
		for si, svcIdx := range rng.Perm(len(services))[:scaleServices] {
			svc := services[svcIdx]
			nLoc := scaleLocationsOther
			if si == 0 {
				nLoc = scaleLocationsFirst
			}
			for _, locIdx := range rng.Perm(len(locations))[:nLoc] {
				loc := locations[locIdx]
				key := name + "/" + svc.name + "/" + loc.name
				prng := rand.New(rand.NewPCG(seed(key), 3))
				base := 20000 * svc.weight * (0.3 + 1.4*prng.Float64())
				split := 0.2 + 0.6*prng.Float64() // share of the first resource group
				for m := first; m <= last; m++ {
					noise := rand.New(rand.NewPCG(seed(key), uint64(m)))
					carbon := base * math.Pow(1+growth, float64(m-epoch)) * (0.9 + 0.2*noise.Float64())
					shares := []float64{1}
					if pair == 0 {
						shares = []float64{split, 1 - split}
					}
					for r, share := range shares {
						c := carbon * share
						ds.Rows = append(ds.Rows, Row{
							AccountID:         acct.ID,
							Service:           svc.name,
							Location:          loc.name,
							ResourceGroupID:   rgs[r],
							Month:             m,
							CarbonEmission:    round3(c),
							EnergyConsumption: round3(c / loc.intensity),
						})
					}
				}
				pair++
			}
		}
	}
	return ds
}

// Package gcpfake is an in-process BigQuery REST API (the part the
// BigQuery Go client uses to run queries) serving an in-memory Carbon
// Footprint export and standard billing export, plus a BigQuery Data
// Transfer Service REST API for the setup command. Tests drive the real
// gcp provider against it over HTTP, and the exporter's demo mode serves
// its built-in dataset, so both exercise the same code path as
// production.
//
// The fake does not execute SQL. It recognises the gcp provider's two
// queries by their marker comment ("-- cloudcarbon:carbon",
// "-- cloudcarbon:billing"), checks the table they name, and answers with
// the rows those queries would return for its dataset and the query's
// parameters. The emulator acceptance test in package gcp checks the same
// SQL against a real GoogleSQL engine.
//
// The billing export serves the cost feed of provisional months too: its
// query is the billing query, labelled cloudcarbon_query=cost. The demo
// dataset's billing runs past its carbon to now (see Demo). Its line
// items carry labels, which the tag feed's query ("-- cloudcarbon:tags")
// groups by: TagTotals is the fake's own reckoning of that query's
// totals, and ReferenceAllocation of what the exporter allocates by them.
package gcpfake

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The fake's own reading of Google's documentation, kept apart from the
// gcp client's constants so that a unit or schedule error in the client
// shows up as a difference from the fake instead of being mirrored by it.
// Google publishes a month's Carbon Footprint on the 15th of the next
// month, 14 days after it ends, in kilograms of CO2e. Billing rows of an
// invoice month keep arriving in the billing export after the month ends
// (its last hours, tax and rounding when the invoice closes); the totals
// count those exported within a week of its end.
const (
	publishDelay     = 14 * 24 * time.Hour
	gramsPerKilogram = 1000.0
	billingExportLag = 7 * 24 * time.Hour
)

// CarbonRow is one row of the carbon_footprint table. Empty strings stand
// for NULL.
type CarbonRow struct {
	Month            provider.Month // usage_month
	BillingAccountID string
	ProjectID        string // project.id; "" for rows without a project
	ServiceID        string // service.id
	Service          string // service.description
	Location         string // location.location
	Region           string // location.region
	ModelVersion     int64  // carbon_model_version
	// kgCO2e. Scope2Market is nil where Google publishes no market-based
	// figure (before 2023).
	Scope1, Scope2Location, Scope3 float64
	Scope2Market                   *float64
}

// BillingRow is one row of the standard billing export. Money is in
// micros of the billing currency, so that expectations are exact. Empty
// strings stand for NULL.
type BillingRow struct {
	BillingAccountID string
	InvoiceMonth     provider.Month
	CostType         string // regular, tax, adjustment, rounding_error
	ProjectID        string
	ProjectName      string
	ServiceID        string
	Service          string // service.description
	Location         string // location.location
	Region           string // location.region
	Currency         string
	ConversionRate   float64 // currency units per USD
	CostMicros       int64
	CreditMicros     []int64 // credits[].amount, negative
	// Labels are the line item's resource labels (labels), GKE cost
	// allocation's k8s-namespace and k8s-label/… among them, and
	// ProjectLabels its project's (project.labels).
	Labels, ProjectLabels []Label
	// ExportTime decides the row's ingestion-time partition: its UTC
	// day is _PARTITIONTIME.
	ExportTime time.Time
}

// Label is one entry of a line item's labels or project.labels.
type Label struct{ Key, Value string }

// ProjectLabelPrefix marks an allocation key that names a project label,
// as the gcp provider spells it.
const ProjectLabelPrefix = "project:"

// label returns the line item's value of an allocation key: a resource
// label's, or a project label's for a key with ProjectLabelPrefix.
func (r BillingRow) label(key string) (string, bool) {
	labels := r.Labels
	if k, ok := strings.CutPrefix(key, ProjectLabelPrefix); ok {
		key, labels = k, r.ProjectLabels
	}
	for _, l := range labels {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// Dataset is what the fake serves.
type Dataset struct {
	// Project is the project the demo's queries run in.
	Project string
	// CarbonTable and BillingTable are the fully qualified table names
	// the fake answers for ("project.dataset.table"); queries naming
	// other tables get BigQuery's 404. BillingTable may be empty.
	CarbonTable, BillingTable string
	// Location is the datasets' location; a query naming another
	// location gets 404, as from BigQuery. Empty accepts any.
	Location string
	Carbon   []CarbonRow
	Billing  []BillingRow
}

// Totals are the figures the exporter must report for one month, summed
// over every series, in base units.
type Totals struct {
	// LocationGrams is the location-based total of scopes 1, 2 and 3.
	LocationGrams float64
	// MarketGrams is the market-based total; MarketKnown is false when
	// any row of the month lacks it (then the exporter reports none).
	MarketGrams float64
	MarketKnown bool
	// CostUSD is the net cost of the invoice month in US dollars, of the
	// rows the exporter's partition window reads.
	CostUSD float64
}

// Totals returns the figures of month m.
func (d Dataset) Totals(m provider.Month) Totals {
	t := Totals{MarketKnown: true}
	n := 0
	for _, r := range d.Carbon {
		if r.Month != m {
			continue
		}
		n++
		t.LocationGrams += (r.Scope1 + r.Scope2Location + r.Scope3) * gramsPerKilogram
		if r.Scope2Market == nil {
			t.MarketKnown = false
			continue
		}
		t.MarketGrams += (r.Scope1 + *r.Scope2Market + r.Scope3) * gramsPerKilogram
	}
	if n == 0 || !t.MarketKnown {
		t.MarketGrams, t.MarketKnown = 0, false
	}
	// Exact micros per conversion rate, converted once, as the query does.
	micros := map[float64]int64{}
	start, end := billingWindow(m, m)
	for _, r := range d.Billing {
		if r.InvoiceMonth != m || !inWindow(r.ExportTime, start, end) {
			continue
		}
		micros[r.ConversionRate] += r.netMicros()
	}
	t.CostUSD = toUSD(micros)
	return t
}

// toUSD converts net micros by conversion rate to US dollars, each rate's
// exact sum once, in rate order so that the float sum is reproducible.
func toUSD(micros map[float64]int64) float64 {
	var usd float64
	for _, rate := range slices.Sorted(maps.Keys(micros)) {
		usd += float64(micros[rate]) / 1e6 / rate
	}
	return usd
}

// Served returns what the exporter must serve for month m, summed over
// every series, by quantity: location-based and (when every row has one)
// market-based grams of a month the carbon export holds, and US dollars
// of an invoice month the billing export holds rows of. A quantity the
// month lacks is absent, not zero.
func (d Dataset) Served(m provider.Month) map[provider.Quantity]float64 {
	t := d.Totals(m)
	out := map[provider.Quantity]float64{}
	if slices.ContainsFunc(d.Carbon, func(r CarbonRow) bool { return r.Month == m }) {
		out[provider.Emissions] = t.LocationGrams
	}
	if t.MarketKnown {
		out[provider.EmissionsMarketBased] = t.MarketGrams
	}
	start, end := billingWindow(m, m)
	if slices.ContainsFunc(d.Billing, func(r BillingRow) bool { return r.InvoiceMonth == m && inWindow(r.ExportTime, start, end) }) {
		out[provider.Cost] = t.CostUSD
	}
	return out
}

// TagTotals returns the net cost in US dollars of invoice month m by the
// value of an allocation key: a resource label's key, or a project
// label's prefixed with ProjectLabelPrefix. Cost without the label, or
// with an empty value (which names no one), is the value "". It is nil
// for a month the billing export holds no row of. The values add up to
// the month's CostUSD.
func (d Dataset) TagTotals(m provider.Month, key string) map[string]float64 {
	micros := map[string]map[float64]int64{}
	for c, byRate := range d.tagMicros(m, key) {
		if micros[c.value] == nil {
			micros[c.value] = map[float64]int64{}
		}
		for rate, n := range byRate {
			micros[c.value][rate] += n
		}
	}
	if len(micros) == 0 {
		return nil
	}
	out := make(map[string]float64, len(micros))
	for v, byRate := range micros {
		out[v] = toUSD(byRate)
	}
	return out
}

// WithValues returns d with n more line items in every invoice month
// that has a project's cost: in the cell (project, service, location) of
// the month's first such line item, each with its own value of the
// resource label key ("v000", "v001", …) and cost, as a key of high
// cardinality has (one label value per customer, say). The core folds all
// but the top values of a key; tests of that fold use it.
func (d Dataset) WithValues(key string, n int) Dataset {
	first := map[provider.Month]BillingRow{}
	for _, r := range d.Billing {
		if _, ok := first[r.InvoiceMonth]; !ok && r.ProjectID != "" {
			first[r.InvoiceMonth] = r
		}
	}
	d.Billing = slices.Clone(d.Billing)
	for _, m := range slices.Sorted(maps.Keys(first)) {
		for i := range n {
			r := first[m]
			r.CostType, r.CreditMicros, r.ProjectLabels = "regular", nil, slices.Clone(r.ProjectLabels)
			r.CostMicros = int64(i+1)*10_000 + 7
			r.Labels = []Label{{Key: key, Value: fmt.Sprintf("v%03d", i)}}
			d.Billing = append(d.Billing, r)
		}
	}
	return d
}

// Months returns the months that either export holds rows of, in order.
func (d Dataset) Months() []provider.Month {
	var ms []provider.Month
	for _, r := range d.Carbon {
		ms = append(ms, r.Month)
	}
	for _, r := range d.Billing {
		ms = append(ms, r.InvoiceMonth)
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

func (r BillingRow) netMicros() int64 {
	n := r.CostMicros
	for _, c := range r.CreditMicros {
		n += c
	}
	return n
}

// billingWindow is the partitions whose rows of invoice months first to
// last count.
func billingWindow(first, last provider.Month) (time.Time, time.Time) {
	return first.Start(), last.End().Add(billingExportLag)
}

// partitionTime is the ingestion-time partition of a row exported at t.
func partitionTime(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func inWindow(export, start, end time.Time) bool {
	pt := partitionTime(export)
	return !pt.Before(start) && pt.Before(end)
}

// Demo dataset identity.
const (
	DemoProject        = "cloudcarbon-demo"
	DemoBillingAccount = "01A2B3-C4D5E6-F7A8B9"
	DemoCarbonTable    = DemoProject + ".carbon_export.carbon_footprint"
	// DemoBillingTable is the detailed usage cost export, the table GKE
	// cost allocation's labels are in (the demo's cluster has them).
	DemoBillingTable = DemoProject + ".billing_export.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9"
	DemoLocation     = "US"
	// DemoCurrency is the demo billing account's currency, so that the
	// conversion to US dollars is exercised.
	DemoCurrency = "EUR"
	// DemoMonths is how many months of carbon Demo covers.
	DemoMonths = 15
)

// LatestPublished returns the latest month Google has published by now.
func LatestPublished(now time.Time) provider.Month {
	return provider.Schedule{PublishDelay: publishDelay}.LatestPublished(now)
}

// DemoLatestTotals returns what the exporter must report for the latest
// month of Demo(now), summed over every series: location-based and
// market-based grams of scopes 1 to 3 and the net cost in US dollars. An
// end-to-end test compares Prometheus sums with them.
func DemoLatestTotals(now time.Time) Totals {
	return Demo(now).Totals(LatestPublished(now))
}

// marketBasedSince is the first month with market-based scope 2 figures
// (2023-01).
const marketBasedSince = provider.Month(2023 * 12)

type demoProject struct {
	id, name string
	// team labels the project's resources (none when empty), env the
	// project itself.
	team, env string
	// gke says that the project runs a GKE cluster with cost allocation.
	gke      bool
	scale    float64
	growth   float64 // per month
	services []string
	regions  []string
}

// regionFactors returns a region's grid carbon intensity (location-based,
// relative) and the share of it Google's energy contracts remove
// (market-based). US and EU are multi-regions: rows with no region.
func regionFactors(region string) (intensity, market float64) {
	switch region {
	case "us-central1":
		return 1.00, 0.55
	case "us-east4":
		return 0.85, 0.80
	case "europe-west1":
		return 0.35, 0.60
	case "europe-west4":
		return 0.80, 0.45
	case "asia-northeast1":
		return 1.20, 0.95
	case "US":
		return 0.90, 0.65
	case "EU":
		return 0.55, 0.55
	}
	return 1, 0.5
}

// serviceFactors returns a service's id, its relative footprint and its
// monthly cost in EUR per unit of footprint.
func serviceFactors(svc string) (id string, weight, cost float64) {
	switch svc {
	case "Compute Engine":
		return "6F81-5844-456A", 1.00, 9.0
	case "Kubernetes Engine":
		return "CCD8-9BF1-090E", 1.30, 8.0
	case "Cloud Storage":
		return "95FF-2EF5-5EA1", 0.20, 14.0
	case "BigQuery":
		return "24E6-581D-38E5", 0.45, 20.0
	case "Cloud Run":
		return "152E-C115-5142", 0.15, 16.0
	case "Cloud SQL":
		return "9662-B51E-5089", 0.50, 11.0
	case "Cloud Pub/Sub":
		return "A1E8-BE35-7EBC", 0.08, 12.0
	case "Networking":
		return "E505-1604-58F8", 0.10, 25.0
	case "Vertex AI":
		return "C7E2-9256-1C43", 1.60, 10.0
	case "Dataflow":
		return "57D4-DA51-5F3C", 0.60, 9.5
	case "Cloud Support":
		return "2062-016F-44A2", 0, 0
	}
	return "0000-0000-0000", 0.1, 10
}

// Demo returns a deterministic, plausible billing account: five projects,
// ten services in five regions and two multi-regions, DemoMonths months of
// carbon ending at the latest month Google has published by now, and
// their billing. Market-based scope 2 is absent before 2023;
// carbon_model_version changes once in the range; one carbon row has no
// project (a deleted project); billing is in EUR with credits, and the
// billing account's support fee has no project. A month's figures depend
// only on the month, not on now, except for the model version, which is
// older in the range's first months, and for the billing of the current
// month, which holds the rows exported by now.
//
// The billing export runs past the carbon export, as Google's does: it
// holds the months Google has not published emissions for yet, the
// current one to date (the line items exported by now), whose cost comes
// from the same seeded footprint as the published months', so that
// provisional months can be estimated from it. From DemoCostDriftSince on,
// each series' cost drifts and varies against its footprint (see
// costFactor).
//
// Line items carry labels, for allocation (see demoLabels): a team label
// of four values (web, data, ml, platform) shared by many series, mixed
// within some, and missing from unlabelled resources and the staging
// project; GKE cost allocation's k8s-namespace (DemoNamespaces) on the
// platform's cluster; and every project's env label. Labels change no
// cost.
func Demo(now time.Time) Dataset {
	return generate(now, demoProjects(), DemoMonths, DemoCostDriftSince)
}

// DemoCostDriftSince is the first month whose cost Demo varies against
// the footprint series by series (see costFactor). The demo's cost before
// it is pinned, value for value, by the exporter's demo golden files (the
// exposition's and the reports' input, made on 2026-11-22): there each
// series' cost is its footprint at its service's price, its emissions per
// dollar moving only with the month's exchange rate, the same for all.
const DemoCostDriftSince = provider.Month(2026*12 + 10) // 2026-11

// Sample is Demo's generator over two projects, five services and three
// locations, with months of carbon ending at the latest month Google has
// published by now, and the billing of those months and of the months
// after them to now, every month's cost drifting and varying against its
// footprint: a dataset small enough for tests that page it.
func Sample(now time.Time, months int) Dataset {
	return generate(now, []demoProject{
		{id: "acme-web-prod", name: "Acme Web (prod)", team: "web", env: "prod", scale: 1.0, growth: 0.010,
			services: []string{"Compute Engine", "Cloud Run", "Cloud SQL"},
			regions:  []string{"us-central1", "europe-west1"}},
		{id: "acme-data-prod", name: "Acme Data (prod)", team: "data", env: "prod", scale: 1.2, growth: 0.018,
			services: []string{"BigQuery", "Cloud Storage"},
			regions:  []string{"US"}},
	}, months, 0)
}

func demoProjects() []demoProject {
	return []demoProject{
		{id: "acme-web-prod", name: "Acme Web (prod)", team: "web", env: "prod", scale: 1.0, growth: 0.010,
			services: []string{"Compute Engine", "Cloud Run", "Cloud SQL", "Cloud Storage", "Networking"},
			regions:  []string{"us-central1", "europe-west1"}},
		{id: "acme-data-prod", name: "Acme Data (prod)", team: "data", env: "prod", scale: 1.2, growth: 0.018,
			services: []string{"BigQuery", "Cloud Storage", "Dataflow", "Cloud Pub/Sub"},
			regions:  []string{"US", "EU", "europe-west4"}},
		{id: "acme-ml", name: "Acme ML", team: "ml", env: "prod", scale: 0.9, growth: 0.030,
			services: []string{"Vertex AI", "Compute Engine", "Cloud Storage"},
			regions:  []string{"us-east4", "europe-west4"}},
		{id: "acme-gke-platform", name: "Acme GKE platform", team: "platform", env: "prod", gke: true, scale: 1.1, growth: 0.005,
			services: []string{"Kubernetes Engine", "Compute Engine", "Networking", "Cloud Storage"},
			regions:  []string{"europe-west1", "asia-northeast1", "us-central1"}},
		{id: "acme-staging", name: "Acme staging", env: "staging", scale: 0.25, growth: -0.01,
			services: []string{"Compute Engine", "Cloud Run", "Cloud SQL"},
			regions:  []string{"us-central1"}},
	}
}

// generate builds the demo billing account's dataset over projects: months
// months of carbon ending at the latest month published by now, and
// billing from the first of them to now, its cost drifting against the
// footprint from month driftSince on.
func generate(now time.Time, projects []demoProject, months int, driftSince provider.Month) Dataset {
	last := LatestPublished(now)
	first := last.Add(-(months - 1))
	current := provider.MonthOf(now)
	ds := Dataset{
		Project:      DemoProject,
		CarbonTable:  DemoCarbonTable,
		BillingTable: DemoBillingTable,
		Location:     DemoLocation,
	}
	// The model version changes once, two thirds into the range.
	change := first.Add(2 * months / 3)
	epoch := provider.NewMonth(2024, time.January)
	exported := func(rows ...BillingRow) {
		for _, r := range rows {
			if !r.ExportTime.After(now) {
				ds.Billing = append(ds.Billing, r)
			}
		}
	}
	for m := first; m <= current; m++ {
		published := m <= last
		version := int64(7)
		if m >= change {
			version = 8
		}
		rate := demoRate(m)
		for _, p := range projects {
			for _, svc := range p.services {
				for _, region := range p.regions {
					key := p.id + "/" + svc + "/" + region
					rng := rand.New(rand.NewPCG(seed(key), 1))
					if rng.Float64() < 0.12 {
						continue // not every project runs every service everywhere
					}
					noise := rand.New(rand.NewPCG(seed(key), uint64(m)))
					season := 1 + 0.05*math.Cos(2*math.Pi*float64(int(m.Month())-1)/12)
					_, w, _ := serviceFactors(svc)
					size := p.scale * w * (0.5 + rng.Float64()) *
						math.Pow(1+p.growth, float64(m-epoch)) * season * (0.95 + 0.1*noise.Float64())
					if published {
						ds.Carbon = append(ds.Carbon, demoCarbon(m, p.id, svc, region, version, size))
					}
					costSize := size
					if m >= driftSince {
						costSize *= costFactor(key, m)
					}
					exported(demoBilling(m, p, svc, region, rate, costSize, noise)...)
				}
			}
		}
		if published {
			// A project deleted since: Google reports its footprint
			// without a project.
			ds.Carbon = append(ds.Carbon, demoCarbon(m, "", "Compute Engine", "us-central1", version, 0.05))
		}
		supportID, _, _ := serviceFactors("Cloud Support")
		// The support fee is billed to the account, not to a project.
		exported(BillingRow{
			BillingAccountID: DemoBillingAccount, InvoiceMonth: m, CostType: "regular",
			ServiceID: supportID, Service: "Cloud Support", Location: "global",
			Currency: DemoCurrency, ConversionRate: rate, CostMicros: 29_000_000,
			ExportTime: m.End().Add(26 * time.Hour),
		})
	}
	return ds
}

// costFactor is how a series' cost strays from its footprint in month m:
// a slow drift of its own (prices and the mix of its usage change, up to
// 0.3% a month either way) and a few percent of noise, both seeded by the
// series, so that its emissions per dollar are plausible but never
// constant from one month to the next.
func costFactor(key string, m provider.Month) float64 {
	epoch := provider.NewMonth(2024, time.January)
	drift := 0.006 * (rand.New(rand.NewPCG(seed("cost/"+key), 1)).Float64() - 0.5)
	noise := rand.New(rand.NewPCG(seed("cost/"+key), uint64(m))).Float64()
	return math.Pow(1+drift, float64(m-epoch)) * (0.97 + 0.06*noise)
}

// demoRate is the month's EUR per USD rate.
func demoRate(m provider.Month) float64 {
	return 0.9 + 0.004*float64(int(m)%9)
}

// demoCarbon builds one carbon row of size units (≈ 100 kgCO2e each).
func demoCarbon(m provider.Month, project, svc, region string, version int64, size float64) CarbonRow {
	intensity, market := regionFactors(region)
	id, _, _ := serviceFactors(svc)
	total := 100 * size
	scope2 := round6(total * 0.62 * intensity)
	row := CarbonRow{
		Month: m, BillingAccountID: DemoBillingAccount, ProjectID: project,
		ServiceID: id, Service: svc, ModelVersion: version,
		Scope1:         round6(total * 0.004),
		Scope2Location: scope2,
		Scope3:         round6(total * 0.35),
	}
	if len(region) == 2 {
		row.Location = region // multi-region: no region
	} else {
		row.Location, row.Region = region, region
	}
	if m >= marketBasedSince {
		mb := round6(scope2 * (1 - market))
		row.Scope2Market = &mb
	}
	return row
}

// demoBilling splits a month's cost into the line items the export would
// hold: usage exported through the month and the last hours exported
// early in the next one, Compute Engine zones, and credits.
func demoBilling(m provider.Month, p demoProject, svc, region string, rate, size float64, rng *rand.Rand) []BillingRow {
	id, _, cost := serviceFactors(svc)
	totalMicros := int64(math.Round(size * cost * 10 * 1e6)) // EUR micros
	base := BillingRow{
		BillingAccountID: DemoBillingAccount, InvoiceMonth: m, CostType: "regular",
		ProjectID: p.id, ProjectName: p.name, ServiceID: id, Service: svc,
		Currency: DemoCurrency, ConversionRate: rate,
	}
	if len(region) == 2 {
		base.Location = region
	} else {
		base.Location, base.Region = region, region
		if svc == "Compute Engine" {
			base.Location = region + "-b"
		}
	}
	exports := []time.Time{
		m.Start().Add(9*24*time.Hour + 3*time.Hour),
		m.Start().Add(19*24*time.Hour + 5*time.Hour),
		m.End().Add(-36 * time.Hour),
		m.End().Add(30 * time.Hour), // late usage of the last hours
	}
	shares := []int64{30, 30, 35, 5}
	var rows []BillingRow
	left := totalMicros
	for i, t := range exports {
		r := base
		r.ExportTime = t
		r.CostMicros = totalMicros * shares[i] / 100
		if i == len(exports)-1 {
			r.CostMicros = left
		}
		left -= r.CostMicros
		// Odd micros, so that float sums would show their error.
		r.CostMicros += int64(rng.IntN(1000))
		switch svc {
		case "Compute Engine":
			r.CreditMicros = []int64{-r.CostMicros / 10, -r.CostMicros / 25} // sustained and committed use
		case "Cloud Run":
			r.CreditMicros = []int64{-min(r.CostMicros, 1_234_567)} // free tier
		}
		r.Labels = demoLabels(p, svc, i)
		r.ProjectLabels = []Label{{Key: "env", Value: p.env}}
		rows = append(rows, r)
	}
	return rows
}

// DemoNamespaces are the namespaces of the demo's GKE cluster, as GKE
// cost allocation labels its cost (k8s-namespace): the last is the
// cluster's capacity no Pod requested.
var DemoNamespaces = []string{"checkout", "search", "payments", "kube:unallocated"}

// demoLabels returns the resource labels of line item i (of four) of a
// project's service: the project's team, except on unlabelled buckets and
// traffic; the data warehouse's second line item is the ML team's
// queries; Cloud Run's last one is of a service whose team label was
// cleared (an empty value); and on the GKE cluster (Kubernetes Engine,
// and Compute Engine's node VMs) GKE cost allocation's cluster and
// namespace, a namespace per line item.
func demoLabels(p demoProject, svc string, i int) []Label {
	if p.team == "" || svc == "Cloud Storage" || svc == "Networking" {
		return nil
	}
	team := p.team
	switch {
	case svc == "BigQuery" && i == 1:
		team = "ml"
	case svc == "Cloud Run" && i == 3:
		team = ""
	}
	labels := []Label{{Key: "team", Value: team}}
	if p.gke && (svc == "Kubernetes Engine" || svc == "Compute Engine") {
		labels = append(labels, Label{Key: "goog-k8s-cluster-name", Value: "platform"},
			Label{Key: "k8s-namespace", Value: DemoNamespaces[i%len(DemoNamespaces)]})
	}
	return labels
}

func seed(key string) uint64 {
	sum := sha256.Sum256([]byte(key))
	return binary.LittleEndian.Uint64(sum[:8])
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

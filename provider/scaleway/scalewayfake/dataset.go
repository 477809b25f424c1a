// Package scalewayfake is an in-process Scaleway Environmental Footprint
// API: GetImpactData and GetImpactReportAvailability as the SDK calls them
// (GET, query parameters with repeated keys, RFC 3339 dates), X-Auth-Token
// authentication, Scaleway's error bodies, and injectable faults; and the
// Billing API's ListConsumptions, over consumption derived from the same
// SKUs. Tests
// drive the real scaleway provider and the real SDK client against it over
// HTTP, and the exporter's demo mode serves its built-in organization, so
// both exercise the production code path.
//
// The fake keeps its own reading of the API (paths, units, enums, the
// first month, the publication delay) rather than importing the
// provider's, so that a mistake in the provider shows up as a difference
// instead of being mirrored.
package scalewayfake

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The fake's own reading of Scaleway's documentation: impact is in
// kilograms of CO2e and cubic metres of water; data starts in October 2024;
// a month's report is listed once the month is over, which the fake takes
// as the start of the 4th of the next month (Scaleway names no day).
const (
	gramsPerKilogram = 1e3
	publishDelay     = 3 * 24 * time.Hour
)

// FirstMonth is the first month the API serves (2024-10), as
// provider.Month counts it.
const FirstMonth = provider.Month(2024*12 + 9)

// SKU is one SKU's impact in one month, in the API's units. Zone is empty
// for a product tied to the region itself (Object Storage, Kubernetes,
// serverless, managed databases), which the API lists in the region's own
// skus, outside every zone.
type SKU struct {
	Project                          string
	Region, Zone                     string
	ID                               string
	ServiceCategory, ProductCategory string
	Month                            provider.Month
	KgCO2e, M3Water                  float64
}

// Dataset is what the fake serves.
type Dataset struct {
	OrganizationID string
	SKUs           []SKU
	// Available lists the months GetImpactReportAvailability reports.
	// GetImpactData serves every month that has SKUs, listed or not, as
	// the real API serves the month in progress.
	Available []provider.Month
	// Consumptions are the Billing API's lines; WithConsumptions derives
	// them from SKUs.
	Consumptions []Consumption
}

// TotalKey is a project × product category × region.
type TotalKey struct{ Project, ProductCategory, Region string }

// Total is a TotalKey's impact in base units.
type Total struct{ Grams, CubicMeters float64 }

// Totals returns month m's impact per project × product category ×
// region, in grams of CO2e and cubic metres, as a client must compute it
// from the API's answer: each SKU's value as the API serves it, rounded to
// float32, summed in float64. With projects, only those projects count,
// as with the project_ids filter.
func (d Dataset) Totals(m provider.Month, projects ...string) map[TotalKey]Total {
	out := make(map[TotalKey]Total)
	for _, s := range served(d.SKUs, func(s *SKU) bool {
		return s.Month == m && (len(projects) == 0 || slices.Contains(projects, s.Project))
	}) {
		k := TotalKey{s.Project, s.ProductCategory, s.Region}
		t := out[k]
		t.Grams += float64(float32(s.KgCO2e)) * gramsPerKilogram
		t.CubicMeters += float64(float32(s.M3Water))
		out[k] = t
	}
	return out
}

// Total returns month m's impact over the whole organization, in base
// units, computed as Totals does.
func (d Dataset) Total(m provider.Month) Total {
	var t Total
	for _, v := range d.Totals(m) {
		t.Grams += v.Grams
		t.CubicMeters += v.CubicMeters
	}
	return t
}

// Months returns the months that have SKUs, oldest first.
func (d Dataset) Months() []provider.Month {
	var ms []provider.Month
	for _, s := range d.SKUs {
		ms = append(ms, s.Month)
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

// served merges the SKUs that keep accepts into one per project, region,
// zone and SKU id, summing their months in float64 as the API sums a
// period, sorted as the fake serves them. Categories are the first seen.
func served(skus []SKU, keep func(*SKU) bool) []SKU {
	type id struct{ project, region, zone, sku string }
	at := make(map[id]int)
	var out []SKU
	for i := range skus {
		s := &skus[i]
		if !keep(s) {
			continue
		}
		k := id{s.Project, s.Region, s.Zone, s.ID}
		if j, ok := at[k]; ok {
			out[j].KgCO2e += s.KgCO2e
			out[j].M3Water += s.M3Water
			continue
		}
		at[k] = len(out)
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b SKU) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Projects of Sample's organization.
const (
	SampleProjectApp  = "aaaaaaaa-0000-4000-8000-000000000001"
	SampleProjectData = "bbbbbbbb-0000-4000-8000-000000000002"
)

// Sample returns a small organization for tests: in each of months, two
// projects with SKUs in zones and SKUs tied to a region, one product that
// runs in two zones of one region (its SKUs make one record), and one
// SKU without a product category. Every month is listed as available;
// the values differ from month to month. Its consumption is derived from
// the SKUs (WithConsumptions).
func Sample(org string, months ...provider.Month) Dataset {
	ds := Dataset{OrganizationID: org, Available: slices.Clone(months)}
	for i, m := range months {
		f := 1 + 0.125*float64(i)
		sku := func(project, region, zone, id, service, product string, kg, m3 float64) SKU {
			return SKU{Project: project, Region: region, Zone: zone, ID: id, ServiceCategory: service,
				ProductCategory: product, Month: m, KgCO2e: kg * f, M3Water: m3 * f}
		}
		ds.SKUs = append(ds.SKUs,
			sku(SampleProjectApp, "fr-par", "fr-par-1", "instance/pro2-s/fr-par-1", "compute", "instances", 3.5, 0.0712),
			sku(SampleProjectApp, "fr-par", "fr-par-2", "instance/pro2-m/fr-par-2", "compute", "instances", 12.25, 0.2718),
			sku(SampleProjectApp, "fr-par", "", "object-storage/standard/fr-par", "storage", "object_storage", 1.0625, 0.0231),
			sku(SampleProjectData, "nl-ams", "", "kubernetes/kapsule/nl-ams", "containers", "kubernetes", 0.75, 0.0111),
			sku(SampleProjectData, "pl-waw", "pl-waw-1", "instance/gp1-xs/pl-waw-1", "", "", 2.375, 0.0787),
		)
	}
	return ds.WithConsumptions()
}

// NegateEmissions makes the CO2e of month m's first SKU in a zone
// negative, as a broken answer might carry. In Sample's data that SKU's
// product runs in a second zone of its region: a client that sums SKUs
// without looking hides the negative value in a positive total.
func (d *Dataset) NegateEmissions(m provider.Month) {
	for i := range d.SKUs {
		if s := &d.SKUs[i]; s.Month == m && s.Zone != "" {
			s.KgCO2e = -s.KgCO2e
			return
		}
	}
}

// LatestPublished returns the latest month Scaleway has published by now,
// by the fake's reading.
func LatestPublished(now time.Time) provider.Month {
	return provider.Schedule{PublishDelay: publishDelay}.LatestPublished(now)
}

// The demo organization and its projects; ids are UUIDs as Scaleway's are.
const (
	DemoOrganizationID = "3f1b5a8e-6c2d-4e7f-9a0b-1c2d3e4f5a6b"
	DemoProjectDefault = "0b7e2c1a-4d5f-4a6b-8c9d-0e1f2a3b4c5d"
	DemoProjectWeb     = "5c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f"
	DemoProjectData    = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
)

// demoSKU is a SKU the demo organization runs every month, with its
// impact in the first month; later months grow and vary.
type demoSKU struct {
	project, region, zone, id, service, product string
	kg                                          float64
	growth                                      float64 // per month
}

// Water per kilogram of CO2e, by region: what each site's water usage
// effectiveness and energy mix make of the same electricity, roughly.
func demoWaterRatio(region string) float64 {
	switch region {
	case "fr-par":
		return 0.0213
	case "nl-ams":
		return 0.0148
	default:
		return 0.0331
	}
}

func demoSKUs() []demoSKU {
	return []demoSKU{
		// A web shop in Paris with a replica in Amsterdam.
		{DemoProjectWeb, "fr-par", "fr-par-1", "instance/pro2-m/fr-par-1", "compute", "instances", 38.21, 0.012},
		{DemoProjectWeb, "fr-par", "fr-par-2", "instance/pro2-s/fr-par-2", "compute", "instances", 21.47, 0.008},
		{DemoProjectWeb, "fr-par", "fr-par-1", "block/sbs-15k/fr-par-1", "storage", "block_storage", 4.137, 0.02},
		{DemoProjectWeb, "fr-par", "fr-par-1", "lb/lb-s/fr-par-1", "network", "load_balancer", 1.09, 0},
		{DemoProjectWeb, "fr-par", "", "object-storage/standard/fr-par", "storage", "object_storage", 6.318, 0.025},
		{DemoProjectWeb, "nl-ams", "", "kubernetes/kapsule/nl-ams", "containers", "kubernetes", 2.406, 0.01},
		{DemoProjectWeb, "nl-ams", "nl-ams-1", "instance/dev1-m/nl-ams-1", "compute", "instances", 9.83, 0.005},
		// A data platform on bare metal, with a Warsaw copy.
		{DemoProjectData, "fr-par", "fr-par-2", "elastic-metal/em-b112x/fr-par-2", "baremetal", "elastic_metal", 95.04, 0.004},
		{DemoProjectData, "fr-par", "", "rdb/db-pro2-s/fr-par", "databases", "managed_relational_databases", 12.71, 0.006},
		{DemoProjectData, "pl-waw", "pl-waw-1", "instance/gp1-xs/pl-waw-1", "compute", "instances", 15.33, 0.003},
		{DemoProjectData, "pl-waw", "", "object-storage/glacier/pl-waw", "storage", "object_storage", 3.208, 0.03},
		// The default project: experiments.
		{DemoProjectDefault, "fr-par", "", "functions/mem-256/fr-par", "serverless", "serverless_functions", 0.4217, 0.04},
		{DemoProjectDefault, "fr-par", "fr-par-1", "instance/stardust1-s/fr-par-1", "compute", "instances", 1.302, 0},
		{DemoProjectDefault, "fr-par", "", "generative-apis/llama-3.1-8b/fr-par", "ai", "generative_apis", 0.8531, 0.05},
	}
}

// Demo returns a deterministic, plausible organization: three projects,
// seven product categories in three regions, zonal SKUs and SKUs tied to
// a region, from FirstMonth to the month in progress at now (a part of
// it, as the real API serves it), with the months up to the latest
// published one listed as available, and the consumption billed for them
// (WithConsumptions). A month's figures depend only on the month, not on
// now, so a demo that runs for weeks shows a stable history.
func Demo(now time.Time) Dataset {
	current := provider.MonthOf(now)
	ds := Dataset{OrganizationID: DemoOrganizationID, Available: provider.Range(FirstMonth, LatestPublished(now))}
	for m := FirstMonth; m <= current; m++ {
		part := 1.0
		if m == current {
			part = float64(now.Sub(m.Start())) / float64(m.End().Sub(m.Start()))
		}
		n := float64(m - FirstMonth)
		for _, s := range demoSKUs() {
			kg := s.kg * (1 + s.growth*n) * vary(s.id, m) * part
			ds.SKUs = append(ds.SKUs, SKU{
				Project: s.project, Region: s.region, Zone: s.zone, ID: s.id,
				ServiceCategory: s.service, ProductCategory: s.product, Month: m,
				KgCO2e: kg, M3Water: kg * demoWaterRatio(s.region) * vary(s.id+"/water", m),
			})
		}
	}
	return ds.WithConsumptions()
}

// vary returns a factor from 0.85 to 1.15 that depends only on seed and
// m, so that months differ without a random source.
func vary(seed string, m provider.Month) float64 {
	h := sha256.Sum256([]byte(seed + "|" + m.String()))
	return 0.85 + 0.3*float64(binary.BigEndian.Uint32(h[:4]))/float64(^uint32(0))
}

package scaleway

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	ef "github.com/scaleway/scaleway-sdk-go/api/environmental_footprint/v1alpha1"
	"github.com/scaleway/scaleway-sdk-go/scw"
	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// maxLabelBytes bounds label values taken from the API's answers.
const maxLabelBytes = 128

// Fetch implements provider.Provider.
//
// Request plan:
//   - one GetImpactReportAvailability from the oldest requested month
//     (never before FirstMonth) to today, which lists the months Scaleway
//     has published;
//   - one GetImpactData per requested month that it lists, start_date the
//     month's first instant and end_date (exclusive) the next month's,
//     for the organization and, when configured, its projects; up to
//     Concurrency months at once.
//
// GetImpactData sums whatever period it is given, so one request per
// month is the only way to get monthly figures; months it does not list
// are never asked for (the month in progress has data, but partial).
// A refresh of the usual one or two open months is therefore two or three
// requests; the first refresh of a 13-month history fourteen.
func (p *Provider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	want := make(map[provider.Month]bool, len(months))
	for _, m := range months {
		if m >= FirstMonth {
			want[m] = true
		}
	}
	if len(want) == 0 {
		p.log.Debug("No requested month is within what Scaleway serves", "first", FirstMonth.String())
		return provider.Result{}, nil
	}
	asked := slices.Sorted(maps.Keys(want))

	published, err := p.availability(ctx, asked[0])
	if err != nil {
		return provider.Result{}, err
	}
	var due []provider.Month
	for _, m := range asked {
		if published[m] {
			due = append(due, m)
		}
	}
	if len(due) == 0 {
		p.log.Debug("Scaleway has published none of the requested months", "oldest", asked[0].String(), "latest", asked[len(asked)-1].String())
		return provider.Result{}, nil
	}

	perMonth, err := p.months(ctx, due)
	if err != nil {
		return provider.Result{}, err
	}
	return p.merge(perMonth), nil
}

// months fetches the due months: the first alone, then the others up to
// Concurrency at once. An answer that ends the fetch (a rejected key, a
// missing permission, throttling) then costs one request rather than
// Concurrency, and the pause a 429 starts (Scaleway limits a key, not a
// request) holds the other months back before any of them is sent.
func (p *Provider) months(ctx context.Context, due []provider.Month) ([]*monthData, error) {
	out := make([]*monthData, len(due))
	first, err := p.month(ctx, due[0])
	if err != nil {
		return nil, err
	}
	out[0] = first
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for i, m := range due[1:] {
		g.Go(func() error {
			d, err := p.month(gctx, m)
			out[i+1] = d
			return err
		})
	}
	return out, g.Wait()
}

// merge puts the months' records together, with an account for every
// project any fetch has seen.
func (p *Provider) merge(perMonth []*monthData) provider.Result {
	var res provider.Result
	mismatches := 0
	p.mu.Lock()
	for _, d := range perMonth {
		res.Records = append(res.Records, d.records...)
		for id := range d.projects {
			p.projects[id] = true
		}
		mismatches += d.mismatches
	}
	p.mu.Unlock()
	if mismatches > 0 {
		p.log.Warn("Scaleway's region totals differ from the sum of their SKUs; the exporter's sums may miss impact the API reports elsewhere",
			"regions", mismatches)
	}
	slices.SortFunc(res.Records, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location))
	})
	for _, id := range p.sortedProjects() {
		res.Accounts = append(res.Accounts, provider.Account{Provider: Name, ID: id,
			ParentType: ParentTypeOrganization, ParentID: p.org})
	}
	if res.Accounts == nil {
		res.Accounts = []provider.Account{} // learned: there are none
	}
	return res
}

// availability returns the months GetImpactReportAvailability lists from
// the month from on. It sets no end_date: the API's default is today,
// and months are filtered here anyway.
func (p *Provider) availability(ctx context.Context, from provider.Month) (map[provider.Month]bool, error) {
	start := max(from, FirstMonth).Start()
	var out ef.ImpactReportAvailability
	x := &exchange{into: &out}
	_, err := p.api.GetImpactReportAvailability(&ef.UserAPIGetImpactReportAvailabilityRequest{
		OrganizationID: p.org,
		StartDate:      &start,
	}, scw.WithContext(withExchange(ctx, x)))
	if err != nil {
		return nil, p.classify(ctx, opAvailability, x, err)
	}
	published := make(map[provider.Month]bool, len(out.MonthSummaryReports))
	for _, t := range out.MonthSummaryReports {
		if t == nil {
			continue
		}
		// The calendar month as written: converting "2025-05-01T00:00:00+02:00"
		// to UTC first would make it April.
		published[provider.NewMonth(t.Year(), t.Month())] = true
	}
	return published, nil
}

// monthData is one month's records, before they are merged.
type monthData struct {
	records  []provider.Record
	projects map[string]bool
	// mismatches counts regions whose reported total differs from the sum
	// of their SKUs.
	mismatches int
}

func (p *Provider) month(ctx context.Context, m provider.Month) (*monthData, error) {
	start, end := m.Start(), m.End()
	resp := &ef.ImpactDataResponse{}
	x := &exchange{into: resp}
	_, err := p.api.GetImpactData(&ef.UserAPIGetImpactDataRequest{
		OrganizationID: p.org,
		StartDate:      &start,
		EndDate:        &end,
		ProjectIDs:     p.opts.ProjectIDs,
	}, scw.WithContext(withExchange(ctx, x)))
	if err != nil {
		return nil, p.classify(ctx, opImpactData, x, err)
	}
	// The answer is the month's one page: its SKUs count against the
	// refresh's budget of records. It links to no other page, so an
	// empty one does not count as a page in a run of empty ones.
	if n := countSKUs(resp); n > 0 {
		if err := httpx.Page(ctx, n); err != nil {
			return nil, p.classify(ctx, opImpactData, x, err)
		}
	}
	if resp.StartDate != nil && !resp.StartDate.Equal(start) || resp.EndDate != nil && !resp.EndDate.Equal(end) {
		return nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("scaleway: %s: malformed response: data for %s to %s, not for the month %s asked",
			opImpactData, fmtTime(resp.StartDate), fmtTime(resp.EndDate), m))
	}
	return aggregate(resp, m), nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "?"
	}
	return t.UTC().Format(time.RFC3339)
}

// countSKUs returns the SKUs of an answer, the rows it holds.
func countSKUs(resp *ef.ImpactDataResponse) int {
	n := 0
	for _, proj := range resp.Projects {
		if proj == nil {
			continue
		}
		for _, reg := range proj.Regions {
			if reg == nil {
				continue
			}
			n += len(reg.Skus)
			for _, z := range reg.Zones {
				if z != nil {
					n += len(z.Skus)
				}
			}
		}
	}
	return n
}

type key struct{ project, service, region string }

// sums are a record's figures while SKUs are added up.
type sums struct{ kg, m3 part }

// part is one quantity of a record while its SKUs are added up.
type part struct{ sum, negative float64 }

func (p *part) add(v float64) {
	p.sum += v
	p.negative = min(p.negative, v)
}

// value is the record's value: the sum of its SKUs or, when one of them
// is negative, the lowest of them. A negative SKU is not a measurement;
// summed with the others, it would hide in what looks like one, while as
// the record's value the one policy for such values applies to it
// (provider.Record.Sanitize, which the refresher applies, counts and
// logs): the record no longer carries the quantity.
func (p part) value() float64 {
	if p.negative < 0 {
		return p.negative
	}
	return p.sum
}

// aggregate sums one month's answer to project × product category ×
// region. Every SKU counts once: those of each zone, and those tied to the
// region itself (Object Storage, Kubernetes, serverless, ...), which the
// API lists in the region's own skus, outside every zone. The project,
// region and zone totals are not added: they are sums of those SKUs.
//
// The API's values decode as float32 (about seven significant digits);
// they are summed in float64, so that adding thousands of small SKUs to a
// large one loses nothing more than the API's own rounding.
func aggregate(resp *ef.ImpactDataResponse, m provider.Month) *monthData {
	acc := make(map[key]*sums)
	d := &monthData{projects: make(map[string]bool)}
	add := func(k key, s *ef.SkuImpact) (kg float64) {
		if s == nil || s.TotalSkuImpact == nil {
			return 0
		}
		a := acc[k]
		if a == nil {
			a = &sums{}
			acc[k] = a
		}
		kg = float64(s.TotalSkuImpact.KgCo2Equivalent)
		a.kg.add(kg)
		a.m3.add(float64(s.TotalSkuImpact.M3WaterUsage))
		return kg
	}
	for _, proj := range resp.Projects {
		if proj == nil {
			continue
		}
		project := label(proj.ProjectID, provider.AccountPlaceholder)
		d.projects[project] = true
		for _, reg := range proj.Regions {
			if reg == nil {
				continue
			}
			region := label(string(reg.Region), Unknown)
			var kg float64
			for _, s := range reg.Skus {
				if s != nil {
					kg += add(key{project, service(s), region}, s)
				}
			}
			for _, z := range reg.Zones {
				if z == nil {
					continue
				}
				for _, s := range z.Skus {
					if s != nil {
						kg += add(key{project, service(s), region}, s)
					}
				}
			}
			if reg.TotalRegionImpact != nil && !addsUp(float64(reg.TotalRegionImpact.KgCo2Equivalent), kg) {
				d.mismatches++
			}
		}
	}
	for k, a := range acc {
		d.records = append(d.records, provider.Record{
			Provider:         Name,
			Account:          k.project,
			Service:          k.service,
			Location:         k.region,
			Scope:            provider.ScopeUnspecified,
			Month:            m,
			EmissionsGrams:   a.kg.value() * GramsPerKilogram,
			WaterCubicMeters: a.m3.value(),
			Known:            provider.Emissions | provider.Water,
		})
	}
	return d
}

// service is the service label of a SKU: its product category.
//
// Why the product category rather than the service category: both are
// enums of the API, so both keep the label bounded (17 product categories
// against 9 service categories, never the unbounded SKU), but a product
// category (instances, object_storage, kubernetes, elastic_metal, ...) is
// what the other clouds' service label names (Amazon EC2, Cloud Run),
// while a service category (compute, storage) lumps products a user acts
// on separately, such as Elastic Metal and Dedibox in baremetal. Each
// product belongs to one service category, so coarser views can be
// rebuilt in queries; the reverse is impossible.
func service(s *ef.SkuImpact) string {
	if s.ProductCategory == "" || s.ProductCategory == ef.ProductCategoryUnknownProductCategory {
		return Unknown
	}
	return label(string(s.ProductCategory), Unknown)
}

// label makes a server-supplied string a label value: valid UTF-8,
// bounded, never empty.
func label(s, empty string) string {
	if s == "" {
		return empty
	}
	return provider.Truncate(s, maxLabelBytes)
}

// addsUp compares a float32 total with the float64 sum of its float32
// parts, allowing for the total's own rounding to float32 (a relative
// 6e-8) and some slack for how the API adds.
func addsUp(total, sum float64) bool {
	return math.Abs(total-sum) <= 1e-6+1e-5*math.Abs(total)
}

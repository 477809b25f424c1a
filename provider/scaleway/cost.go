package scaleway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	billing "github.com/scaleway/scaleway-sdk-go/api/billing/v2beta1"
	"github.com/scaleway/scaleway-sdk-go/scw"
	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// USDPerEUR converts Scaleway's euros to the dollars every cost record
// carries. It is a fixed rate, not the day's, on purpose: a cost feed's
// dollars are the denominator of an intensity (grams per dollar of a
// published month) and the factor of an estimate (a later month's dollars
// times that intensity), where any fixed rate cancels, while a moving one
// would add the exchange rate's swings to the estimate's error. Read the
// records as euros at this rate, not as an accurate dollar figure.
const USDPerEUR = 1.08

// CostLocation is the location label of every cost record: the Billing
// API gives no region, so a record covers a project's product category in
// every region, and an estimate matches it at project × product category.
const CostLocation = "all"

// Paging of ListConsumptions: the API's largest page, and a bound on the
// pages of one month that only a broken server reaches.
const (
	consumptionPageSize = 100
	maxConsumptionPages = 10000
)

var _ provider.CostFeed = (*Provider)(nil)

type costKey struct {
	month            provider.Month
	project, service string
}

// Costs implements provider.CostFeed: the consumption of each month, the
// month in progress to date, per project and product category, in US
// dollars (USDPerEUR), labelled as Fetch labels emissions where the
// Billing API allows: the project id, and the footprint's product
// category the invoice's product name stands for (productCategory). The
// Billing API gives no region: every record's location is CostLocation.
//
// Request plan: ListConsumptions (billing/v2beta1) per month, its billing
// period ("YYYY-MM", a calendar month), for the organization, in pages of
// 100 lines ordered by category name, until the lines read reach the
// total count the answer gives; months run Concurrency at once, the first
// alone. Months that have not begun are not asked for; configured
// projects are kept from the organization's lines rather than asked for
// one by one. Values are untaxed and before discounts, which the API
// reports apart.
func (p *Provider) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	now := time.Now()
	var ms []provider.Month
	for _, m := range slices.Compact(slices.Sorted(slices.Values(months))) {
		if !m.Start().After(now) {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return nil, nil
	}
	perMonth := make([]map[costKey]float64, len(ms))
	var err error
	if perMonth[0], err = p.monthCost(ctx, ms[0]); err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for i, m := range ms[1:] {
		g.Go(func() error {
			sums, err := p.monthCost(gctx, m)
			perMonth[i+1] = sums
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var records []provider.Record
	for _, sums := range perMonth {
		for k, usd := range sums {
			records = append(records, provider.Record{Provider: Name, Account: k.project, Service: k.service, Location: CostLocation,
				Scope: provider.ScopeNone, Month: k.month, CostUSD: usd, Known: provider.Cost})
		}
	}
	slices.SortFunc(records, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service))
	})
	return records, nil
}

// monthCost reads month m's consumption, page by page.
func (p *Provider) monthCost(ctx context.Context, m provider.Month) (map[costKey]float64, error) {
	period := fmt.Sprintf("%04d-%02d", m.Year(), int(m.Month()))
	var keep map[string]bool
	if len(p.opts.ProjectIDs) > 0 {
		keep = make(map[string]bool, len(p.opts.ProjectIDs))
		for _, id := range p.opts.ProjectIDs {
			keep[strings.ToLower(id)] = true
		}
	}
	sums := map[costKey]float64{}
	read := 0
	for page := int32(1); ; page++ {
		what := fmt.Sprintf("%s (%s, page %d)", opConsumptions, period, page)
		if page > maxConsumptionPages {
			return nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("scaleway: %s: malformed response: more than %d pages", what, maxConsumptionPages))
		}
		resp := &billing.ListConsumptionsResponse{}
		x := &exchange{into: resp}
		size := uint32(consumptionPageSize)
		_, err := p.billing.ListConsumptions(&billing.ListConsumptionsRequest{
			OrganizationID: &p.org,
			BillingPeriod:  &period,
			Page:           &page,
			PageSize:       &size,
			// A key that does not change while the period's lines are
			// updated, unlike updated_at, the default.
			OrderBy: billing.ListConsumptionsRequestOrderByCategoryNameAsc,
		}, scw.WithContext(withExchange(ctx, x)))
		if err != nil {
			return nil, p.classify(ctx, opConsumptions, x, err)
		}
		n := len(resp.Consumptions)
		read += n
		more := uint64(read) < resp.TotalCount
		// A last page that holds nothing is a month without consumption,
		// not a page in a run of empty ones.
		if n > 0 || more {
			if err := httpx.Page(ctx, n); err != nil {
				return nil, p.classify(ctx, opConsumptions, x, err)
			}
		}
		for i, c := range resp.Consumptions {
			if err := p.addConsumption(sums, keep, m, c); err != nil {
				return nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("scaleway: %s: malformed response: line %d: %w", what, i+1, err))
			}
		}
		p.log.Debug("Scaleway consumption page", "period", period, "page", page, "lines", n, "total", resp.TotalCount)
		if !more {
			return sums, nil
		}
	}
}

// addConsumption adds one line to sums, unless its project is not one of
// keep's.
func (p *Provider) addConsumption(sums map[costKey]float64, keep map[string]bool, m provider.Month, c *billing.ListConsumptionsResponseConsumption) error {
	if c == nil {
		return errors.New("null line")
	}
	project := label(strings.ToLower(strings.TrimSpace(c.ProjectID)), provider.AccountPlaceholder)
	if keep != nil && !keep[project] {
		return nil
	}
	if c.Value == nil {
		return errors.New("no value")
	}
	rate := 0.0
	switch strings.ToUpper(strings.TrimSpace(c.Value.CurrencyCode)) {
	case "EUR":
		rate = USDPerEUR
	case "USD":
		rate = 1
	default:
		return fmt.Errorf("value in %q, want EUR", provider.Truncate(c.Value.CurrencyCode, 16))
	}
	// Money is whole units and nanos of the same sign.
	v := (float64(c.Value.Units) + float64(c.Value.Nanos)/1e9) * rate
	k := costKey{month: m, project: project, service: productCategory(c.ProductName)}
	sum := sums[k] + v
	if math.IsInf(sum, 0) || math.IsNaN(sum) {
		return errors.New("the value sums beyond range")
	}
	sums[k] = sum
	return nil
}

// productCategories maps the invoice's product names, in snake case, to
// the footprint's product categories (ef.ProductCategory) they bill, so
// that cost and emissions share the service label. The invoice names a
// few products otherwise than the footprint's enum does.
var productCategories = map[string]string{
	"instance":           "instances",
	"instances":          "instances",
	"elastic_metal":      "elastic_metal",
	"dedibox":            "dedibox",
	"apple_silicon":      "apple_silicon",
	"mac_mini":           "apple_silicon",
	"block_storage":      "block_storage",
	"object_storage":     "object_storage",
	"load_balancer":      "load_balancer",
	"load_balancers":     "load_balancer",
	"kubernetes":         "kubernetes",
	"kubernetes_kapsule": "kubernetes",
	"kubernetes_kosmos":  "kubernetes",
	"kapsule":            "kubernetes",
	"managed_database_for_postgresql_and_mysql":  "managed_relational_databases",
	"managed_databases_for_postgresql_and_mysql": "managed_relational_databases",
	"managed_relational_databases":               "managed_relational_databases",
	"managed_mongodb":                            "managed_mongodb",
	"managed_database_for_mongodb":               "managed_mongodb",
	"managed_database_for_redis":                 "managed_redis",
	"managed_redis":                              "managed_redis",
	"redis":                                      "managed_redis",
	"managed_inference":                          "managed_inference",
	"generative_apis":                            "generative_apis",
	"serverless_functions":                       "serverless_functions",
	"serverless_containers":                      "serverless_containers",
	"serverless_jobs":                            "serverless_jobs",
}

// productCategory is the service label of an invoice line: the
// footprint's product category its product stands for, else the product
// name in snake case (a product the footprint does not cover, such as
// Cockpit, whose cost has no emissions to match), else Unknown.
func productCategory(product string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(product) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			under = false
		default:
			under = true
		}
	}
	name := b.String()
	if c, ok := productCategories[name]; ok {
		return c
	}
	return label(name, Unknown)
}

package oci

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/usageapi"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// usd is the currency the exporter's cost is in.
const usd = "USD"

// Costs implements provider.CostFeed: the cost of each of months (the
// current one to date; later months are not asked for) per compartment
// path, service and region, keyed exactly as Fetch keys the emissions.
//
// Request plan: one RequestSummarizedUsages query (queryType COST,
// MONTHLY, grouped by service, region and compartmentPath at the
// entry's compartment_depth) per contiguous run of months, split into
// runs of a year at most, from midnight UTC on the run's first day to
// midnight UTC on the first day after it; pages follow opc-next-page.
// The usual call, the months since the latest published one plus the
// one the intensity comes from, is one request. The Usage API needs the
// same policy as the emissions ("read usage-report") and costs nothing.
//
// computedAmount is the cost OCI computes for the usage, in the
// tenancy's currency; credits are another query type, left out. The SDK decodes it as float32, about seven
// significant digits (a cent in USD 100,000), which the sums keep in
// float64. A tenancy billed in another currency than US dollars is
// served in its own currency, with a warning: the estimate divides and
// multiplies by the same currency, so it holds, but the cost records'
// unit is then not the dollar.
func (p *Provider) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	d, err := p.readCost(ctx, months, nil)
	if err != nil {
		return nil, err
	}
	costs := d.sorted()
	out := make([]provider.Record, len(costs))
	for i, c := range costs {
		out[i] = c.Record
	}
	return out, nil
}

// readCost reads the cost of months as Costs documents, grouped by the
// value of tag too when tag is set (TagCosts): the same queries, one
// more grouping.
func (p *Provider) readCost(ctx context.Context, months []provider.Month, tag *tagKey) (*costData, error) {
	d := &costData{tag: tag, sums: make(map[costKey]float64), currencies: make(map[string]bool)}
	current := provider.MonthOf(p.opts.Now())
	want := make(map[provider.Month]bool, len(months))
	for _, m := range months {
		if m <= current {
			want[m] = true
		}
	}
	runs := split(provider.Runs(slices.Collect(maps.Keys(want))), maxMonthsPerQuery)
	if len(runs) == 0 {
		return d, nil
	}
	api, tenancy, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	for _, run := range runs {
		if err := p.costQuery(ctx, api, tenancy, run, want, d); err != nil {
			return nil, err
		}
	}
	if len(d.currencies) > 1 {
		return nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("oci: %s: malformed response: items in several currencies (%s), which do not add up",
			d.op(), strings.Join(slices.Sorted(maps.Keys(d.currencies)), ", ")))
	}
	for c := range d.currencies {
		if c != usd {
			p.warnCurrency(c)
		}
	}
	return d, nil
}

// warnCurrency warns once that the tenancy's cost is not in US dollars.
func (p *Provider) warnCurrency(currency string) {
	p.mu.Lock()
	first := !p.currencyLogged[currency]
	p.currencyLogged[currency] = true
	p.mu.Unlock()
	if first {
		p.log.Warn("OCI reports the tenancy's cost in another currency than US dollars; the cost records carry it unconverted",
			"currency", currency)
	}
}

// costQuery runs one cost query, every page of it, into d.
func (p *Provider) costQuery(ctx context.Context, api *usageapi.UsageapiClient, tenancy string, run [2]provider.Month,
	want map[provider.Month]bool, d *costData) error {
	op := d.op()
	ctx = withEndpoint(ctx, d.endpoint())
	depth := float32(p.opts.CompartmentDepth)
	req := usageapi.RequestSummarizedUsagesRequest{
		RequestSummarizedUsagesDetails: usageapi.RequestSummarizedUsagesDetails{
			TenantId:          common.String(tenancy),
			TimeUsageStarted:  &common.SDKTime{Time: run[0].Start()},
			TimeUsageEnded:    &common.SDKTime{Time: run[1].End()},
			Granularity:       usageapi.RequestSummarizedUsagesDetailsGranularityMonthly,
			QueryType:         usageapi.RequestSummarizedUsagesDetailsQueryTypeCost,
			IsAggregateByTime: common.Bool(false),
			GroupBy:           groupBy(),
			CompartmentDepth:  &depth,
		},
	}
	if d.tag != nil {
		req.GroupByTag = []usageapi.Tag{d.tag.wire()}
	}
	if p.opts.PageSize > 0 {
		req.Limit = common.Int(p.opts.PageSize)
	}
	return p.pages(ctx, op, nil, func(md common.RequestMetadata, page *string) (int, *string, error) {
		req.RequestMetadata, req.Page = md, page
		resp, err := api.RequestSummarizedUsages(sdkContext(ctx), req)
		if err != nil {
			return 0, nil, p.classify(ctx, op, err, resp.RawResponse)
		}
		for i := range resp.Items {
			if err := d.add(&resp.Items[i], want); err != nil {
				return 0, nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("oci: %s: malformed response: %w", op, err))
			}
		}
		return len(resp.Items), resp.OpcNextPage, nil
	})
}

// costData accumulates the cost queries' items.
type costData struct {
	// tag is the tag the queries group by too; nil for Costs.
	tag        *tagKey
	sums       map[costKey]float64
	currencies map[string]bool
}

// costKey is the key of a cost record, and its tag's value.
type costKey struct {
	recordKey
	value string
}

// op names the queries in errors and logs.
func (d *costData) op() string {
	if d.tag != nil {
		return opTags
	}
	return opCost
}

// endpoint names the queries in the request self-metric.
func (d *costData) endpoint() string {
	if d.tag != nil {
		return endpointTags
	}
	return endpointCost
}

// add files one item under its key, the key of the emissions (see
// carbonData.add), and the value of d's tag.
func (d *costData) add(it *usageapi.UsageSummary, want map[provider.Month]bool) error {
	if it.TimeUsageStarted == nil {
		return errors.New("an item has no timeUsageStarted")
	}
	m := provider.MonthOf(it.TimeUsageStarted.Time)
	if it.TimeUsageEnded != nil && provider.MonthOf(it.TimeUsageEnded.Add(-time.Nanosecond)) != m {
		return fmt.Errorf("a monthly item spans %s to %s", it.TimeUsageStarted.UTC().Format(time.RFC3339), it.TimeUsageEnded.UTC().Format(time.RFC3339))
	}
	if it.IsForecast != nil && *it.IsForecast {
		return errors.New("an item is a forecast, which no query asked for")
	}
	if it.ComputedAmount == nil {
		// An item without an amount has no cost to add.
		return nil
	}
	v := float64(*it.ComputedAmount)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.New("an item's computedAmount is not a finite number")
	}
	currency := strings.ToUpper(strings.TrimSpace(deref(it.Currency)))
	if currency == "" {
		currency = usd
	}
	k := costKey{recordKey: keyOf(m, it.CompartmentPath, it.Service, it.Region)}
	if d.tag != nil {
		var err error
		if k.value, err = d.tag.valueOf(it.Tags); err != nil {
			return err
		}
	}
	if !want[m] {
		return nil
	}
	d.currencies[provider.Truncate(currency, 16)] = true
	d.sums[k] += v
	return nil
}

// sorted returns the sums as cost records with their tag's value,
// sorted.
func (d *costData) sorted() []provider.TagCost {
	out := make([]provider.TagCost, 0, len(d.sums))
	for k, v := range d.sums {
		out = append(out, provider.TagCost{Value: k.value, Record: provider.Record{Provider: Name, Account: k.account,
			Service: k.service, Location: k.location, Month: k.month, CostUSD: v, Known: provider.Cost}})
	}
	slices.SortFunc(out, func(a, b provider.TagCost) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location), cmp.Compare(a.Value, b.Value))
	})
	return out
}

package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// opCostAndUsage is the Cost Explorer operation the cost feed calls.
const opCostAndUsage = "GetCostAndUsage"

// Cost Explorer's dimensions and the metric the cost feed reads.
const (
	ceLinkedAccount = "LINKED_ACCOUNT"
	ceRegion        = "REGION"
	ceService       = "SERVICE"
	ceRecordType    = "RECORD_TYPE"

	// costMetric is the cost of each key. Amortized, because the
	// estimate divides emissions by cost per account, region and
	// service: unblended cost books a Savings Plan's or a reservation's
	// fee where it was bought and the usage it covers at zero, which
	// would make the covered keys' grams per dollar explode; amortized
	// cost spreads the fees over the usage they cover, where the
	// emissions are.
	costMetric = "AmortizedCost"
	costUnit   = "USD"
	// noRegion is Cost Explorer's REGION of charges tied to no region.
	noRegion = "NoRegion"
	ceDate   = "2006-01-02"
)

// excludedRecordTypes are the charges the cost feed leaves out: credits
// and refunds come and go with no change in usage, and taxes carry no
// emissions; each would move a key's grams per dollar for nothing.
var excludedRecordTypes = []string{"Credit", "Refund", "Tax"}

// Bounds of the cost feed. Cost Explorer serves the current month and the
// 13 before it (38 months only after an opt-in); older months are never
// asked for. Every request, each page included, is billed USD 0.01: a
// call of the cost feed sends at most MaxCostRequests (USD 2), whatever
// the pages. The plan below needs one request per region at most, plus
// one; the bound is above the run of empty pages a refresh's budget
// stops by default (httpx.DefaultLimits), so that a server that pages
// forever is reported as such.
const (
	CostExplorerMonths = 14
	MaxCostRequests    = 200
	// costConcurrency bounds the requests in flight: Cost Explorer
	// throttles a few requests per second per account.
	costConcurrency = 4
)

// Costs implements provider.CostFeed: the amortized cost of each of
// months (the current one to date), per usage account, region and
// service, with the Sustainability API's values of each, in US dollars.
// Months outside the CostExplorerMonths that Cost Explorer serves yield
// no records.
//
// Request plan. Cost Explorer groups by at most two dimensions per
// request, and the emissions are keyed by three, so one dimension is
// split over requests: the months asked for, as one period, are first
// grouped by LINKED_ACCOUNT and REGION, which names every account and
// region with cost; then one request per value of whichever of the two
// has fewer values, filtered on it and grouped by the other and SERVICE.
// A member account, or an organization in one region, needs two
// requests; an organization of n accounts in r regions 1 + min(n, r),
// and since AWS has a few dozen regions, an organization of any size
// needs at most one request per region it uses, while splitting by
// account (the other fixed choice) would cost one per account. Every
// request leaves out credits, refunds and taxes, reads AmortizedCost at
// MONTHLY granularity, and is billed USD 0.01 per page; pages follow
// NextPageToken.
func (p *Provider) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	c := p.newCostQuery(months, opCostAndUsage)
	if c == nil {
		return nil, nil
	}

	accounts, regions := make(map[string]bool), make(map[string]bool)
	err := c.query(ctx, dimensions(ceLinkedAccount, ceRegion), nil, func(keys []string, _ provider.Month, _ float64) {
		accounts[keys[0]], regions[keys[1]] = true, true
	})
	if err != nil {
		return nil, err
	}
	split, group := ceLinkedAccount, []string{ceRegion, ceService}
	values := slices.Sorted(maps.Keys(accounts))
	if len(regions) < len(accounts) {
		split, group = ceRegion, []string{ceLinkedAccount, ceService}
		values = slices.Sorted(maps.Keys(regions))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(costConcurrency)
	for _, v := range values {
		g.Go(func() error {
			return c.query(gctx, dimensions(group...), dimensionIs(split, v),
				func(keys []string, m provider.Month, amount float64) {
					var account, region, service string
					if split == ceLinkedAccount {
						account, region, service = v, keys[0], keys[1]
					} else {
						account, region, service = keys[0], v, keys[1]
					}
					c.add(costKey{account: cmp.Or(account, provider.AccountPlaceholder), service: cmp.Or(serviceOf(service), Unknown),
						location: costRegion(region), month: m}, amount)
				})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p.log.Debug("Read cost from Cost Explorer", "months", len(c.want), "split_by", split, "values", len(values),
		"requests", c.requests.Load(), "usd", fmt.Sprintf("%.2f", float64(c.requests.Load())*0.01))
	return c.records(), nil
}

// costRegion is the location label of a Cost Explorer region: the
// Sustainability API's codes are the same, and a charge tied to no region
// is Unknown, as emissions that name no region are.
func costRegion(r string) string {
	if r == "" || r == noRegion {
		return Unknown
	}
	return r
}

// costKey is what the cost is summed by: the labels of the emissions it
// estimates and, for the tag feed, the tag's value.
type costKey struct {
	account, service, location string
	month                      provider.Month
	value                      string
}

// costQuery is one call of the cost or the tag feed: its operation, for
// messages, its period, the months kept, the sums and the requests sent.
type costQuery struct {
	p        *Provider
	op       string
	period   *types.DateInterval
	want     map[provider.Month]bool
	requests atomic.Int64

	mu   sync.Mutex
	sums map[costKey]float64
}

// newCostQuery returns the query of op for those of months Cost Explorer
// serves, the CostExplorerMonths to the current one, as one period; nil
// when it serves none of them.
func (p *Provider) newCostQuery(months []provider.Month, op string) *costQuery {
	current := provider.MonthOf(p.opts.Now())
	oldest := current.Add(-(CostExplorerMonths - 1))
	want := make(map[provider.Month]bool, len(months))
	for _, m := range months {
		if m >= oldest && m <= current {
			want[m] = true
		}
	}
	if len(want) == 0 {
		p.log.Debug("No requested month is within what Cost Explorer serves", "operation", op, "oldest", oldest.String())
		return nil
	}
	ms := slices.Sorted(maps.Keys(want))
	return &costQuery{p: p, op: op, want: want, sums: make(map[costKey]float64), period: &types.DateInterval{
		Start: aws.String(ms[0].Start().Format(ceDate)),
		// The end is exclusive; Cost Explorer takes the first day of next
		// month for the current month to date.
		End: aws.String(ms[len(ms)-1].End().Format(ceDate)),
	}}
}

func (c *costQuery) add(k costKey, v float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sums[k] += v
}

// filter is the request's filter: the charges that carry emissions, and
// the split dimension's value, when set.
func filter(split *types.Expression) *types.Expression {
	usage := types.Expression{Not: &types.Expression{Dimensions: &types.DimensionValues{
		Key: types.DimensionRecordType, Values: excludedRecordTypes}}}
	if split == nil {
		return &usage
	}
	return &types.Expression{And: []types.Expression{*split, usage}}
}

// dimension groups by Cost Explorer's dimension d.
func dimension(d string) types.GroupDefinition {
	return types.GroupDefinition{Type: types.GroupDefinitionTypeDimension, Key: aws.String(d)}
}

// dimensions groups by Cost Explorer's dimensions ds.
func dimensions(ds ...string) []types.GroupDefinition {
	out := make([]types.GroupDefinition, len(ds))
	for i, d := range ds {
		out[i] = dimension(d)
	}
	return out
}

// dimensionIs selects the cost whose dimension d has one of values.
func dimensionIs(d string, values ...string) *types.Expression {
	return &types.Expression{Dimensions: &types.DimensionValues{Key: types.Dimension(d), Values: values}}
}

// query runs one GetCostAndUsage query over the period, every page of
// it, handing each group of a wanted month to f with its keys, in the
// order of groupBy; a tag's key is its value, "" for cost without it.
func (c *costQuery) query(ctx context.Context, groupBy []types.GroupDefinition, split *types.Expression,
	f func(keys []string, m provider.Month, amount float64)) error {
	p := c.p
	in := &costexplorer.GetCostAndUsageInput{
		TimePeriod:  c.period,
		Granularity: types.GranularityMonthly,
		Metrics:     []string{costMetric},
		Filter:      filter(split),
		GroupBy:     groupBy,
	}
	seen := make(map[string]bool)
	for n := 1; ; n++ {
		if c.requests.Add(1) > MaxCostRequests {
			_, off := costUse(c.op)
			return p.fail(provider.ReasonOther, 0, fmt.Errorf("aws: %s: reading the cost would take more than %d Cost Explorer requests (USD 0.01 each); "+
				"ask for fewer months or %s", c.op, MaxCostRequests, off))
		}
		out, err := p.ce.GetCostAndUsage(ctx, in)
		if err != nil {
			return p.classify(ctx, c.op, err)
		}
		groups := 0
		for _, r := range out.ResultsByTime {
			groups += len(r.Groups)
			if err := c.page(&r, groupBy, f); err != nil {
				return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: %w", c.op, err))
			}
		}
		// Charged to the refresh's budget, which ends a run of empty
		// pages that link to more.
		if err := httpx.Page(ctx, groups); err != nil {
			return p.classify(ctx, c.op, err)
		}
		next := aws.ToString(out.NextPageToken)
		switch {
		case next == "":
			return nil
		case seen[next]:
			return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: NextPageToken repeats an earlier one", c.op))
		case n == maxPages:
			return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: more than %d pages", c.op, maxPages))
		}
		seen[next] = true
		in.NextPageToken = aws.String(next)
		p.log.Debug("Fetching the next page", "operation", c.op, "page", n+1)
	}
}

// page reads one period of an answer.
func (c *costQuery) page(r *types.ResultByTime, groupBy []types.GroupDefinition, f func(keys []string, m provider.Month, amount float64)) error {
	if r.TimePeriod == nil || r.TimePeriod.Start == nil {
		return errors.New("a result has no time period")
	}
	start, err := time.Parse(ceDate, aws.ToString(r.TimePeriod.Start))
	if err != nil {
		return fmt.Errorf("a result starts at %q, not a date", provider.Truncate(aws.ToString(r.TimePeriod.Start), 64))
	}
	m := provider.MonthOf(start)
	if !start.Equal(m.Start()) {
		return fmt.Errorf("a monthly result starts on %s, not on the first day of a month", start.Format(ceDate))
	}
	for _, g := range r.Groups {
		if len(g.Keys) != len(groupBy) {
			return fmt.Errorf("a group has %d keys for %d groupings", len(g.Keys), len(groupBy))
		}
		keys, err := groupKeys(g.Keys, groupBy)
		if err != nil {
			return err
		}
		v, ok := g.Metrics[costMetric]
		if !ok || v.Amount == nil {
			return fmt.Errorf("a group has no %s", costMetric)
		}
		if u := aws.ToString(v.Unit); u != costUnit {
			return fmt.Errorf("%s is in %q; only %s is understood", costMetric, provider.Truncate(u, 16), costUnit)
		}
		amount, err := strconv.ParseFloat(aws.ToString(v.Amount), 64)
		if err != nil || math.IsNaN(amount) || math.IsInf(amount, 0) {
			return fmt.Errorf("%s amount %q is not a number", costMetric, provider.Truncate(aws.ToString(v.Amount), 64))
		}
		if c.want[m] {
			f(keys, m, amount)
		}
	}
	return nil
}

// records returns the sums as cost records, sorted.
func (c *costQuery) records() []provider.Record {
	tagged := c.tagRecords()
	out := make([]provider.Record, len(tagged))
	for i, t := range tagged {
		out[i] = t.Record
	}
	return out
}

// tagRecords returns the sums as the cost of a tag's values, sorted.
func (c *costQuery) tagRecords() []provider.TagCost {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]provider.TagCost, 0, len(c.sums))
	for k, v := range c.sums {
		out = append(out, provider.TagCost{Record: provider.Record{Provider: Name, Account: k.account, Service: k.service,
			Location: k.location, Month: k.month, CostUSD: v, Known: provider.Cost}, Value: k.value})
	}
	slices.SortFunc(out, func(a, b provider.TagCost) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location), cmp.Compare(a.Value, b.Value))
	})
	return out
}

package gcp

import (
	"context"
	"errors"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The cost feed, for provisional months.
//
// Google exports a month's Carbon Footprint on the 15th of the next
// month, while the standard billing export receives the current month's
// rows several times a day. The cost feed reads the billing export alone,
// with the billing query of Fetch unchanged: the same columns, the same
// grouping (project, service description, region or else multi-region,
// with the carbon rows' labels), the same ingestion-time partition window
// per run of months and the same max_bytes_billed. Asked for the current
// month, it reads the rows exported so far: the month to date. It runs no
// carbon query.
//
// The queries carry the job label cloudcarbon_query=cost, and their
// requests are observed under the endpoint names "costs.jobs.query",
// "costs.jobs.getQueryResults" and "costs.jobs.get", so that what the
// provisional months cost in BigQuery shows apart from the published
// data's queries. The permissions are those of the billing query: BigQuery
// Job User on the project and BigQuery Data Viewer on the billing export's
// dataset.

// feed is a reader of the billing export besides Fetch: the cost feed
// or the tag feed. It names its queries' cloudcarbon_query job label,
// prefixes its requests' endpoint names and opens its errors, so that
// what each costs and how each fails shows apart from the published
// data's queries.
type feed struct {
	label          string // the cloudcarbon_query job label
	endpointPrefix string // prefixes the endpoint names of its requests
	name           string // opens its error messages
}

var (
	costFeedKind = &feed{label: "cost", endpointPrefix: "costs.", name: "cost feed"}
	tagFeedKind  = &feed{label: "tags", endpointPrefix: "tags.", name: "tag feed"}
)

type feedKey struct{}

// withFeed marks ctx as f's.
func withFeed(ctx context.Context, f *feed) context.Context {
	return context.WithValue(ctx, feedKey{}, f)
}

// feedOf returns the feed ctx is marked with, nil for Fetch's.
func feedOf(ctx context.Context) *feed {
	f, _ := ctx.Value(feedKey{}).(*feed)
	return f
}

// errNoBillingTable is the cost feed of a source without a billing table.
var errNoBillingTable = errors.New("gcp: provisional months need the billing export: set billing_table")

// ReadCosts returns the net cost in US dollars of each of months (the
// current one to date) from the billing export, in records that carry
// cost only, labelled as Fetch labels emissions: project, service
// description and region or multi-region. A month the export holds no
// row of yields no record. It is the cost feed of a source that asks for
// provisional months (see Config.Provisional); errors are classified as
// Fetch's, a missing permission naming the roles.
func (p *Provider) ReadCosts(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	if p.billing == nil {
		return nil, &provider.Error{Reason: provider.ReasonBadRequest, Err: errNoBillingTable}
	}
	ms := uniqueMonths(months)
	if len(ms) == 0 {
		return nil, nil
	}
	rows, err := p.queryBilling(withFeed(ctx, costFeedKind), ms)
	if err != nil {
		return nil, err
	}
	res, err := p.build(ms, nil, rows)
	if err != nil {
		return nil, err
	}
	p.log.DebugContext(ctx, "gcp cost feed read", "months", len(ms), "records", len(res.Records))
	return res.Records, nil
}

// costFeed is the provider of a source that asks for provisional months:
// the Provider, which implements provider.CostFeed through it. A source
// that does not ask gets the bare *Provider, which does not, so that no
// caller reads cost it was not asked to.
type costFeed struct{ *Provider }

var _ provider.CostFeed = costFeed{}

// Costs implements provider.CostFeed.
func (c costFeed) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	return c.ReadCosts(ctx, months)
}

// NewCostFeed returns p as the provider of a source that asks for
// provisional months: p, implementing provider.CostFeed with ReadCosts.
func NewCostFeed(p *Provider) provider.Provider { return withFeeds(p, true, false) }

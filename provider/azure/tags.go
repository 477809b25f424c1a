package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

var _ provider.TagFeed = (*Provider)(nil)

// Bounds of a tag. Azure takes tag names of up to 512 characters and
// values of up to 256; a value is kept whole up to 256 characters of
// four bytes each, and anything longer, which no real value is, is cut.
const (
	maxTagKeyBytes   = 512
	maxTagValueBytes = 1024
)

// tagQueryKey marks the context of TagCosts' queries, so that
// endpointName counts them apart from Costs' (they are the same
// operation, told apart by their body only).
type tagQueryKey struct{}

// isTagQuery reports whether req is one of TagCosts' queries.
func isTagQuery(req *http.Request) bool {
	return req.Context().Value(tagQueryKey{}) != nil
}

// TagCosts implements provider.TagFeed: the ActualCost of each month, the
// month in progress to date, in US dollars, per subscription, resource
// type and value of the tag key, labelled as Costs labels cost, but for
// the location, which is "" in every record.
//
// Query plan. Costs' plan (one query per subscription and month begun,
// further pages by nextLink), each query grouped by ResourceType and by
// the tag, {"type": "TagKey", "name": key}, in place of ResourceLocation:
// Cost Management takes two groupings at most, and the subscription is
// the scope. The resource type is the grouping kept because a
// subscription's emissions per dollar differ more between resource types
// than between its regions. The granularity is therefore subscription,
// resource type and month, and a value's share applies to every region of
// its type. The region as well would take one more query per region a
// subscription uses, filtered to it (the filter takes one dimension), for
// each subscription and month that spans more than one.
//
// Cost per call, as Costs': [subscription list pages, if listing] +
// subscriptions × months × pages, within the request budget, counted as
// cost_management_tag_query (EndpointCostTagQuery). Queries are free of
// charge, and throttled per scope and tenant as Costs' are.
//
// Values. Each row answers TagKey and TagValue: the key and the value
// where the cost carries the tag; null, or empty, where it does not
// (untagged resources, charges of no resource such as Marketplace,
// reservations and support), which becomes Value "", as does a tag whose
// value is empty. Tag names are case-insensitive in Azure, so TagKey is
// matched without case; a row of another key answers another question
// and fails the read. Values are case-sensitive and kept as they are,
// made valid UTF-8 and bounded (maxTagValueBytes). A key no cost carries
// gives every record the Value "", and no error.
func (p *Provider) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	if key == "" || len(key) > maxTagKeyBytes {
		return nil, p.fail(provider.ReasonOther, 0, fmt.Errorf("azure: a tag key is 1 to %d bytes; got %d", maxTagKeyBytes, len(key)))
	}
	sums, err := p.readCosts(context.WithValue(ctx, tagQueryKey{}, true), months, key)
	if err != nil || sums == nil {
		return nil, err
	}
	records := make([]provider.TagCost, 0, len(sums))
	for k, v := range sums {
		records = append(records, provider.TagCost{Value: k.value, Record: provider.Record{Provider: Name, Account: k.account,
			Service: k.service, Scope: provider.ScopeNone, Month: k.month, CostUSD: v, Known: provider.Cost}})
	}
	slices.SortFunc(records, func(a, b provider.TagCost) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Value, b.Value))
	})
	return records, nil
}

// tagValue is the value of key in a row whose TagKey and TagValue columns
// hold name and value: "" when the row's cost does not carry the tag.
func (p *Provider) tagValue(key string, name, value any) (string, error) {
	n, ok1 := optString(name)
	v, ok2 := optString(value)
	switch {
	case !ok1 || !ok2:
		return "", fmt.Errorf("%s or %s is not a string", colTagKey, colTagValue)
	case strings.TrimSpace(n) == "":
		return "", nil
	case !strings.EqualFold(strings.TrimSpace(n), key):
		return "", errors.New(colTagKey + " " + p.oneLine(n) + " is not the tag asked for")
	}
	return provider.Truncate(v, maxTagValueBytes), nil
}

package aws

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// opCostByTag names the tag feed's requests in messages: the cost feed's
// operation and permission, read for allocate_by.
const opCostByTag = opCostAndUsage + " by tag"

// Bounds of the tag feed. After its survey, a read of one key splits into
// at most MaxTagSplit requests, plus one for the cost without the tag:
// with the survey, at most MaxTagSplit + 2 requests (USD 0.22) per key and
// read before pages, and never more than MaxCostRequests with them. An
// estate that would need more is read at the survey's granularity, per
// account, in one request.
const (
	MaxTagSplit = 20
	// MaxTagKeyChars is the longest tag key AWS allows, in characters.
	MaxTagKeyChars = 128
	// maxTagValueBytes bounds a value, which AWS allows 256 characters
	// (at most four bytes each) long.
	maxTagValueBytes = 1024
)

// byTag marks the context of the tag feed's requests, so that the request
// self-metric counts them apart from the cost feed's (methodOf).
type byTag struct{}

func isByTag(req *http.Request) bool { return req.Context().Value(byTag{}) != nil }

// TagCosts implements provider.TagFeed: the amortized cost of each of
// months (the current one to date) per usage account, service (the
// Sustainability API's, as Costs maps them) and value of the cost
// allocation tag key, "" for cost without it, read from Cost Explorer
// with the filter and metric of Costs. Location is "" in every record:
// Cost Explorer groups by two keys at most, the tag takes one, and the
// account and the service are worth more than the region (a team's
// services differ far more in grams per dollar than its regions' grids,
// and an account is where a team's cost lives). A key Cost Explorer does
// not know, or that is not activated as a cost allocation tag, is no
// error: AWS reports all cost as "key$", without the tag.
//
// Request plan, one period for all months. A survey grouped by
// LINKED_ACCOUNT and the tag names the accounts that carry it (t) and its
// values (v). Then, whichever is fewer: one request per tagged account,
// grouped by the tag and SERVICE, and one for the other accounts grouped
// by LINKED_ACCOUNT and SERVICE; or one request per value, filtered on it
// and grouped by LINKED_ACCOUNT and SERVICE, and one for the cost that
// carries none of the values. A member account reads a key in 2 or 3
// requests, a key nothing carries in 2, an organization in 2 + min(t, v).
// When min(t, v) is over MaxTagSplit, the survey's own answer is served:
// per account, service "" too.
func (p *Provider) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	c := p.newCostQuery(months, opCostByTag)
	if c == nil {
		return nil, nil
	}
	ctx = context.WithValue(ctx, byTag{}, true)
	s := tagSurvey{accounts: map[string]bool{}, tagged: map[string]bool{}, values: map[string]bool{}}
	survey := []types.GroupDefinition{dimension(ceLinkedAccount), tagGroup(key)}
	// The survey runs alone: s needs no lock.
	err := c.query(ctx, survey, nil, func(keys []string, m provider.Month, amount float64) {
		s.add(keys[0], keys[1])
		c.add(costKey{account: cmp.Or(keys[0], provider.AccountPlaceholder), month: m, value: keys[1]}, amount)
	})
	if err != nil {
		return nil, err
	}
	plan := s.plan(key)
	if plan.by == "" {
		p.log.Info("Allocating per account only: the tag's accounts and values are each more than a read may split into",
			"key", key, "accounts", len(s.tagged), "values", len(s.values), "max_split", MaxTagSplit)
		return c.tagRecords(), nil
	}
	c.sums = make(map[costKey]float64)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(costConcurrency)
	for _, sp := range plan.splits {
		g.Go(func() error {
			return c.query(gctx, sp.groupBy, sp.filter, func(keys []string, m provider.Month, amount float64) {
				account, service, value := sp.labels(keys)
				c.add(costKey{account: cmp.Or(account, provider.AccountPlaceholder), service: cmp.Or(serviceOf(service), Unknown),
					month: m, value: value}, amount)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p.log.Debug("Read cost by tag from Cost Explorer", "key", key, "months", len(c.want), "split_by", plan.by,
		"accounts", len(s.tagged), "values", len(s.values), "requests", c.requests.Load(),
		"usd", fmt.Sprintf("%.2f", float64(c.requests.Load())*0.01))
	return c.tagRecords(), nil
}

// tagSurvey is what the survey of a key found: the accounts with cost,
// those with cost that carries the tag, its values, and whether some cost
// does not carry it.
type tagSurvey struct {
	accounts, tagged, values map[string]bool
	untagged                 bool
}

func (s *tagSurvey) add(account, value string) {
	s.accounts[account] = true
	if value == "" {
		s.untagged = true
		return
	}
	s.tagged[account], s.values[value] = true, true
}

// tagPlan is the split of a read: by "account" or "value", or "" for
// none (the survey is served).
type tagPlan struct {
	by     string
	splits []tagSplit
}

// tagSplit is one request of a split: its grouping and filter, and the
// account, service and value its keys name.
type tagSplit struct {
	groupBy []types.GroupDefinition
	filter  *types.Expression
	labels  func(keys []string) (account, service, value string)
}

// plan splits a read of key by whichever of the tagged accounts and the
// values are fewer (see TagCosts).
func (s *tagSurvey) plan(key string) tagPlan {
	tagged, values := slices.Sorted(maps.Keys(s.tagged)), slices.Sorted(maps.Keys(s.values))
	if min(len(tagged), len(values)) > MaxTagSplit {
		return tagPlan{}
	}
	byAccount := dimensions(ceLinkedAccount, ceService)
	untagged := func(keys []string) (string, string, string) { return keys[0], keys[1], "" }
	if len(tagged) > len(values) {
		plan := tagPlan{by: "value"}
		for _, v := range values {
			plan.splits = append(plan.splits, tagSplit{groupBy: byAccount, filter: tagIs(key, v),
				labels: func(keys []string) (string, string, string) { return keys[0], keys[1], v }})
		}
		if s.untagged {
			plan.splits = append(plan.splits, tagSplit{groupBy: byAccount, filter: &types.Expression{Not: tagIs(key, values...)}, labels: untagged})
		}
		return plan
	}
	plan := tagPlan{by: "account"}
	for _, a := range tagged {
		plan.splits = append(plan.splits, tagSplit{groupBy: []types.GroupDefinition{tagGroup(key), dimension(ceService)},
			filter: dimensionIs(ceLinkedAccount, a),
			labels: func(keys []string) (string, string, string) { return a, keys[1], keys[0] }})
	}
	if len(s.accounts) > len(tagged) {
		// The accounts none of whose cost carries the tag, all at once.
		var others *types.Expression
		if len(tagged) > 0 {
			others = &types.Expression{Not: dimensionIs(ceLinkedAccount, tagged...)}
		}
		plan.splits = append(plan.splits, tagSplit{groupBy: byAccount, filter: others, labels: untagged})
	}
	return plan
}

// tagGroup groups by the values of the cost allocation tag key.
func tagGroup(key string) types.GroupDefinition {
	return types.GroupDefinition{Type: types.GroupDefinitionTypeTag, Key: aws.String(key)}
}

// tagIs selects the cost whose tag key has one of values.
func tagIs(key string, values ...string) *types.Expression {
	return &types.Expression{Tags: &types.TagValues{Key: aws.String(key), Values: values}}
}

// groupKeys returns a group's keys with each tag's turned into its
// value.
func groupKeys(keys []string, groupBy []types.GroupDefinition) ([]string, error) {
	for i, g := range groupBy {
		if g.Type != types.GroupDefinitionTypeTag {
			continue
		}
		v, err := tagValue(aws.ToString(g.Key), keys[i])
		if err != nil {
			return nil, err
		}
		keys[i] = v
	}
	return keys, nil
}

// tagValue returns the value of a tag's group: Cost Explorer spells it
// "key$value", and "key$" for cost without the tag (or with an empty
// value, which it does not tell apart). Neither keys nor values may hold
// a '$', so the key's prefix delimits the value.
func tagValue(key, group string) (string, error) {
	v, ok := strings.CutPrefix(group, key+"$")
	switch {
	case !ok:
		return "", fmt.Errorf("a group of tag %s is %q, not %s$ and a value", provider.Truncate(key, 128), provider.Truncate(group, 64),
			provider.Truncate(key, 128))
	case len(v) > maxTagValueBytes:
		return "", fmt.Errorf("a value of tag %s is %d bytes long; AWS allows 256 characters", provider.Truncate(key, 128), len(v))
	}
	return v, nil
}

// costUse says what a read of Cost Explorer by op is for, and what stops
// it, for messages.
func costUse(op string) (what, off string) {
	if op == opCostByTag {
		return "to read cost by tag for allocate_by", "remove allocate_by"
	}
	return "to read cost for provisional months", "set provisional: false"
}

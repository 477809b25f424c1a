package provider

import (
	"context"
	"testing"
)

type bothFeeds struct{ Provider }

func (bothFeeds) Costs(context.Context, []Month) ([]Record, error)             { return nil, nil }
func (bothFeeds) TagCosts(context.Context, []Month, string) ([]TagCost, error) { return nil, nil }

func TestFeeds(t *testing.T) {
	for _, tc := range []struct{ cost, tags bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		p := Feeds(bothFeeds{}, tc.cost, tc.tags)
		_, cost := p.(CostFeed)
		_, tags := p.(TagFeed)
		if cost != tc.cost || tags != tc.tags {
			t.Errorf("asked cost %v, tags %v: a cost feed %v, a tag feed %v", tc.cost, tc.tags, cost, tags)
		}
	}
}

package aws_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/allocation"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	awsp "github.com/cloudcarbon/cloudcarbon_exporter/provider/aws"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

func tagCosts(t *testing.T, p *awsp.Provider, key string, months ...provider.Month) ([]provider.TagCost, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.TagCosts(ctx, months, key)
}

// tagLabels is a cell of the tag feed and a value.
type tagLabels struct {
	account, service, value string
	month                   provider.Month
}

// wantTagCosts is the fake's own cost per account, Sustainability API
// service and value of key; with coarse, per account and value only.
func wantTagCosts(ds awsfake.Dataset, key string, coarse bool, months ...provider.Month) map[tagLabels]float64 {
	return fakeCosts(ds, months, func(c awsfake.CostRow, service string) tagLabels {
		if coarse {
			service = ""
		}
		return tagLabels{c.Account, service, c.Tags[key], c.Month}
	})
}

func byTagLabels(t *testing.T, recs []provider.TagCost) map[tagLabels]float64 {
	t.Helper()
	got := map[tagLabels]float64{}
	for _, r := range recs {
		if r.Provider != "aws" || r.Known != provider.Cost || r.Location != "" || r.Scope != provider.ScopeNone {
			t.Errorf("not a tag record of an account and service: %+v", r)
		}
		got[tagLabels{r.Account, r.Service, r.Value, r.Month}] += r.CostUSD
	}
	return got
}

// describe names a request's grouping and filter, such as
// "TAG:team,SERVICE | LINKED_ACCOUNT=1 & usage".
func describe(b ceBody) string {
	return b.groupBy() + " | " + b.Filter.describe()
}

func (e ceExpression) describe() string {
	switch {
	case e.usageOnly():
		return "usage"
	case len(e.And) > 0:
		var parts []string
		for _, x := range e.And {
			parts = append(parts, x.describe())
		}
		return strings.Join(parts, " & ")
	case e.Not != nil:
		return "not " + e.Not.describe()
	case e.Dimensions != nil:
		return e.Dimensions.Key + "=" + strings.Join(e.Dimensions.Values, ",")
	case e.Tags != nil:
		return "tag " + e.Tags.Key + "=" + strings.Join(e.Tags.Values, ",")
	}
	return "?"
}

// manyAccounts is an organization of n accounts with EC2 in us-east-1 and
// S3 in eu-west-1 in February 2026.
func manyAccounts(n int) (awsfake.Dataset, []string) {
	var ds awsfake.Dataset
	var ids []string
	for i := range n {
		id := fmt.Sprintf("1000000000%02d", i)
		ids = append(ids, id)
		ds.Rows = append(ds.Rows,
			awsfake.Row{Account: id, Region: "us-east-1", Service: "AmazonEC2", Month: feb26, Scope2LBM: 0.1 * float64(i+1), Scope3LBM: 0.05},
			awsfake.Row{Account: id, Region: "eu-west-1", Service: "AmazonS3", Month: feb26, Scope2LBM: 0.02, Scope3LBM: 0.01})
	}
	return ds, ids
}

// ec2Apart tags the management account's EC2 apart: its two Cost
// Explorer services, one service of the emissions, carry two values;
// CloudFront and the other account none.
func ec2Apart(c awsfake.CostRow) string {
	if c.Account != mgmt {
		return ""
	}
	return map[string]string{"Amazon Elastic Compute Cloud - Compute": "web", "EC2 - Other": "ml"}[c.Service]
}

type tagCase struct {
	name   string
	ds     awsfake.Dataset
	key    string
	tag    awsfake.Tagger
	coarse bool
	// requests are the ones after the survey, described.
	requests []string
}

func tagCases() []tagCase {
	org, ids := manyAccounts(5)
	big, bigIDs := manyAccounts(awsp.MaxTagSplit + 1)
	return []tagCase{{
		name: "fewer tagged accounts than values",
		ds:   dataset(), key: awsfake.TeamKey,
		tag:      ec2Apart,
		requests: []string{"TAG:team,SERVICE | LINKED_ACCOUNT=" + mgmt + " & usage", "LINKED_ACCOUNT,SERVICE | not LINKED_ACCOUNT=" + mgmt + " & usage"},
	}, {
		name: "fewer values than tagged accounts",
		ds:   org, key: awsfake.TeamKey,
		tag: func(c awsfake.CostRow) string {
			if c.Region == "us-east-1" {
				return awsfake.PlatformTeam
			}
			return ""
		},
		requests: []string{"LINKED_ACCOUNT,SERVICE | tag team=platform & usage", "LINKED_ACCOUNT,SERVICE | not tag team=platform & usage"},
	}, {
		name: "every account tagged, every cost",
		ds:   org, key: awsfake.TeamKey,
		tag: func(c awsfake.CostRow) string {
			return map[string]string{ids[0]: "web", ids[1]: "web"}[c.Account] + "x"
		},
		requests: []string{"LINKED_ACCOUNT,SERVICE | tag team=webx & usage", "LINKED_ACCOUNT,SERVICE | tag team=x & usage"},
	}, {
		name: "an EKS namespace",
		ds:   dataset(), key: "aws:eks:namespace",
		tag: func(c awsfake.CostRow) string {
			if c.Service == "Amazon Elastic Compute Cloud - Compute" {
				return "checkout"
			}
			return ""
		},
		requests: []string{"TAG:aws:eks:namespace,SERVICE | LINKED_ACCOUNT=" + mgmt + " & usage",
			"LINKED_ACCOUNT,SERVICE | not LINKED_ACCOUNT=" + mgmt + " & usage"},
	}, {
		name: "a key nothing carries",
		ds:   dataset(), key: "cost-center",
		tag:      func(awsfake.CostRow) string { return "" },
		requests: []string{"LINKED_ACCOUNT,SERVICE | usage"},
	}, {
		name: "more accounts and values than a read splits into",
		ds:   big, key: awsfake.TeamKey, coarse: true,
		tag: func(c awsfake.CostRow) string { return "team-" + c.Account[len(c.Account)-2:] },
	}, {
		name: "many accounts, few values",
		ds:   big, key: awsfake.TeamKey,
		tag: func(c awsfake.CostRow) string {
			if c.Account == bigIDs[3] {
				return ""
			}
			return "web"
		},
		requests: []string{"LINKED_ACCOUNT,SERVICE | tag team=web & usage", "LINKED_ACCOUNT,SERVICE | not tag team=web & usage"},
	}}
}

// TestTagCosts reads the cost of a tag's values, per account and service,
// and checks what each plan sends: the survey by account and tag, then
// requests by tagged account or by value, whichever are fewer, and one
// for the rest; or, past MaxTagSplit of both, the survey alone.
func TestTagCosts(t *testing.T) {
	for _, tt := range tagCases() {
		t.Run(tt.name, func(t *testing.T) {
			ds := tt.ds.WithCosts(now).WithTags(tt.key, tt.tag)
			e, p := ceEnv(t, ds)
			months := []provider.Month{jan26, feb26, mar26}
			recs, err := tagCosts(t, p, tt.key, months...)
			if err != nil {
				t.Fatal(err)
			}
			compareCosts(t, byTagLabels(t, recs), wantTagCosts(ds, tt.key, tt.coarse, months...))

			bodies := ceBodies(t, e.fake)
			if len(bodies) == 0 || describe(bodies[0]) != "LINKED_ACCOUNT,TAG:"+tt.key+" | usage" {
				t.Fatalf("the first request is not the survey: %+v", bodies)
			}
			var got []string
			for i, b := range bodies {
				if b.TimePeriod.Start != "2026-01-01" || b.TimePeriod.End != "2026-04-01" || b.Granularity != "MONTHLY" ||
					!slices.Equal(b.Metrics, []string{"AmortizedCost"}) {
					t.Errorf("request %d: %+v, want January to March, MONTHLY, AmortizedCost", i, b)
				}
				if i > 0 {
					got = append(got, describe(b))
				}
			}
			slices.Sort(got)
			if want := slices.Sorted(slices.Values(tt.requests)); !slices.Equal(got, want) {
				t.Errorf("requests after the survey:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if n := e.requests["cost_and_usage_by_tag"]; n != len(bodies) || e.requests["cost_and_usage"] != 0 {
				t.Errorf("observed %v for %d requests, want all as cost_and_usage_by_tag", e.requests, len(bodies))
			}
		})
	}
}

// TestTagCostErrors checks the tag feed's failures: each names the read
// and what the user can do.
func TestTagCostErrors(t *testing.T) {
	page := func(keys string) awsfake.Fault {
		return awsfake.Fault{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
			Body: `{"ResultsByTime":[{"TimePeriod":{"Start":"2026-01-01","End":"2026-02-01"},"Groups":[{"Keys":[` + keys + `],` +
				`"Metrics":{"AmortizedCost":{"Amount":"1.5","Unit":"USD"}}}]}]}`, Times: 1}
	}
	for _, tt := range []struct {
		name   string
		setup  func(*awsfake.Server)
		reason provider.Reason
		wantIn []string
	}{
		{"denied", func(f *awsfake.Server) { f.Deny(awsfake.ActionCostAndUsage, "") }, provider.ReasonPermission,
			[]string{"aws: GetCostAndUsage by tag: 400 AccessDeniedException", "needs the IAM permission ce:GetCostAndUsage to read cost by tag for allocate_by",
				"or remove allocate_by"}},
		{"another key's groups", func(f *awsfake.Server) { f.Inject(awsfake.OpCostAndUsage, page(`"1","owner$web"`)) }, provider.ReasonMalformed,
			[]string{`a group of tag team is "owner$web", not team$ and a value`}},
		{"a value longer than AWS allows", func(f *awsfake.Server) {
			f.Inject(awsfake.OpCostAndUsage, page(`"1","team$`+strings.Repeat("v", 2000)+`"`))
		}, provider.ReasonMalformed, []string{"a value of tag team is 2000 bytes long"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, p := ceEnv(t, dataset().WithCosts(now).WithTags(awsfake.TeamKey, awsfake.Teams()))
			tt.setup(e.fake)
			_, err := tagCosts(t, p, awsfake.TeamKey, jan26)
			expectFailure(t, err, tt.reason, tt.wantIn...)
		})
	}
}

// TestTagAllocation: the records Fetch reads, split by what TagCosts
// reads (allocation.Fold and Split, as the exporter does), give each value
// what the fake's own reference gives it, in both methods, top-N folding
// included; the values of a month add up to its unallocated emissions.
// The demo's organization has five accounts, four teams (platform in
// several accounts, EC2's two Cost Explorer services of one cell tagged
// apart) and an untagged account; the tests' own (ec2Apart) has a cell of
// the emissions whose cost carries two values, one kept and one folded,
// and cells whose cost carries none.
func TestTagAllocation(t *testing.T) {
	demo := awsfake.Demo(now)
	for _, tt := range []struct {
		name  string
		ds    awsfake.Dataset
		month provider.Month
		top   int
	}{
		{"every value kept", demo, feb26, 100},
		{"two kept, the rest folded", demo, feb26, 2},
		{"150 values in one cell, 100 kept", demo.WithManyValues(awsfake.TeamKey, 150), feb26, 100},
		{"EC2's services tagged apart, one account untagged", dataset().WithCosts(now).WithTags(awsfake.TeamKey, ec2Apart), jan26, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, p := ceEnv(t, tt.ds)
			res, err := fetch(t, p, tt.month)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := tagCosts(t, p, awsfake.TeamKey, tt.month)
			if err != nil {
				t.Fatal(err)
			}
			tags, folded := allocation.Fold(recs, tt.top)
			got := map[string][2]float64{}
			var sum [2]float64
			for _, part := range allocation.Split(res.Records, tags) {
				g := got[part.Value]
				got[part.Value] = [2]float64{g[0] + part.EmissionsGrams, g[1] + part.MarketBasedGrams}
				sum[0] += part.EmissionsGrams
				sum[1] += part.MarketBasedGrams
			}
			want := tt.ds.ReferenceAllocation(tt.month, awsfake.TeamKey, tt.top)
			if len(got) != len(want) || folded.Kept != min(tt.top, folded.Values) {
				t.Errorf("values %v, want %+v; %+v", got, want, folded)
			}
			if other := slices.ContainsFunc(want, func(a fakehttp.Allocated) bool { return a.Value == allocation.Other }); other != (folded.Values > tt.top) {
				t.Errorf("the reference folds %v, Fold folds %d values past %d", other, folded.Values-folded.Kept, tt.top)
			}
			for _, w := range want {
				if g := got[w.Value]; !closeTo(g[0], w.Grams) || !closeTo(g[1], w.Market) {
					t.Errorf("%s: %v g and %v g market-based, want %v and %v", w.Value, g[0], g[1], w.Grams, w.Market)
				}
			}
			lbm, mbm := tt.ds.TotalBase(tt.month)
			if lbm == 0 || mbm == 0 || !closeTo(sum[0], lbm) || !closeTo(sum[1], mbm) {
				t.Errorf("the values add up to %v g and %v g market-based, the month's emissions are %v and %v", sum[0], sum[1], lbm, mbm)
			}
		})
	}
}

// closeTo compares to 1e-9 relative, the conservation the split keeps.
func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }

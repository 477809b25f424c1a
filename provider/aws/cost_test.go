package aws_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	awsp "github.com/cloudcarbon/cloudcarbon_exporter/provider/aws"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
)

// mar26 is the tests' current month: AWS has published February.
var mar26 = feb26 + 1

// costEnv starts the fake with ds and its cost as of the tests' clock, and
// returns a provider that reads Cost Explorer from it.
func costEnv(t *testing.T, ds awsfake.Dataset) (*env, *awsp.Provider) {
	t.Helper()
	return ceEnv(t, ds.WithCosts(now))
}

// ceEnv starts the fake with ds, its cost included, and returns a
// provider that reads Cost Explorer from it.
func ceEnv(t *testing.T, ds awsfake.Dataset) (*env, *awsp.Provider) {
	t.Helper()
	e := newEnv(t, ds)
	opts := e.options()
	opts.CostExplorerEndpoint = e.ts.URL
	return e, e.provider(t, opts)
}

func costs(t *testing.T, p *awsp.Provider, months ...provider.Month) ([]provider.Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Costs(ctx, months)
}

type costLabels struct {
	account, service, location string
	month                      provider.Month
}

// wantCosts is the fake's own cost per key of the Sustainability API: the
// amortized usage of the Cost Explorer services the fake bills each
// product code under.
func wantCosts(ds awsfake.Dataset, months ...provider.Month) map[costLabels]float64 {
	return fakeCosts(ds, months, func(c awsfake.CostRow, service string) costLabels {
		return costLabels{c.Account, service, c.Region, c.Month}
	})
}

// fakeCosts sums the fake's usage of months by key, which names a line's
// cell given the line and its service of the Sustainability API.
func fakeCosts[K comparable](ds awsfake.Dataset, months []provider.Month, key func(c awsfake.CostRow, service string) K) map[K]float64 {
	byName := map[string]string{}
	for _, r := range ds.Rows {
		for _, n := range awsfake.CostExplorerNames(r.Service) {
			byName[n] = r.Service
		}
	}
	want := map[K]float64{}
	for _, c := range ds.Costs {
		if c.RecordType == awsfake.RecordUsage && slices.Contains(months, c.Month) {
			want[key(c, byName[c.Service])] += c.Amortized
		}
	}
	return want
}

func byLabels(t *testing.T, recs []provider.Record) map[costLabels]float64 {
	t.Helper()
	got := map[costLabels]float64{}
	for _, r := range recs {
		if r.Provider != "aws" || r.Known != provider.Cost || r.Scope != provider.ScopeNone || r.EmissionsGrams != 0 {
			t.Errorf("not a cost record: %+v", r)
		}
		got[costLabels{r.Account, r.Service, r.Location, r.Month}] += r.CostUSD
	}
	return got
}

// compareCosts compares the cost served per key with the fake's own.
func compareCosts[K comparable](t *testing.T, got, want map[K]float64) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !near(g, w) {
			t.Errorf("%+v: USD %v (%v), want %v", k, g, ok, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%+v: USD %v, which the fake does not have", k, g)
		}
	}
}

// TestCosts reads the cost of two published months and the current one
// to date: per key of the Sustainability API, with Cost Explorer's
// service names mapped to its product codes (EC2's two services added
// up), credits, refunds and taxes left out, in three requests.
func TestCosts(t *testing.T) {
	e, p := costEnv(t, dataset())
	ds := e.fake.Dataset()
	recs, err := costs(t, p, jan26, feb26, mar26)
	if err != nil {
		t.Fatal(err)
	}
	got := byLabels(t, recs)
	compareCosts(t, got, wantCosts(ds, jan26, feb26, mar26))
	for _, m := range []provider.Month{jan26, feb26, mar26} {
		var sum float64
		for k, v := range got {
			if k.month == m {
				sum += v
			}
		}
		if want := ds.CostTotal(m); !near(sum, want) || want == 0 {
			t.Errorf("%s: USD %v, want %v", m, sum, want)
		}
	}

	// Every key of a published month is a key of its emissions, so that
	// the estimate finds its grams per dollar.
	res, err := fetch(t, p, jan26, feb26)
	if err != nil {
		t.Fatal(err)
	}
	carbon := map[costLabels]bool{}
	for _, r := range res.Records {
		carbon[costLabels{r.Account, r.Service, r.Location, r.Month}] = true
	}
	for k := range got {
		if k.month != mar26 && !carbon[k] {
			t.Errorf("cost key %+v has no emissions", k)
		}
	}
	// The current month, unpublished, has cost for the keys of the latest
	// published one.
	if !slices.ContainsFunc(recs, func(r provider.Record) bool {
		return r.Month == mar26 && r.Service == "AmazonS3" && r.Location == "eu-west-1"
	}) {
		t.Error("no cost for the current month")
	}

	// Two accounts in three regions: one survey, one request per account.
	if n := e.fake.Requests(awsfake.OpCostAndUsage); n != 3 {
		t.Errorf("%d Cost Explorer requests, want 3", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.requests["cost_and_usage"]; n != 3 {
		t.Errorf("%d observed cost_and_usage requests, want 3 (%v)", n, e.requests)
	}
}

// ceBody is a GetCostAndUsage request as the fake received it.
type ceBody struct {
	TimePeriod  struct{ Start, End string }
	Granularity string
	Metrics     []string
	GroupBy     []struct{ Type, Key string }
	Filter      ceExpression
}

type ceExpression struct {
	And        []ceExpression
	Not        *ceExpression
	Dimensions *ceValues
	Tags       *ceValues
}

type ceValues struct {
	Key    string
	Values []string
}

// groupBy names the groupings of b: a dimension by its key, a tag as
// TAG:key.
func (b ceBody) groupBy() string {
	var keys []string
	for _, g := range b.GroupBy {
		switch g.Type {
		case "DIMENSION":
			keys = append(keys, g.Key)
		case "TAG":
			keys = append(keys, "TAG:"+g.Key)
		default:
			return "not a dimension or a tag: " + g.Type
		}
	}
	return strings.Join(keys, ",")
}

// usageOnly reports whether e is the filter that leaves out credits,
// refunds and taxes.
func (e ceExpression) usageOnly() bool {
	return e.Not != nil && e.Not.Dimensions != nil && e.Not.Dimensions.Key == "RECORD_TYPE" &&
		slices.Equal(e.Not.Dimensions.Values, []string{"Credit", "Refund", "Tax"})
}

func ceBodies(t *testing.T, fake *awsfake.Server) []ceBody {
	t.Helper()
	var out []ceBody
	for _, raw := range fake.Bodies(awsfake.OpCostAndUsage) {
		var b ceBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestCostQueries checks the shape of the requests: the months asked for
// as one period (the current month ending on the first day of the next),
// amortized cost, monthly, usage only; a survey by account and region,
// then per value of the dimension with fewer values, by the other and
// the service.
func TestCostQueries(t *testing.T) {
	// Five accounts in two regions: split by region.
	var ds awsfake.Dataset
	for i, a := range []string{"100000000001", "100000000002", "100000000003", "100000000004", "100000000005"} {
		for _, r := range []string{"us-east-1", "eu-west-1"} {
			ds.Rows = append(ds.Rows, awsfake.Row{Account: a, Region: r, Service: []string{"AmazonEC2", "AmazonS3"}[i%2], Month: feb26,
				Scope2LBM: 0.1 * float64(i+1), Scope3LBM: 0.05})
		}
	}
	for _, tt := range []struct {
		name           string
		ds             awsfake.Dataset
		months         []provider.Month
		period         string
		split, grouped string
		values         []string
	}{
		{"fewer accounts", dataset(), []provider.Month{mar26, jan26}, "2026-01-01/2026-04-01",
			"LINKED_ACCOUNT", "REGION,SERVICE", []string{mgmt, prod}},
		{"fewer regions", ds, []provider.Month{feb26}, "2026-02-01/2026-03-01",
			"REGION", "LINKED_ACCOUNT,SERVICE", []string{"eu-west-1", "us-east-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, p := costEnv(t, tt.ds)
			if _, err := costs(t, p, tt.months...); err != nil {
				t.Fatal(err)
			}
			bodies := ceBodies(t, e.fake)
			if len(bodies) != 1+len(tt.values) {
				t.Fatalf("%d requests, want %d", len(bodies), 1+len(tt.values))
			}
			var values []string
			for i, b := range bodies {
				if got := b.TimePeriod.Start + "/" + b.TimePeriod.End; got != tt.period || b.Granularity != "MONTHLY" ||
					!slices.Equal(b.Metrics, []string{"AmortizedCost"}) {
					t.Errorf("request %d: period %s, granularity %s, metrics %v; want %s, MONTHLY, [AmortizedCost]", i, got, b.Granularity, b.Metrics, tt.period)
				}
				if i == 0 {
					if b.groupBy() != "LINKED_ACCOUNT,REGION" || !b.Filter.usageOnly() {
						t.Errorf("survey grouped by %s, filter %+v", b.groupBy(), b.Filter)
					}
					continue
				}
				f := b.Filter
				if b.groupBy() != tt.grouped || len(f.And) != 2 || f.And[0].Dimensions == nil || f.And[0].Dimensions.Key != tt.split ||
					len(f.And[0].Dimensions.Values) != 1 || !f.And[1].usageOnly() {
					t.Errorf("request %d grouped by %s, filter %+v; want by %s, on one %s, usage only", i, b.groupBy(), f, tt.grouped, tt.split)
					continue
				}
				values = append(values, f.And[0].Dimensions.Values[0])
			}
			if slices.Sort(values); !slices.Equal(values, tt.values) {
				t.Errorf("split on %v, want %v", values, tt.values)
			}
		})
	}
}

// TestCostWindow checks the months Cost Explorer serves, the current one
// and the 13 before: older months are not asked for, nor later ones.
func TestCostWindow(t *testing.T) {
	e, p := costEnv(t, dataset())
	recs, err := costs(t, p, mar26-20, mar26-14)
	if err != nil || len(recs) != 0 || e.fake.Requests(awsfake.OpCostAndUsage) != 0 {
		t.Fatalf("months out of Cost Explorer's window: %d records, %v, %d requests", len(recs), err, e.fake.Requests(awsfake.OpCostAndUsage))
	}
	if _, err := costs(t, p, mar26-14, mar26-13, mar26+1); err != nil {
		t.Fatal(err)
	}
	if b := ceBodies(t, e.fake); len(b) == 0 || b[0].TimePeriod.Start != "2025-02-01" || b[0].TimePeriod.End != "2025-03-01" {
		t.Errorf("period %+v, want the one month of the window, 2025-02", b)
	}
}

// TestCostErrors checks Cost Explorer's own failures: each is classified
// and says what to do.
func TestCostErrors(t *testing.T) {
	for _, tt := range []struct {
		name     string
		setup    func(*awsfake.Server)
		reason   provider.Reason
		wantIn   []string
		requests int
	}{
		{"denied", func(f *awsfake.Server) { f.Deny(awsfake.ActionCostAndUsage, "") }, provider.ReasonPermission,
			[]string{"GetCostAndUsage", "400 AccessDeniedException", "needs the IAM permission ce:GetCostAndUsage", "provisional: false"}, 1},
		{"not enabled", func(f *awsfake.Server) {
			f.Inject(awsfake.OpCostAndUsage, withCode(awsfake.ErrorFault(http.StatusBadRequest, "DataUnavailableException", "Data is not available."), 1))
		}, provider.ReasonNotFound, []string{"DataUnavailableException", "enable it in the Billing and Cost Management console"}, 1},
		{"throttled, then answered", func(f *awsfake.Server) {
			f.Inject(awsfake.OpCostAndUsage, withCode(awsfake.ErrorFault(http.StatusBadRequest, "LimitExceededException", "Rate exceeded"), 1))
		}, "", nil, 4},
		{"throttled throughout", func(f *awsfake.Server) {
			f.Inject(awsfake.OpCostAndUsage, withCode(awsfake.ErrorFault(http.StatusBadRequest, "LimitExceededException", "Rate exceeded"), 100))
		}, provider.ReasonThrottled, []string{"LimitExceededException"}, 3},
		{"a cost in euros", func(f *awsfake.Server) {
			f.Inject(awsfake.OpCostAndUsage, awsfake.Fault{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
				Body: `{"ResultsByTime":[{"TimePeriod":{"Start":"2026-01-01","End":"2026-02-01"},"Groups":[{"Keys":["1","us-east-1"],` +
					`"Metrics":{"AmortizedCost":{"Amount":"1.5","Unit":"EUR"}}}]}]}`, Times: 1})
		}, provider.ReasonMalformed, []string{`AmortizedCost is in "EUR"`}, 1},
		{"not a number", func(f *awsfake.Server) {
			f.Inject(awsfake.OpCostAndUsage, awsfake.Fault{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
				Body: `{"ResultsByTime":[{"TimePeriod":{"Start":"2026-01-01","End":"2026-02-01"},"Groups":[{"Keys":["1","us-east-1"],` +
					`"Metrics":{"AmortizedCost":{"Amount":"NaN","Unit":"USD"}}}]}]}`, Times: 1})
		}, provider.ReasonMalformed, []string{"is not a number"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, p := costEnv(t, dataset())
			tt.setup(e.fake)
			_, err := costs(t, p, jan26)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				expectFailure(t, err, tt.reason, tt.wantIn...)
			}
			if n := e.fake.Requests(awsfake.OpCostAndUsage); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			// The emissions are not the cost feed's: a denied cost leaves
			// them served.
			if _, err := fetch(t, p, jan26); err != nil {
				t.Errorf("Fetch after the cost failed: %v", err)
			}
		})
	}
}

// expectFailure checks that err is reason, says each of wantIn, and holds
// no secret.
func expectFailure(t *testing.T, err error, reason provider.Reason, wantIn ...string) {
	t.Helper()
	if got := provider.ReasonOf(err); got != reason {
		t.Fatalf("reason %s (%v), want %s", got, err, reason)
	}
	for _, w := range wantIn {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), canary) {
		t.Errorf("the secret is in %v", err)
	}
}

func withCode(f awsfake.Fault, times int) awsfake.Fault {
	f.Times = times
	return f
}

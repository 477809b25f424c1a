package oci_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

var (
	// mar26 is the cost tests' current month: Oracle has published
	// February.
	mar26 = feb26 + 1
	// costNow is the cost tests' clock.
	costNow = time.Date(2026, time.March, 20, 12, 0, 0, 0, time.UTC)
)

// costEnv starts the fake with ds and its cost as of costNow, and the
// options of a provider at that clock.
func costEnv(t *testing.T, ds ocifake.Dataset) (*env, oci.Options) {
	t.Helper()
	e := newEnv(t, ds.WithCosts(costNow))
	opts := e.options()
	opts.Now = func() time.Time { return costNow }
	return e, opts
}

func costs(t *testing.T, p *oci.Provider, months ...provider.Month) ([]provider.Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Costs(ctx, months)
}

type costLabels struct {
	account, service, location string
	month                      provider.Month
}

// wantCosts is the fake's own cost per key, compartments cut at depth.
func wantCosts(ds ocifake.Dataset, depth int, months ...provider.Month) map[costLabels]float64 {
	want := map[costLabels]float64{}
	for _, c := range ds.Costs {
		if !slices.Contains(months, c.Month) {
			continue
		}
		parts := strings.Split(c.CompartmentPath, "/")
		path := strings.Join(parts[:min(len(parts), depth+1)], "/")
		want[costLabels{path, c.Service, c.Region, c.Month}] += c.Cost
	}
	return want
}

func byLabels(t *testing.T, recs []provider.Record) map[costLabels]float64 {
	t.Helper()
	got := map[costLabels]float64{}
	for _, r := range recs {
		if r.Provider != "oci" || r.Known != provider.Cost || r.Scope != provider.ScopeNone {
			t.Errorf("not a cost record: %+v", r)
		}
		got[costLabels{r.Account, r.Service, r.Location, r.Month}] += r.CostUSD
	}
	return got
}

func compareCosts(t *testing.T, got, want map[costLabels]float64) {
	t.Helper()
	for k, w := range want {
		// Whole 64ths of a dollar: exact through the SDK's float32.
		if g, ok := got[k]; !ok || g != w {
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
// to date, per compartment path, service and region, keyed as the
// emissions are, in one request.
func TestCosts(t *testing.T) {
	e, opts := costEnv(t, dataset())
	p := newProvider(t, opts)
	recs, err := costs(t, p, jan26, feb26, mar26)
	if err != nil {
		t.Fatal(err)
	}
	got := byLabels(t, recs)
	compareCosts(t, got, wantCosts(e.fake.Dataset(), oci.DefaultCompartmentDepth, jan26, feb26, mar26))
	if !slices.ContainsFunc(recs, func(r provider.Record) bool { return r.Month == mar26 && r.Account == "acme/prod/web" }) {
		t.Error("no cost for the current month")
	}

	// Every key of a published month with power-based emissions is a key
	// of its emissions; the spend-only service has its cost too.
	res, err := fetch(t, p, jan26, feb26)
	if err != nil {
		t.Fatal(err)
	}
	carbon := map[costLabels]bool{}
	for _, r := range res.Records {
		carbon[costLabels{r.Account, r.Service, r.Location, r.Month}] = true
	}
	for k := range got {
		if k.month != mar26 && k.service != "API_GATEWAY" && !carbon[k] {
			t.Errorf("cost key %+v has no emissions", k)
		}
	}
	if _, ok := got[costLabels{"acme/prod/web", "API_GATEWAY", "us-ashburn-1", jan26}]; !ok {
		t.Error("no cost for the spend-only service")
	}
	if n := e.fake.Requests(ocifake.OpCost); n != 1 {
		t.Errorf("%d cost requests, want 1", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.requests["summarized_usages"]; n != 1 {
		t.Errorf("observed requests %v, want 1 summarized_usages", e.requests)
	}
}

type costBody struct {
	TenantID          string   `json:"tenantId"`
	TimeUsageStarted  string   `json:"timeUsageStarted"`
	TimeUsageEnded    string   `json:"timeUsageEnded"`
	Granularity       string   `json:"granularity"`
	QueryType         string   `json:"queryType"`
	IsAggregateByTime *bool    `json:"isAggregateByTime"`
	GroupBy           []string `json:"groupBy"`
	CompartmentDepth  *float64 `json:"compartmentDepth"`
}

// TestCostQueries checks what the cost feed asks for: COST, monthly,
// grouped as the emissions, at the entry's compartment depth, one period
// per run of months, none after the current month.
func TestCostQueries(t *testing.T) {
	e, opts := costEnv(t, dataset())
	opts.CompartmentDepth = 1
	p := newProvider(t, opts)
	recs, err := costs(t, p, dec25, feb26, mar26, mar26+1, mar26+2)
	if err != nil {
		t.Fatal(err)
	}
	var periods []string
	for _, raw := range e.fake.CostBodies() {
		var q costBody
		if err := json.Unmarshal(raw, &q); err != nil {
			t.Fatal(err)
		}
		if q.TenantID != tenancy || q.Granularity != "MONTHLY" || q.QueryType != "COST" || q.IsAggregateByTime == nil || *q.IsAggregateByTime ||
			q.CompartmentDepth == nil || *q.CompartmentDepth != 1 || !slices.Equal(q.GroupBy, []string{"service", "region", "compartmentPath"}) {
			t.Errorf("query %s", raw)
		}
		periods = append(periods, q.TimeUsageStarted+"/"+q.TimeUsageEnded)
	}
	if want := []string{"2025-12-01T00:00:00Z/2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z/2026-04-01T00:00:00Z"}; !slices.Equal(periods, want) {
		t.Errorf("periods %v, want %v", periods, want)
	}
	// Compartments below the depth are reported under their ancestor, as
	// the emissions are.
	compareCosts(t, byLabels(t, recs), wantCosts(e.fake.Dataset(), 1, dec25, feb26, mar26))
	if res, err := fetch(t, p, feb26); err != nil || !slices.ContainsFunc(res.Records, func(r provider.Record) bool { return r.Account == "acme/prod" }) {
		t.Errorf("emissions at depth 1: %+v %v", res.Records, err)
	}
	if recs, err := costs(t, p, mar26+1); err != nil || len(recs) != 0 || e.fake.Requests(ocifake.OpCost) != 2 {
		t.Errorf("a month after the current one: %v %v, %d requests", recs, err, e.fake.Requests(ocifake.OpCost))
	}
}

// costPage is a page of items, as the fake would write it.
func costPage(items ...string) ocifake.Fault {
	return ocifake.Fault{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: `{"groupBy":["service","region","compartmentPath"],"items":[` + strings.Join(items, ",") + `]}`, Times: 1}
}

func costItem(amount, currency, extra string) string {
	return `{"timeUsageStarted":"2026-01-01T00:00:00.000Z","timeUsageEnded":"2026-02-01T00:00:00.000Z","computedAmount":` + amount +
		`,"currency":"` + currency + `","service":"COMPUTE","region":"us-ashburn-1","compartmentPath":"acme"` + extra + `}`
}

// TestCostAnswers checks the feed's reading of answers: a denial names
// the policy, the currency is checked, forecasts and mixed currencies
// refused.
func TestCostAnswers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  func(*ocifake.Server)
		reason provider.Reason
		wantIn []string
		want   float64
		logs   string
	}{
		{name: "denied", setup: func(f *ocifake.Server) { f.Deny() }, reason: provider.ReasonPermission,
			wantIn: []string{"RequestSummarizedUsages", "404 NotAuthorizedOrNotFound", "Allow group <group> to read usage-report in tenancy", "provisional: false"}},
		{name: "in US dollars", setup: func(f *ocifake.Server) {
			f.Inject(ocifake.OpCost, costPage(costItem("1.5", "USD", ""), costItem("2.25", "", `,"compartmentName":"acme"`)))
		}, want: 3.75},
		{name: "in euros", setup: func(f *ocifake.Server) { f.Inject(ocifake.OpCost, costPage(costItem("4", "EUR", ""))) },
			want: 4, logs: "currency=EUR"},
		{name: "in two currencies", setup: func(f *ocifake.Server) {
			f.Inject(ocifake.OpCost, costPage(costItem("4", "EUR", ""), costItem("1", "USD", "")))
		}, reason: provider.ReasonMalformed, wantIn: []string{"several currencies (EUR, USD)"}},
		{name: "a forecast", setup: func(f *ocifake.Server) {
			f.Inject(ocifake.OpCost, costPage(costItem("1", "USD", `,"isForecast":true`)))
		},
			reason: provider.ReasonMalformed, wantIn: []string{"forecast"}},
		{name: "no amount", setup: func(f *ocifake.Server) { f.Inject(ocifake.OpCost, costPage(costItem("null", "USD", ""))) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, opts := costEnv(t, dataset())
			p := newProvider(t, opts)
			tt.setup(e.fake)
			recs, err := costs(t, p, jan26)
			if tt.reason != "" {
				if got := provider.ReasonOf(err); got != tt.reason {
					t.Fatalf("reason %s (%v), want %s", got, err, tt.reason)
				}
				for _, w := range tt.wantIn {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sum float64
			for _, r := range recs {
				sum += r.CostUSD
			}
			if sum != tt.want {
				t.Errorf("USD %v, want %v: %+v", sum, tt.want, recs)
			}
			if logs := e.logs.String(); tt.logs != "" && strings.Count(logs, tt.logs) != 1 {
				t.Errorf("logs do not say %q once:\n%s", tt.logs, logs)
			}
		})
	}
}

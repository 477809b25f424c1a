package scaleway_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

// costs reads the cost of months, which must succeed.
func costs(t *testing.T, p *scaleway.Provider, months ...provider.Month) []provider.Record {
	t.Helper()
	recs, err := p.Costs(context.Background(), months)
	if err != nil {
		t.Fatalf("Costs: %v", err)
	}
	return recs
}

// costsErr reads the cost of December, which must fail with a
// *provider.Error that does not hold the secret key.
func costsErr(t *testing.T, p *scaleway.Provider) *provider.Error {
	t.Helper()
	_, err := p.Costs(context.Background(), []provider.Month{dec24})
	pe, ok := errors.AsType[*provider.Error](err)
	switch {
	case err == nil:
		t.Fatal("Costs succeeded")
	case !ok:
		t.Fatalf("%T %v is not a *provider.Error", err, err)
	case strings.Contains(err.Error(), canary):
		t.Errorf("the secret key is in the error: %v", err)
	}
	return pe
}

// TestCostRequests: one ListConsumptions per month begun, for the
// organization, of its billing period, in pages of 100 lines ordered by a
// key that does not change while the period is updated; observed under
// its own endpoint name.
func TestCostRequests(t *testing.T) {
	ds := dataset().WithConsumptions()
	e := newEnv(t, ds)
	p := e.provider(t, e.options())
	future := provider.MonthOf(time.Now()) + 1
	costs(t, p, jan25, dec24, future, dec24)
	qs := e.fake.Queries(scalewayfake.OpConsumptions)
	var periods []string
	for _, q := range qs {
		if q.Get("organization_id") != org || q.Has("project_id") || q.Get("page") != "1" || q.Get("page_size") != "100" ||
			q.Get("order_by") != "category_name_asc" {
			t.Errorf("query %v", q)
		}
		periods = append(periods, q.Get("billing_period"))
	}
	slices.Sort(periods)
	if !slices.Equal(periods, []string{"2024-12", "2025-01"}) {
		t.Errorf("billing periods %v, want December and January once each, no month not begun", periods)
	}
	if got := e.codes(scaleway.EndpointConsumptions); !slices.Equal(got, []int{200, 200}) {
		t.Errorf("billing_consumptions attempts %v", got)
	}
	if n := e.fake.Requests(scalewayfake.OpImpactData) + e.fake.Requests(scalewayfake.OpAvailability); n != 0 {
		t.Errorf("%d footprint requests to read cost", n)
	}
}

// TestCostLabels: cost records carry the project and the footprint's
// product category of the emission records of the same SKUs, every
// region at once (the Billing API gives none), cost only, in dollars at
// the fixed rate; a product the footprint does not cover keeps its own
// name.
func TestCostLabels(t *testing.T) {
	ds := dataset().WithConsumptions()
	e := newEnv(t, ds)
	p := e.provider(t, e.options())
	recs := costs(t, p, dec24)
	res, err := p.Fetch(context.Background(), []provider.Month{dec24})
	if err != nil {
		t.Fatal(err)
	}
	carbon := map[scalewayfake.CostKey]bool{}
	for _, r := range res.Records {
		carbon[scalewayfake.CostKey{Project: r.Account, Service: r.Service}] = true
	}
	want := ds.CostTotals(dec24)
	got := map[scalewayfake.CostKey]float64{}
	for _, r := range recs {
		if r.Provider != scaleway.Name || r.Known != provider.Cost || r.Month != dec24 || r.Location != scaleway.CostLocation ||
			r.Scope != provider.ScopeNone {
			t.Errorf("record %+v", r)
		}
		k := scalewayfake.CostKey{Project: r.Account, Service: r.Service}
		if !carbon[k] && r.Service != "cockpit" {
			t.Errorf("cost of %+v matches no emissions (emissions: %v)", k, slices.Collect(maps.Keys(carbon)))
		}
		got[k] += r.CostUSD
	}
	if len(got) != len(want) {
		t.Errorf("cost keys %v, want %v", slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(want)))
	}
	for k, w := range want {
		if !near(got[k], w) {
			t.Errorf("%+v: %v dollars, want %v", k, got[k], w)
		}
	}
	for _, k := range []scalewayfake.CostKey{{Project: projA, Service: "instances"}, {Project: projA, Service: "kubernetes"},
		{Project: projB, Service: "elastic_metal"}, {Project: projB, Service: scaleway.Unknown}, {Project: projB, Service: "cockpit"}} {
		if _, ok := got[k]; !ok {
			t.Errorf("no cost for %+v", k)
		}
	}
}

// TestCostPaging: pages of one line, read until the total count.
func TestCostPaging(t *testing.T) {
	ds := dataset().WithConsumptions()
	e := newEnv(t, ds)
	e.fake.SetPageMax(1)
	recs := costs(t, e.provider(t, e.options()), dec24)
	lines := 0
	for _, c := range ds.Consumptions {
		if c.Month == dec24 {
			lines++
		}
	}
	qs := e.fake.Queries(scalewayfake.OpConsumptions)
	if len(qs) != lines {
		t.Fatalf("%d requests for %d lines in pages of one", len(qs), lines)
	}
	for i, q := range qs {
		if q.Get("page") != strconv.Itoa(i+1) {
			t.Errorf("request %d asks for page %s", i+1, q.Get("page"))
		}
	}
	var total float64
	for _, r := range recs {
		total += r.CostUSD
	}
	if !near(total, ds.CostTotal(dec24)) {
		t.Errorf("total %v, want %v", total, ds.CostTotal(dec24))
	}
}

// TestCostProjectFilter: configured projects are kept from the
// organization's lines, in the same requests.
func TestCostProjectFilter(t *testing.T) {
	ds := dataset().WithConsumptions()
	e := newEnv(t, ds)
	opts := e.options()
	opts.ProjectIDs = []string{projB}
	recs := costs(t, e.provider(t, opts), dec24)
	var total float64
	for _, r := range recs {
		if r.Account != projB {
			t.Errorf("record of project %s", r.Account)
		}
		total += r.CostUSD
	}
	if !near(total, ds.CostTotal(dec24, projB)) || total == 0 {
		t.Errorf("total %v, want %v", total, ds.CostTotal(dec24, projB))
	}
	if n := e.fake.Requests(scalewayfake.OpConsumptions); n != 1 {
		t.Errorf("%d requests, want one for the organization", n)
	}
}

// TestCostErrors: the billing permission is named when missing, apart
// from the footprint's; malformed lines fail the read.
func TestCostErrors(t *testing.T) {
	line := func(currency string) string {
		return `{"consumptions":[{"value":{"currency_code":"` + currency + `","units":1,"nanos":500000000},"product_name":"Instances","project_id":"` +
			projA + `","category_name":"Compute"}],"total_count":1}`
	}
	for _, tt := range []struct {
		name   string
		setup  func(e *env)
		reason provider.Reason
		want   []string
	}{
		{"billing denied", func(e *env) { e.fake.DenyBilling(true) }, provider.ReasonPermission,
			[]string{"ListConsumptions: 403 Forbidden", "BillingReadOnly", org, "provisional"}},
		{"unknown key", func(e *env) {
			e.fake.Inject(scalewayfake.OpConsumptions, scalewayfake.BillingErrorFault(http.StatusUnauthorized))
		}, provider.ReasonAuth, []string{"401", "Scaleway rejected the API key"}},
		{"pounds", func(e *env) {
			e.fake.Inject(scalewayfake.OpConsumptions, scalewayfake.Fault{Status: 200, Body: line("GBP")})
		}, provider.ReasonMalformed, []string{"line 1", `value in "GBP"`}},
		{"no value", func(e *env) {
			e.fake.Inject(scalewayfake.OpConsumptions, scalewayfake.Fault{Status: 200, Body: `{"consumptions":[{"project_id":"x"}],"total_count":1}`})
		}, provider.ReasonMalformed, []string{"line 1: no value"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dataset().WithConsumptions())
			tt.setup(e)
			pe := costsErr(t, e.provider(t, e.options()))
			t.Logf("error: %v", pe)
			if pe.Reason != tt.reason {
				t.Errorf("reason %s, want %s", pe.Reason, tt.reason)
			}
			for _, w := range tt.want {
				if !strings.Contains(pe.Error(), w) {
					t.Errorf("error %q does not say %q", pe, w)
				}
			}
		})
	}

	// The footprint's permission is not the billing's, and the other
	// way round.
	e := newEnv(t, dataset().WithConsumptions())
	e.fake.Deny(true)
	p := e.provider(t, e.options())
	if len(costs(t, p, dec24)) == 0 {
		t.Error("no cost read by a key denied the footprint only")
	}
	e.fake.Deny(false)
	e.fake.DenyBilling(true)
	if _, err := p.Fetch(context.Background(), []provider.Month{dec24}); err != nil {
		t.Errorf("a key denied billing only cannot read the footprint: %v", err)
	}
}

// TestCostThrottled: Scaleway's bare 429 is retried with backoff.
func TestCostThrottled(t *testing.T) {
	ds := dataset().WithConsumptions()
	e := newEnv(t, ds)
	e.fake.Inject(scalewayfake.OpConsumptions, times(scalewayfake.RateLimited(), 2))
	recs := costs(t, e.provider(t, e.options()), dec24)
	if len(recs) == 0 {
		t.Fatal("no cost")
	}
	if got := e.codes(scaleway.EndpointConsumptions); !slices.Equal(got, []int{429, 429, 200}) {
		t.Errorf("attempts %v", got)
	}
}

// TestCostDemo: the demo organization's consumption, the month in
// progress to date, equals the fake's for every month.
func TestCostDemo(t *testing.T) {
	now := time.Date(2025, time.March, 10, 0, 0, 0, 0, time.UTC)
	ds := scalewayfake.Demo(now)
	e := newEnv(t, ds)
	e.fake.SetNow(func() time.Time { return now })
	opts := e.options()
	opts.OrganizationID = ds.OrganizationID
	p := e.provider(t, opts)
	last := scalewayfake.LatestPublished(now)
	months := provider.Range(last-3, provider.MonthOf(now))
	recs := costs(t, p, months...)
	got := map[provider.Month]float64{}
	for _, r := range recs {
		got[r.Month] += r.CostUSD
	}
	for _, m := range months {
		if w := ds.CostTotal(m); w == 0 || !near(got[m], w) {
			t.Errorf("%s: %v dollars, want %v", m, got[m], w)
		}
	}
	if cur, prev := got[provider.MonthOf(now)], got[last]; cur > prev/2 {
		t.Errorf("the month in progress costs %v, more than half of the last month's %v on its 10th day", cur, prev)
	}
}

// TestProvisionalOption: the entry's provisional key reaches the
// provider, which reads cost either way.
func TestProvisionalOption(t *testing.T) {
	e := newEnv(t, dataset().WithConsumptions())
	for _, on := range []bool{false, true} {
		opts := e.options()
		opts.Provisional = on
		p := e.provider(t, opts)
		if p.Provisional() != on {
			t.Errorf("Provisional() = %v, want %v", p.Provisional(), on)
		}
		if len(costs(t, p, dec24)) == 0 {
			t.Errorf("no cost read with provisional %v", on)
		}
	}
}

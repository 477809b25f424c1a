package providertest

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// runCostFeed runs the scenarios of the cost feed: the cloud's real client,
// built from an entry that asks for provisional months, reads cost through
// the same HTTP layer, bounds and failure classification as emissions.
func runCostFeed(t *testing.T, c Cloud, out *outputs, secrets *[]string) {
	scenario := func(name string, s Scenario, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			h := Cloud{Plugin: c.Plugin, Start: c.CostFeed}.start(t, s, out)
			*secrets = append(*secrets, h.fake.Secret)
			*secrets = append(*secrets, h.fake.Derived...)
			f(h)
		})
	}
	scenario("totals", Scenario{}, func(h *harness) {
		got, err := h.costs(h.ts.Client(), httpx.Limits{}, 30*time.Second)
		if err != nil {
			h.t.Fatalf("Costs: %v", err)
		}
		compareTotals(h.t, got, h.fake.Expected)
	})
	scenario("paging", Scenario{PageSize: 2}, func(h *harness) {
		got, err := h.costs(h.ts.Client(), httpx.Limits{}, 30*time.Second)
		if err != nil {
			h.t.Fatalf("Costs: %v", err)
		}
		if n := len(h.inj.Arrivals()); n < 3 {
			h.t.Errorf("%d cost requests for pages of 2 rows, want at least 3", n)
		}
		compareTotals(h.t, got, h.fake.Expected)
	})
	scenario("retry after", Scenario{}, func(h *harness) {
		f := h.fake.Error(http.StatusTooManyRequests)
		f.Header = f.Header.Clone()
		if f.Header == nil {
			f.Header = http.Header{}
		}
		f.Header.Set("Retry-After", "2")
		h.inj.Inject(f)
		start := time.Now()
		if _, err := h.costs(h.ts.Client(), httpx.Limits{}, 30*time.Second); err != nil {
			h.t.Fatalf("Costs after one 429: %v", err)
		}
		if d := time.Since(start); d < 2*time.Second-50*time.Millisecond {
			h.t.Errorf("the cost feed was done %s after a 429 with Retry-After: 2", d)
		}
	})
	for _, fc := range []struct {
		name   string
		fault  func(h *harness) fakehttp.Fault
		reason provider.Reason
		want   func(h *harness) string
	}{
		{"server errors", func(h *harness) fakehttp.Fault { return h.fake.Error(http.StatusInternalServerError) }, provider.ReasonServer, nil},
		{"unauthorized", func(h *harness) fakehttp.Fault { return h.fake.Error(http.StatusUnauthorized) }, provider.ReasonAuth, nil},
		{"forbidden", func(h *harness) fakehttp.Fault { return h.fake.Error(http.StatusForbidden) }, provider.ReasonPermission,
			func(h *harness) string { return h.fake.Permission }},
		{"truncated body", func(*harness) fakehttp.Fault { return fakehttp.Truncated(`{"`) }, provider.ReasonMalformed, nil},
	} {
		scenario(fc.name, Scenario{}, func(h *harness) {
			h.inj.Inject(withTimes(fc.fault(h), 1000))
			_, err := h.costs(h.ts.Client(), httpx.Limits{}, 30*time.Second)
			want := ""
			if fc.want != nil {
				want = fc.want(h)
			}
			h.expectErr(err, fc.reason, want)
		})
	}
	scenario("untrusted certificate", Scenario{}, func(h *harness) {
		_, err := h.costs(nil, httpx.Limits{}, 30*time.Second)
		h.expectErr(err, provider.ReasonNetwork, "certificate")
		if n := h.inj.Requests(); n != 0 {
			h.t.Errorf("%d requests reached the server past an untrusted certificate", n)
		}
	})
	scenario("hung endpoint", Scenario{}, func(h *harness) {
		h.inj.Inject(fakehttp.Fault{Delay: time.Hour, Times: 1000})
		start := time.Now()
		_, err := h.costs(h.ts.Client(), httpx.Limits{}, 3*time.Second)
		h.expectErr(err, provider.ReasonTimeout, "")
		if d := time.Since(start); d > 5*time.Second {
			h.t.Errorf("the cost feed took %s, past its 3s deadline", d)
		}
	})
	scenario("endless empty pages", Scenario{}, func(h *harness) {
		if h.fake.EmptyPage == nil {
			h.t.Skipf("%s's cost API does not page", c.Plugin.Name)
		}
		h.inj.Replace(h.fake.EmptyPage)
		_, err := h.costs(h.ts.Client(), httpx.Limits{}, 30*time.Second)
		h.expectErr(err, provider.ReasonMalformed, "pages")
	})
	scenario("bytes per refresh", Scenario{}, func(h *harness) {
		_, err := h.costs(h.ts.Client(), httpx.Limits{MaxBytes: 1}, 30*time.Second)
		h.expectErr(err, provider.ReasonMalformed, "bytes")
	})
	scenario("records per refresh", Scenario{}, func(h *harness) {
		_, err := h.costs(h.ts.Client(), httpx.Limits{MaxRecords: 1}, 30*time.Second)
		h.expectErr(err, provider.ReasonMalformed, "records")
	})
}

// costs builds the source from the fake's entry and reads the cost of
// the months the fake holds, as a refresh would: under a deadline and a
// budget.
func (h *harness) costs(client *http.Client, limits httpx.Limits, timeout time.Duration) (map[provider.Month]Totals, error) {
	h.t.Helper()
	src := h.source(client)
	feed, ok := src.Provider.(*recorder).Provider.(provider.CostFeed)
	if !ok {
		h.t.Fatalf("a %s source that asks for provisional months reads no cost", h.cloud.Plugin.Name)
	}
	h.t.Cleanup(func() { _ = src.Provider.Close() })
	ctx, cancel := context.WithTimeout(httpx.WithBudget(h.t.Context(), httpx.NewBudget(limits)), timeout)
	defer cancel()
	records, err := feed.Costs(ctx, slices.Sorted(maps.Keys(h.fake.Expected)))
	h.out.err(err)
	if err != nil {
		return nil, err
	}
	got := map[provider.Month]Totals{}
	for _, rec := range records {
		if rec.Known != provider.Cost || rec.Provider != h.cloud.Plugin.Name {
			h.t.Errorf("a cost record that carries more than cost, or of another provider: %+v", rec)
		}
		if got[rec.Month] == nil {
			got[rec.Month] = Totals{}
		}
		got[rec.Month][provider.Cost] += rec.CostUSD
	}
	return got, nil
}

// expectErr checks that err has reason and says want.
func (h *harness) expectErr(err error, reason provider.Reason, want string) {
	h.t.Helper()
	if err == nil {
		h.t.Fatalf("succeeded, want %s", reason)
	}
	if _, ok := errors.AsType[*provider.Error](err); !ok {
		h.t.Errorf("%T is not a *provider.Error: %v", err, err)
	}
	if got := provider.ReasonOf(err); got != reason {
		h.t.Errorf("reason %s (%v), want %s", got, err, reason)
	}
	if want != "" && !strings.Contains(err.Error(), want) {
		h.t.Errorf("error %q does not say %q", err, want)
	}
}

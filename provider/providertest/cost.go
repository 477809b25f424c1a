package providertest

import (
	"context"
	"errors"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
	"github.com/cloudcarbon/cloudcarbon_exporter/provisional"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
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
		got, err := h.costs(h.ts.Client(), httpx.Limits{}, 3*time.Second)
		if err == nil {
			h.t.Fatalf("succeeded after %s with %d requests, %d of them held, and cost for %d months; want a timeout",
				time.Since(start), h.inj.Requests(), len(h.inj.Arrivals()), len(got))
		}
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
	scenario("provisional months", Scenario{}, checkProvisional)
	scenario("cost denied", Scenario{}, func(h *harness) {
		h.inj.Inject(withTimes(h.fake.Error(http.StatusForbidden), 1000))
		d := h.run(h.source(h.ts.Client()), nil)
		// A cloud whose published data holds cost too (GCP's billing
		// export) fails that part; the emissions are served all the same.
		if _, published := d.LatestMonth(); !published || d.CostOK {
			h.t.Errorf("with cost denied: a published month %v, cost ok %v; want the published data served", published, d.CostOK)
		}
		if got := errorsCounted(h.reg, provider.ReasonPermission); got < 1 {
			h.t.Errorf("the denied cost read is not counted (refresh_errors_total{reason=permission} = %v)", got)
		}
		if !strings.Contains(h.out.logs.String(), h.fake.Permission) {
			h.t.Errorf("no log line names the cost permission %q", h.fake.Permission)
		}
	})
}

// costs builds the source from the fake's entry and reads the cost of
// the months the fake holds, as a refresh would: under a deadline and a
// budget.
func (h *harness) costs(client *http.Client, limits httpx.Limits, timeout time.Duration) (map[provider.Month]Totals, error) {
	h.t.Helper()
	src := h.source(client)
	feed, ok := src.Provider.(provider.CostFeed)
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

// checkProvisional runs a provisional source through the refresher and
// compares the estimates and the backtest it serves with the fakes'
// reference (fakehttp.ReferenceEstimates), worked out from the same
// published and cost data apart from the exporter's code. A restart then
// serves them from the state file without a request.
func checkProvisional(h *harness) {
	d := h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh: %v", err)
	}
	if len(d.Costs) == 0 || !d.CostOK {
		h.t.Fatalf("a provisional source read no cost (%d months, ok %v)", len(d.Costs), d.CostOK)
	}
	carbon, cost := referenceRows(d)
	want := fakehttp.ReferenceEstimates(carbon, cost)
	if len(want) == 0 {
		h.t.Fatal("the fake's dataset gives no provisional month")
	}
	text := h.metricsText()
	got := exposedEstimates(text)
	series := 0
	for _, w := range want {
		for j, v := range []float64{w.Grams, w.Market} {
			if math.IsNaN(v) {
				continue
			}
			series++
			k := estimateKey(j, w.Account, w.Service, w.Location, w.Scope, w.Month.String(), w.Basis)
			if g, ok := got[k]; !ok || !near(g, v) {
				h.t.Errorf("%s: served %v (%v), reference %v", k, g, ok, v)
			}
		}
	}
	if len(got) != series {
		h.t.Errorf("%d provisional series, the reference has %d", len(got), series)
	}
	lag := provisional.Lag(h.cloud.Plugin.Schedule)
	_, ratios := fakehttp.ReferenceBacktest(carbon, cost, lag, provisional.BacktestMonths)
	for j, method := range []string{"location", "market"} {
		var sum float64
		n := 0
		for _, r := range ratios {
			if !math.IsNaN(r[j]) {
				sum += math.Abs(r[j])
				n++
			}
		}
		line := `cloudcarbon_provisional_backtest_error_ratio{method="` + method + `",provider="` + h.cloud.Plugin.Name + `",source="` + sourceName + `"} `
		served, ok := sampleValue(text, line)
		switch {
		case n == 0 && ok:
			h.t.Errorf("a %s backtest is served, the reference has none", method)
		case n > 0 && (!ok || !near(served, sum/float64(n))):
			h.t.Errorf("%s backtest error served %v (%v), reference %v over %d months", method, served, ok, sum/float64(n), n)
		}
	}
	checkProvisionalRestart(h)
}

// checkProvisionalRestart: after a restart from the state file the
// estimates are served at once, with no request until a month is due.
func checkProvisionalRestart(h *harness) {
	if err := h.store.Flush(); err != nil {
		h.t.Fatal(err)
	}
	before := h.inj.Requests()
	want := exposedEstimates(h.metricsText())
	h.reset()
	h.run(h.source(h.ts.Client()), h.store.LoadState())
	if n := h.inj.Requests() - before; n != 0 {
		h.t.Errorf("the restart made %d requests, want none", n)
	}
	if got := exposedEstimates(h.metricsText()); !maps.Equal(got, want) {
		h.t.Errorf("after the restart %d provisional series, before it %d", len(got), len(want))
	}
}

// referenceRows turns a source's published months and cost into the
// reference estimate's rows.
func referenceRows(d *store.SourceData) ([]fakehttp.CarbonRow, []fakehttp.CostRow) {
	var carbon []fakehttp.CarbonRow
	var cost []fakehttp.CostRow
	for m, md := range d.Months {
		for r := range md.All() {
			if !r.Has(provider.Emissions | provider.EmissionsMarketBased) {
				continue
			}
			row := fakehttp.CarbonRow{Account: r.Account, Service: r.Service, Location: r.Location, Scope: string(r.Scope),
				Month: m, Grams: math.NaN(), Market: math.NaN()}
			if r.Has(provider.Emissions) {
				row.Grams = r.EmissionsGrams
			}
			if r.Has(provider.EmissionsMarketBased) {
				row.Market = r.MarketBasedGrams
			}
			carbon = append(carbon, row)
		}
	}
	for m, md := range d.Costs {
		for r := range md.All() {
			cost = append(cost, fakehttp.CostRow{Account: r.Account, Service: r.Service, Location: r.Location, Month: m, USD: r.CostUSD})
		}
	}
	return carbon, cost
}

// exposedEstimates reads the provisional series of an exposition, by
// method and labels.
func exposedEstimates(text string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		j := -1
		switch {
		case strings.HasPrefix(line, "cloudcarbon_provisional_emissions_grams{"):
			j = 0
		case strings.HasPrefix(line, "cloudcarbon_provisional_emissions_market_based_grams{"):
			j = 1
		default:
			continue
		}
		labels, value, _ := strings.Cut(strings.TrimSpace(line[strings.Index(line, "{")+1:]), "} ")
		l := map[string]string{}
		for kv := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k], _ = strconv.Unquote(v)
		}
		v, _ := strconv.ParseFloat(value, 64)
		out[estimateKey(j, l["account"], l["service"], l["location"], l["scope"], l["month"], l["basis"])] = v
	}
	return out
}

func estimateKey(method int, fields ...string) string {
	return strconv.Itoa(method) + "|" + strings.Join(fields, "|")
}

// sampleValue returns the value of the sample line that starts with
// prefix.
func sampleValue(text, prefix string) (float64, bool) {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

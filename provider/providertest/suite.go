package providertest

import (
	"maps"
	"math"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Run runs the conformance suite for c. Every scenario is a subtest; the
// check that no secret reached any output runs last, over the outputs of
// them all.
func Run(t *testing.T, c Cloud) {
	out := newOutputs()
	var secrets []string
	scenario := func(name string, s Scenario, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			h := c.start(t, s, out)
			secrets = append(secrets, h.fake.Secret)
			secrets = append(secrets, h.fake.Derived...)
			f(h)
		})
	}
	scenario("totals", Scenario{}, checkTotals)
	scenario("paging", Scenario{PageSize: 2}, checkPaging)
	scenario("retry after", Scenario{}, checkRetryAfter)
	scenario("server errors", Scenario{}, func(h *harness) {
		h.inj.Inject(withTimes(h.fake.Error(http.StatusInternalServerError), 1000))
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonServer)
		if n := len(h.inj.Arrivals()); n < 2 {
			h.t.Errorf("%d data requests: a server error must be retried", n)
		}
	})
	scenario("unauthorized", Scenario{}, func(h *harness) {
		h.inj.Inject(withTimes(h.fake.Error(http.StatusUnauthorized), 1000))
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonAuth)
	})
	scenario("forbidden", Scenario{}, func(h *harness) {
		h.inj.Inject(withTimes(h.fake.Error(http.StatusForbidden), 1000))
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonPermission, h.fake.Permission)
	})
	scenario("truncated body", Scenario{}, func(h *harness) {
		h.inj.Inject(withTimes(fakehttp.Truncated(`{"`), 1000))
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonMalformed)
		if n := len(h.inj.Arrivals()); n != 1 {
			h.t.Errorf("%d data requests: a body cut short is not retried", n)
		}
	})
	scenario("untrusted certificate", Scenario{}, func(h *harness) {
		// A client with the system's roots only, which do not hold the
		// test server's certificate.
		h.run(h.source(nil), nil)
		h.expect(provider.ReasonNetwork, "certificate")
		if n := h.inj.Requests(); n != 0 {
			h.t.Errorf("%d requests reached the server past an untrusted certificate, credentials maybe", n)
		}
	})
	scenario("hung endpoint", Scenario{}, func(h *harness) {
		h.opts.Timeout = 3 * time.Second
		h.inj.Inject(fakehttp.Fault{Delay: time.Hour, Times: 1000})
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonTimeout)
		if took := h.calls.last().took; took > h.opts.Timeout+2*time.Second {
			h.t.Errorf("the refresh took %s, past its %s deadline", took, h.opts.Timeout)
		}
	})
	scenario("endless empty pages", Scenario{}, func(h *harness) {
		if h.fake.EmptyPage == nil {
			h.t.Skipf("%s's API does not page", c.Plugin.Name)
		}
		h.inj.Replace(h.fake.EmptyPage)
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonMalformed, "pages")
		if n := int64(len(h.inj.Arrivals())); n > httpx.DefaultLimits().MaxEmptyPages+20 {
			h.t.Errorf("%d empty pages followed", n)
		}
	})
	scenario("oversized body", Scenario{}, checkOversized)
	scenario("bytes per refresh", Scenario{}, func(h *harness) {
		h.opts.Limits.MaxBytes = 1
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonMalformed, "bytes")
	})
	scenario("records per refresh", Scenario{}, func(h *harness) {
		h.opts.Limits.MaxRecords = 1
		h.run(h.source(h.ts.Client()), nil)
		h.expect(provider.ReasonMalformed, "records")
	})
	scenario("negative values", Scenario{Negative: true}, checkNegative)
	for _, q := range []provider.Quantity{provider.EmissionsMarketBased, provider.Water, provider.Cost} {
		scenario("only "+quantityName(q), Scenario{Only: q}, func(h *harness) { checkOnly(h, q) })
	}
	scenario("restart", Scenario{}, checkRestart)
	scenario("restatement", Scenario{}, checkRestatement)
	if c.CostFeed != nil {
		t.Run("cost feed", func(t *testing.T) { runCostFeed(t, c, out, &secrets) })
	}
	if c.TagFeed != nil {
		t.Run("tag feed", func(t *testing.T) { runTagFeed(t, c, out, &secrets) })
	}
	t.Run("demo", func(t *testing.T) { checkDemo(t, c, out) })
	t.Run("example", func(t *testing.T) { checkExample(t, c) })
	t.Run("secrets", func(t *testing.T) { checkSecrets(t, out, secrets) })
}

func withTimes(f fakehttp.Fault, n int) fakehttp.Fault {
	f.Times = n
	return f
}

func quantityName(q provider.Quantity) string {
	for _, qi := range provider.Quantities() {
		if qi.Quantity == q {
			return qi.Name
		}
	}
	return strconv.Itoa(int(q))
}

// checkTotals: the data served equals the fake's own totals, per month and
// per quantity, and no quantity the fake does not report is served.
func checkTotals(h *harness) {
	d := h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh: %v", err)
	}
	compareTotals(h.t, served(d.Months), h.fake.Expected)
	yearly := map[int]float64{}
	for _, w := range d.Yearly {
		yearly[w.Year] += w.CubicMeters
	}
	for y, want := range h.fake.Yearly {
		if got := yearly[y]; !near(got, want) {
			h.t.Errorf("yearly water %d: %v, want %v", y, got, want)
		}
	}
	for y := range yearly {
		if _, ok := h.fake.Yearly[y]; !ok {
			h.t.Errorf("yearly water %d served, which the fake does not report", y)
		}
	}
}

// checkPaging: answers split into pages of two rows give the same data.
func checkPaging(h *harness) {
	d := h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh: %v", err)
	}
	if n := len(h.inj.Arrivals()); n < 3 {
		h.t.Errorf("%d data requests for pages of 2 rows, want at least 3", n)
	}
	compareTotals(h.t, served(d.Months), h.fake.Expected)
}

// checkRetryAfter: a 429 with Retry-After is retried, never sooner than
// asked, and the refresh then succeeds.
func checkRetryAfter(h *harness) {
	const wait = 2
	f := h.fake.Error(http.StatusTooManyRequests)
	f.Header = f.Header.Clone()
	if f.Header == nil {
		f.Header = http.Header{}
	}
	f.Header.Set("Retry-After", strconv.Itoa(wait))
	h.inj.Inject(f)
	d := h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh after one 429: %v", err)
	}
	arrivals := h.inj.Arrivals()
	if len(arrivals) < 2 {
		h.t.Fatalf("%d data requests: the 429 was not retried", len(arrivals))
	}
	// The first request got the 429, answered as it arrived. Requests
	// already on their way (a client fetching pages or months in
	// parallel) may arrive just after it; any later one must wait.
	const inFlight = 200 * time.Millisecond
	retried := false
	for _, at := range arrivals[1:] {
		gap := at.Sub(arrivals[0])
		switch {
		case gap >= wait*time.Second-50*time.Millisecond:
			retried = true
		case gap > inFlight:
			h.t.Errorf("a data request %s after a 429 with Retry-After: %d", gap.Round(time.Millisecond), wait)
		}
	}
	if !retried {
		h.t.Error("no data request after the Retry-After delay")
	}
	compareTotals(h.t, served(d.Months), h.fake.Expected)
}

// checkOversized: an answer past the client's cap ends the refresh as
// malformed, having cost at most about twice the cap in memory.
func checkOversized(h *harness) {
	limit := h.fake.ResponseCap
	if limit <= 0 {
		h.t.Fatal("the fake states no ResponseCap")
	}
	body := `{"data":[` + strings.Repeat(" ", int(limit)) + `]}`
	h.inj.Inject(fakehttp.Fault{Status: http.StatusOK, Body: body, Times: 1000})
	src := h.source(h.ts.Client())
	peak := watchHeap()
	h.run(src, nil)
	grew := peak()
	h.expect(provider.ReasonMalformed)
	// The heap of the whole process, the fake's side included; the body
	// itself was built before.
	h.t.Logf("an answer past the %d MiB cap grew the heap by %d MiB at most", limit>>20, grew>>20)
	if bound := uint64(2*limit + 16<<20); grew > bound {
		h.t.Errorf("an answer past the %d MiB cap grew the heap by %d MiB, want at most %d MiB", limit>>20, grew>>20, bound>>20)
	}
}

// watchHeap samples the live heap until the returned function is called,
// which returns how far above its start it went. The heap is measured
// right after collections (the GC's own mark), so that garbage a client
// leaves for the collector does not count, only what it holds.
func watchHeap() func() uint64 {
	const live = "/gc/heap/live:bytes"
	read := func() uint64 {
		s := []metrics.Sample{{Name: live}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return max(peak.Load(), base) - base
	}
}

// checkNegative: the one policy for values that are not measurements.
func checkNegative(h *harness) {
	d := h.run(h.source(h.ts.Client()), nil)
	if err := h.calls.last().err; err != nil {
		h.t.Fatalf("refresh: %v", err)
	}
	for m, md := range d.Months {
		for rec := range md.All() {
			for _, qi := range provider.Quantities() {
				if v := *qi.Value(&rec); rec.Has(qi.Quantity) && v < 0 && !qi.MayBeNegative {
					h.t.Errorf("%s: %s %v served", m, qi.Name, v)
				}
			}
		}
	}
	if got := counterValue(h.reg, "cloudcarbon_records_rejected_total", map[string]string{"reason": "negative"}); got < 1 {
		h.t.Errorf("records_rejected_total{reason=negative} = %v, want the negative value counted", got)
	}
}

// compareTotals compares sums per month and quantity at a relative 1e-9.
func compareTotals(t *testing.T, got, want map[provider.Month]Totals) {
	t.Helper()
	months := map[provider.Month]bool{}
	for m := range got {
		months[m] = true
	}
	for m := range want {
		months[m] = true
	}
	for _, m := range slices.Sorted(maps.Keys(months)) {
		for _, qi := range provider.Quantities() {
			g, gok := got[m][qi.Quantity]
			w, wok := want[m][qi.Quantity]
			switch {
			case gok != wok:
				t.Errorf("%s %s: served %v (%v), fake has %v (%v)", m, qi.Name, gok, g, wok, w)
			case gok && !near(g, w):
				t.Errorf("%s %s: served %v, want %v", m, qi.Name, g, w)
			}
		}
	}
}

// served sums the records of months per month and quantity.
func served(months map[provider.Month]*store.MonthData) map[provider.Month]Totals {
	out := map[provider.Month]Totals{}
	for m, md := range months {
		for rec := range md.All() {
			for _, qi := range provider.Quantities() {
				if rec.Has(qi.Quantity) {
					if out[m] == nil {
						out[m] = Totals{}
					}
					out[m][qi.Quantity] += *qi.Value(&rec)
				}
			}
		}
	}
	return out
}

func near(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

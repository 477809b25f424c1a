package exposition

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// awkward holds values that the text format must escape or format
// specially, so that the pre-rendered text is compared with expfmt's where
// the two could differ.
func awkward() map[string]*store.SourceData {
	m := provider.NewMonth(2026, time.October)
	values := []float64{0, 1, -1, 0.1, 1e-300, 1e21, 123456789.123, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 2.5e-7}
	strs := []string{`plain`, `back\slash`, "new\nline", `quo"te`, "ünïcødé", ``, `a,b=c{d}`}
	var recs []provider.Record
	for i, v := range values {
		recs = append(recs, provider.Record{
			Provider: "gcp", Account: strs[i%len(strs)], Service: strs[(i+1)%len(strs)], Location: strs[(i+2)%len(strs)],
			Scope: provider.Scope1, Month: m, EmissionsGrams: v, MarketBasedGrams: v, EnergyJoules: v, CostUSD: v,
			Known: provider.Emissions | provider.EmissionsMarketBased | provider.Energy | provider.Cost,
		})
	}
	return map[string]*store.SourceData{"gcp": {
		Name: "gcp", Provider: "gcp", Months: map[provider.Month]*store.MonthData{m: store.NewMonthData(recs)},
		Accounts:    []provider.Account{{Provider: "gcp", ID: `quo"te`, Name: "back\\slash\nname", ParentType: "billing_account", ParentID: "X"}},
		Denied:      []provider.Denial{{Provider: "gcp", Account: "a", Reason: "new\nline \"reason\""}},
		LastAttempt: time.Unix(1700000000, 0), LastSuccess: time.Unix(1700000000, 0), LastOK: true,
	}}
}

// TestTextMatchesExpfmt: the pre-rendered exposition is byte for byte what
// client_golang's registry and text encoder write for the same data, and
// the gzip form decodes to the same bytes.
func TestTextMatchesExpfmt(t *testing.T) {
	for name, sources := range map[string]map[string]*store.SourceData{
		"awkward": awkward(),
		"bench":   benchSources(2_000),
	} {
		t.Run(name, func(t *testing.T) {
			snap := &store.Snapshot{Sources: sources}
			e := New(3, func() *store.Snapshot { return snap }, discardLogger())
			e.Refresh()
			self := prometheus.NewRegistry()
			self.MustRegister(e.Freshness(), prometheus.NewCounter(prometheus.CounterOpts{Name: "cloudcarbon_a_counter_total", Help: "Sorts first."}),
				prometheus.NewGauge(prometheus.GaugeOpts{Name: "cloudcarbon_zz_last", Help: "Sorts last."}))

			want := httptest.NewRecorder()
			all := prometheus.NewRegistry()
			all.MustRegister(e.Data())
			promhttp.HandlerFor(prometheus.Gatherers{all, self}, promhttp.HandlerOpts{DisableCompression: true}).
				ServeHTTP(want, httptest.NewRequest(http.MethodGet, "/metrics", nil))

			h := e.Handler(self, HandlerOpts{})
			got := httptest.NewRecorder()
			h.ServeHTTP(got, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("pre-rendered text differs from expfmt's:\n%s\nwant:\n%s", got.Body, want.Body)
			}
			if ct := got.Header().Get("Content-Type"); ct != want.Header().Get("Content-Type") {
				t.Errorf("Content-Type %q, want %q", ct, want.Header().Get("Content-Type"))
			}

			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", "deflate, gzip;q=0.9")
			zipped := httptest.NewRecorder()
			h.ServeHTTP(zipped, req)
			if zipped.Header().Get("Content-Encoding") != "gzip" {
				t.Fatal("gzip not negotiated")
			}
			zr, err := gzip.NewReader(zipped.Body)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, want.Body.Bytes()) {
				t.Errorf("gzip members decode to other text:\n%s", plain)
			}
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                      false,
		"gzip":                  true,
		"GZIP":                  true,
		"deflate, gzip;q=1.0":   true,
		"gzip;q=0":              false,
		"gzip; q=0.0, identity": false,
		"*":                     true,
		"br, identity":          false,
		"gzip;q=0, *":           false,
		"*;q=1, gzip;q=0":       false,
		"gzip;x=1;q=0":          false,
		"*;q=0.5":               true,
		"*;q=0":                 false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

// TestMaxRequests: scrapes beyond the limit are refused at once with 503,
// and the slot is free again afterwards.
func TestMaxRequests(t *testing.T) {
	snap := &store.Snapshot{Sources: benchSources(200)}
	e := New(1, func() *store.Snapshot { return snap }, discardLogger())
	e.Refresh()
	release := make(chan struct{})
	entered := make(chan struct{})
	blocking := gathererFunc(func() ([]*dtoFamily, error) {
		entered <- struct{}{}
		<-release
		return nil, nil
	})
	h := e.Handler(blocking, HandlerOpts{MaxRequests: 1, Timeout: time.Minute})
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		done <- rec.Code
	}()
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("second concurrent scrape: %d, want 503", rec.Code)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first scrape: %d", code)
	}
	go func() { <-entered }()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("scrape after the first ended: %d, want 200", rec.Code)
	}
}

// discard is a ResponseWriter that copies what it is given into a scratch
// buffer, as a socket write copies into the kernel, and keeps nothing, so
// that benchmarks measure the handler, not a recorder's growing buffer.
type discard struct {
	h       http.Header
	n       int
	scratch []byte
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(int)     {}
func (d *discard) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		rest = rest[copy(d.scratch, rest):]
	}
	d.n += len(p)
	return len(p), nil
}

// BenchmarkScrape measures one /metrics scrape of the data families from a
// snapshot, plain and gzip, at 100k and 1M series, against a naive
// exporter that sets a GaugeVec per family and serves it with promhttp.
// The exporter's held-bytes are those of its rendered exposition: the
// gzip members, which plain scrapes decompress.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		sources := benchSources(n)
		snap := &store.Snapshot{Sources: sources}
		e := New(1, func() *store.Snapshot { return snap }, discardLogger())
		e.Refresh()
		self := prometheus.NewRegistry()
		self.MustRegister(e.Freshness())
		exporter := e.Handler(self, HandlerOpts{})
		held := 0
		for _, bl := range e.rendered.Load().blocks {
			for _, m := range bl.members {
				held += len(m)
			}
		}
		naive := promhttp.HandlerFor(naiveRegistry(sources), promhttp.HandlerOpts{})
		for _, c := range []struct {
			name string
			h    http.Handler
		}{{"exporter", exporter}, {"naive-gaugevec", naive}} {
			for _, enc := range []string{"plain", "gzip"} {
				b.Run(fmt.Sprintf("series=%d/%s/%s", n, c.name, enc), func(b *testing.B) {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					if enc == "gzip" {
						req.Header.Set("Accept-Encoding", "gzip")
					}
					b.ReportMetric(float64(n), "series")
					b.ReportAllocs()
					scratch := make([]byte, 64<<10)
					var bytes int
					for b.Loop() {
						w := &discard{h: http.Header{}, scratch: scratch}
						c.h.ServeHTTP(w, req)
						if w.n == 0 {
							b.Fatal("empty scrape")
						}
						bytes = w.n
					}
					b.ReportMetric(float64(bytes), "bytes/scrape")
					if c.name == "exporter" {
						b.ReportMetric(float64(held), "held-bytes")
					}
				})
			}
		}
	}
}

// naiveRegistry is the baseline: the same series set as GaugeVecs.
func naiveRegistry(sources map[string]*store.SourceData) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	vecs := map[*def]*prometheus.GaugeVec{}
	newDefs().aggregate(sources, 1, func(string) int { return 2 }).each(func(d *def, values []string, v float64) {
		gv, ok := vecs[d]
		if !ok {
			gv = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.name, Help: d.help}, d.labels)
			vecs[d] = gv
			reg.MustRegister(gv)
		}
		gv.WithLabelValues(values...).Set(v)
	})
	return reg
}

// BenchmarkRender measures rendering the data families to gzip: the work
// done once per data change, never on the scrape path.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		snap := &store.Snapshot{Sources: benchSources(n)}
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := New(1, func() *store.Snapshot { return snap }, discardLogger())
				e.Refresh()
			}
		})
	}
}

// benchSources returns one month of records that render to `series`
// series, half current and half history (so series/2 records).
func benchSources(series int) map[string]*store.SourceData {
	m := provider.NewMonth(2026, time.October)
	recs := make([]provider.Record, 0, series/2)
	for i := range series / 2 {
		recs = append(recs, provider.Record{
			Provider: "gcp", Account: fmt.Sprintf("project-%05d", i/50), Service: fmt.Sprintf("service-%02d", i%50/5),
			Location: fmt.Sprintf("region-%d", i%5), Scope: provider.Scope2, Month: m,
			EmissionsGrams: float64(i) * 1.1, Known: provider.Emissions,
		})
	}
	return map[string]*store.SourceData{"gcp": {Name: "gcp", Provider: "gcp", Generation: 1,
		Months: map[provider.Month]*store.MonthData{m: store.NewMonthData(recs)}}}
}

type dtoFamily = dto.MetricFamily

type gathererFunc func() ([]*dtoFamily, error)

func (f gathererFunc) Gather() ([]*dtoFamily, error) { return f() }

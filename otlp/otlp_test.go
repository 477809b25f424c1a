package otlp

import (
	"context"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fixture is a registry wired as the exporter's, holding a source with
// every data and freshness family, and the refresh counters. The
// exposition's descriptors name the families that must be pushed.
func fixture(t *testing.T) (*prometheus.Registry, *Metrics, []*prometheus.Desc) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rm := refresh.NewMetrics(reg, []provider.Plugin{{Name: "ibm", Counters: []provider.Counter{{Name: "bigquery_bytes_processed_total", Help: "Bytes processed."}}}})
	rm.Counters("ibm", "ibm")["bigquery_bytes_processed_total"](2048)
	rm.RequestObserver("ibm", "ibm")("carbon", 200)
	var s *store.Store
	expo := exposition.New(3, func() *store.Snapshot { return s.Snapshot() }, discardLogger())
	s = store.New(store.Options{Registerer: reg, Logger: discardLogger(), OnData: expo.Refresh})
	reg.MustRegister(expo.Freshness(), expo.Data())

	s.Configure([]store.Key{{Name: "ibm", Provider: "ibm", Identity: "ibm|test"}}, nil)
	s.Update("ibm", store.Data, func(d *store.SourceData) {
		oct := provider.NewMonth(2026, time.October)
		for mo := oct - 2; mo <= oct; mo++ {
			d.Months[mo] = store.NewMonthData([]provider.Record{
				{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Scope: provider.Scope2, Month: mo,
					EmissionsGrams: 500 + float64(mo.Month()), MarketBasedGrams: 120, EnergyJoules: 3.6e6, Known: provider.Emissions | provider.EmissionsMarketBased | provider.Energy},
				{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Month: mo,
					CostUSD: 12.5, WaterCubicMeters: 3.25, Known: provider.Cost | provider.Water},
			})
			d.Months[mo].FetchedAt = time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
		}
		// Cost for provisional months: November estimated, the months
		// before for the intensities and the backtest.
		d.Costs = map[provider.Month]*store.MonthData{}
		for mo := oct - 2; mo <= oct+1; mo++ {
			d.Costs[mo] = store.NewMonthData([]provider.Record{
				{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Month: mo, CostUSD: 10 + float64(mo.Month()), Known: provider.Cost}})
			d.Costs[mo].FetchedAt = time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
		}
		d.CostAttempt, d.CostSuccess, d.CostOK = time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC), time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC), true
		// Allocation by team: October split by its tags, November's
		// estimate by November's.
		fetched := time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
		team := func(mo provider.Month, value string, usd float64) provider.TagCost {
			return provider.TagCost{Record: provider.Record{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas",
				Month: mo, CostUSD: usd, Known: provider.Cost}, Value: value}
		}
		d.Allocations = &store.Allocations{Top: 100, Attempt: fetched, Success: fetched, OK: true,
			Keys: map[string]map[provider.Month]*store.TagMonth{"team": {
				oct:     {FetchedAt: fetched, Rows: []provider.TagCost{team(oct, "web", 15), team(oct, "", 5)}},
				oct + 1: {FetchedAt: fetched, Rows: []provider.TagCost{team(oct+1, "web", 10), team(oct+1, "data", 10)}},
			}}}
		d.Realized = []store.Realized{{Month: oct - 1, Estimated: [2]float64{510, 118}, Published: [2]float64{509, 120}, Known: provider.Emissions | provider.EmissionsMarketBased}}
		d.Yearly = []provider.YearlyWater{{Provider: "ibm", Account: "acc1", Service: "Code Engine", Location: "dallas", Year: 2025, CubicMeters: 40}}
		d.Accounts = []provider.Account{{Provider: "ibm", ID: "acc1", Name: "prod", ParentType: "enterprise", ParentID: "ent1", ParentName: "Example Corp"}}
		d.Denied = []provider.Denial{{Provider: "ibm", Account: "acc3", Reason: "MissingPermissions"}}
		d.LastSuccess = time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)
		d.LastAttempt, d.LastOK, d.LastDuration = d.LastSuccess, true, 1500*time.Millisecond
		d.NextMonthDue = time.Date(2026, time.December, 17, 0, 0, 0, 0, time.UTC)
		d.NextRefresh = time.Date(2026, time.November, 23, 10, 0, 0, 0, time.UTC)
		d.Attempted = true
	})
	descs := make(chan *prometheus.Desc, 100)
	expo.Freshness().Describe(descs)
	expo.Data().Describe(descs)
	close(descs)
	var all []*prometheus.Desc
	for d := range descs {
		all = append(all, d)
	}
	return reg, m, all
}

// receiver is an OTLP metrics service built on the official protos.
type receiver struct {
	colmetricpb.UnimplementedMetricsServiceServer
	mu    sync.Mutex
	reqs  []*colmetricpb.ExportMetricsServiceRequest
	fail  codes.Code
	block bool
}

func (r *receiver) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	fail, block := r.fail, r.block
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if fail != codes.OK {
		return nil, status.Error(fail, "receiver refuses")
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *receiver) last() *colmetricpb.ExportMetricsServiceRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func startReceiver(t *testing.T, r *receiver) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, r)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attrString(kvs []*commonpb.KeyValue) string {
	parts := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		parts = append(parts, kv.GetKey()+"="+kv.GetValue().GetStringValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func TestOTLPPushesEveryFamily(t *testing.T) {
	reg, m, descs := fixture(t)
	rcv := &receiver{}
	addr := startReceiver(t, rcv)
	p, err := Start(t.Context(), reg, Options{
		Interval: 50 * time.Millisecond, Endpoint: addr, Insecure: true, Timeout: 2 * time.Second,
		ServiceVersion: "1.2.3", ServiceInstanceID: "host-a:9874",
	}, m, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a push", func() bool { return rcv.count() > 0 })
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := rcv.last()
	if len(req.GetResourceMetrics()) != 1 {
		t.Fatalf("resource metrics: %d", len(req.GetResourceMetrics()))
	}
	rm := req.GetResourceMetrics()[0]
	res := attrString(rm.GetResource().GetAttributes())
	for _, want := range []string{"service.name=cloudcarbon_exporter", "service.version=1.2.3", "service.instance.id=host-a:9874"} {
		if !strings.Contains(res, want) {
			t.Errorf("resource %s lacks %s", res, want)
		}
	}

	// What /metrics shows, keyed by family and label set.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	scraped := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var kv []string
			for _, l := range mt.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(kv)
			v := mt.GetGauge().GetValue()
			if mt.GetCounter() != nil {
				v = mt.GetCounter().GetValue()
			}
			scraped[mf.GetName()+"{"+strings.Join(kv, ",")+"}"] = v
		}
	}

	pushed := map[string]float64{}
	units := map[string]string{}
	for _, sm := range rm.GetScopeMetrics() {
		if got := sm.GetScope().GetName(); got != otlpScope.Name {
			t.Errorf("scope %q, want %q", got, otlpScope.Name)
		}
		for _, mt := range sm.GetMetrics() {
			units[mt.GetName()] = mt.GetUnit()
			var points []*metricpb.NumberDataPoint
			switch d := mt.GetData().(type) {
			case *metricpb.Metric_Gauge:
				points = d.Gauge.GetDataPoints()
			case *metricpb.Metric_Sum:
				points = d.Sum.GetDataPoints()
				if !d.Sum.GetIsMonotonic() || d.Sum.GetAggregationTemporality() != metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
					t.Errorf("%s: counter not pushed as a cumulative monotonic sum", mt.GetName())
				}
			default:
				t.Errorf("%s: unexpected data %T", mt.GetName(), d)
			}
			for _, dp := range points {
				pushed[mt.GetName()+"{"+attrString(dp.GetAttributes())+"}"] = dp.GetAsDouble()
			}
		}
	}
	for _, d := range descs {
		if _, ok := units[fqName(d)]; !ok {
			t.Errorf("family %s not pushed", fqName(d))
		}
	}
	for name, want := range map[string]string{
		"cloudcarbon_emissions_grams": "g", "cloudcarbon_history_emissions_market_based_grams": "g",
		"cloudcarbon_energy_joules": "J", "cloudcarbon_billing_cost_usd": "{USD}",
		"cloudcarbon_refresh_duration_seconds": "s", "cloudcarbon_bigquery_bytes_processed_total": "By",
		"cloudcarbon_refresh_success": "", "cloudcarbon_water_cubic_meters": "{m3}", "cloudcarbon_water_yearly_cubic_meters": "{m3}",
	} {
		if units[name] != want {
			t.Errorf("%s: unit %q, want %q", name, units[name], want)
		}
	}
	for k, v := range scraped {
		if !strings.HasPrefix(k, "cloudcarbon_emissions") && !strings.HasPrefix(k, "cloudcarbon_history_") &&
			!strings.HasPrefix(k, "cloudcarbon_energy") && !strings.HasPrefix(k, "cloudcarbon_billing") {
			continue
		}
		if got, ok := pushed[k]; !ok || got != v {
			t.Errorf("%s: pushed %v (present %v), scraped %v", k, got, ok, v)
		}
	}
	if got := testutil.ToFloat64(m.pushes.WithLabelValues("success")); got < 1 {
		t.Errorf("successful pushes = %v", got)
	}
}

func fqName(d interface{ String() string }) string {
	s := d.String()
	i := strings.Index(s, `fqName: "`) + len(`fqName: "`)
	return s[i : i+strings.IndexByte(s[i:], '"')]
}

// TestOTLPReceiverFailureDoesNotStallScrapes: a receiver that refuses or
// hangs only shows up in the push counters.
func TestOTLPReceiverFailureDoesNotStallScrapes(t *testing.T) {
	for _, rcv := range []*receiver{{fail: codes.Unavailable}, {block: true}} {
		reg, m, _ := fixture(t)
		addr := startReceiver(t, rcv)
		p, err := Start(t.Context(), reg, Options{
			Interval: 50 * time.Millisecond, Endpoint: addr, Insecure: true, Timeout: 300 * time.Millisecond,
		}, m, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "a push attempt", func() bool { return rcv.count() > 0 })
		for range 20 {
			start := time.Now()
			if _, err := reg.Gather(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Fatalf("a gather took %v while the receiver fails", d)
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitUntil(t, "a counted failure", func() bool {
			return testutil.ToFloat64(m.pushes.WithLabelValues("failure")) > 0
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.Shutdown(ctx)
		cancel()
	}
}

// TestMetricsAppearOnceAPusherStarts: an exporter without OTLP shows no
// push series; one with OTLP shows both results at zero and the timestamp,
// and a second pusher (a reload) reuses them.
func TestMetricsAppearOnceAPusherStarts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	names := []string{"cloudcarbon_otlp_pushes_total", "cloudcarbon_otlp_last_push_success_timestamp_seconds"}
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 0 {
		t.Fatalf("series before a pusher = %d, %v; want none", n, err)
	}
	rcv := &receiver{}
	addr := startReceiver(t, rcv)
	for range 2 {
		p, err := Start(t.Context(), reg, Options{Interval: time.Hour, Endpoint: addr, Insecure: true}, m, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 3 {
			t.Errorf("series with a pusher = %d, %v; want 3", n, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}

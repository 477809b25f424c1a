package cloudcarbonreceiver

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/receiver/cloudcarbonreceiver/internal/metadata"
)

// memStorage is a storage extension in memory whose data outlives the
// receivers using it, as file_storage's outlives a Collector restart.
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc

	mu      sync.Mutex
	data    map[string][]byte
	clients map[component.ID]int // opened minus closed
}

func newMemStorage() *memStorage {
	return &memStorage{data: map[string][]byte{}, clients: map[component.ID]int{}}
}

func (s *memStorage) GetClient(_ context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id]++
	return &memClient{s: s, prefix: kind.String() + "/" + id.String() + "/" + name + "/", id: id}, nil
}

type memClient struct {
	s      *memStorage
	prefix string
	id     component.ID
}

func (c *memClient) Get(_ context.Context, key string) ([]byte, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.data[c.prefix+key], nil
}

func (c *memClient) Set(_ context.Context, key string, value []byte) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.data[c.prefix+key] = value
	return nil
}

func (c *memClient) Delete(_ context.Context, key string) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	delete(c.s.data, c.prefix+key)
	return nil
}

func (c *memClient) Batch(context.Context, ...*storage.Operation) error {
	return errors.New("not used by the receiver")
}

func (c *memClient) Close(context.Context) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.clients[c.id]--
	return nil
}

// host is a Collector host with extensions.
type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

var storageID = component.MustNewIDWithName("file_storage", "test")

// dataPoints returns the points of md's data families (those whose points
// describe a period, and the info and denial families) by metric name and
// attributes, and the sum of cloudcarbon_api_requests_total.
func dataPoints(md pmetric.Metrics) (points map[string]float64, requests float64) {
	points = map[string]float64{}
	eachPoint(md, func(_ pmetric.ResourceMetrics, m pmetric.Metric, dp pmetric.NumberDataPoint) {
		if m.Name() == "cloudcarbon_api_requests_total" {
			requests += dp.DoubleValue()
		}
		if dp.StartTimestamp() != 0 && m.Type() == pmetric.MetricTypeGauge || strings.HasSuffix(m.Name(), "_info") || strings.HasSuffix(m.Name(), "_denied") {
			points[seriesKey(m.Name(), dp.Attributes().AsRaw())] = dp.DoubleValue()
		}
	})
	return points, requests
}

func eachPoint(md pmetric.Metrics, f func(pmetric.ResourceMetrics, pmetric.Metric, pmetric.NumberDataPoint)) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for l := range dps.Len() {
					f(rms.At(i), m, dps.At(l))
				}
			}
		}
	}
}

func seriesKey(name string, attrs map[string]any) string {
	var b strings.Builder
	b.WriteString(name + "{")
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		b.WriteString(k + "=" + attrs[k].(string) + ",")
	}
	return b.String() + "}"
}

// TestRestartFromStorageMakesNoRequests: the fetched months persist in the
// storage extension; a restarted receiver serves them at once, makes no
// provider request, and closes its storage client when it stops.
func TestRestartFromStorageMakesNoRequests(t *testing.T) {
	st := newMemStorage()
	h := host{storageID: st}
	cfg := demoConfig()
	cfg.StorageID = &storageID

	// The Collector names a receiver the same at every start; the storage
	// extension keys its client by that name.
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	run := func() (map[string]float64, float64) {
		r := newReceiver(cfg, set)
		if err := r.start(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		waitReady(t, r)
		waitSettled(t, r)
		points, requests := dataPoints(scrape(t, r))
		if err := r.shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		return points, requests
	}
	first, firstRequests := run()
	if firstRequests == 0 || len(first) < 1000 {
		t.Fatalf("first run: %d data points after %v requests", len(first), firstRequests)
	}
	if len(st.data) != 1 {
		t.Fatalf("storage holds %d keys, want the state", len(st.data))
	}
	second, secondRequests := run()
	if secondRequests != 0 {
		t.Errorf("the restarted receiver made %v provider requests, want none", secondRequests)
	}
	if !maps.Equal(first, second) {
		t.Errorf("the restarted receiver emits other data: %d points, first %d", len(second), len(first))
	}
	if n := st.clients[component.NewID(metadata.Type)]; n != 0 {
		t.Errorf("%d storage clients left open", n)
	}
}

// TestStorageProblems: a storage setting that names no storage extension
// fails the start with a message that says so.
func TestStorageProblems(t *testing.T) {
	notStorage := struct {
		component.StartFunc
		component.ShutdownFunc
	}{}
	tests := []struct {
		name string
		host component.Host
		want string
	}{
		{"missing", componenttest.NewNopHost(), "storage: no extension file_storage/test is configured in the service's extensions"},
		{"not a storage extension", host{storageID: notStorage}, "storage: the extension file_storage/test is not a storage extension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := demoConfig()
			cfg.StorageID = &storageID
			r := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
			err := r.start(context.Background(), tt.host)
			if err == nil || err.Error() != tt.want {
				t.Errorf("start error %v, want %q", err, tt.want)
			}
			if err := r.shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestWithoutStorageSaysSo: without a storage extension the receiver says
// that a restart fetches every month again; without a cloud it says it
// emits nothing.
func TestWithoutStorageSaysSo(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	r := newReceiver(createDefaultConfig(nil), set)
	if err := r.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if err := r.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"No storage extension configured: fetched months are kept in memory only and fetched again after a restart",
		"No cloud is configured: the receiver emits nothing",
	} {
		if logs.FilterMessageSnippet(want).Len() != 1 {
			t.Errorf("no log line %q in %v", want, logs.All())
		}
	}
}

// TestLifecycleThroughTheController starts the receiver the way the
// Collector does, through the factory and the scraper controller, and
// checks that the demo's data reaches the next consumer.
func TestLifecycleThroughTheController(t *testing.T) {
	cfg := demoConfig()
	cfg.CollectionInterval = 50 * time.Millisecond
	cfg.InitialDelay = 0
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		found := false
		for _, md := range sink.AllMetrics() {
			eachPoint(md, func(_ pmetric.ResourceMetrics, m pmetric.Metric, _ pmetric.NumberDataPoint) {
				found = found || m.Name() == "cloudcarbon_history_emissions_grams"
			})
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no data reached the consumer in a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rcv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// brokenConfig is a cloud entry whose client cannot be built.
type brokenConfig struct {
	Name string `yaml:"name"`
}

func (c *brokenConfig) SourceName() *string         { return &c.Name }
func (c *brokenConfig) Check(provider.Checker)      {}
func (c *brokenConfig) Identity() string            { return "broken" }
func (c *brokenConfig) Covers() []provider.Coverage { return nil }
func (c *brokenConfig) New(context.Context, provider.Env) (provider.Provider, error) {
	return nil, errors.New("no client today")
}

// TestFailedStartKeepsTheStorage: a start that fails once the storage is
// open (a source whose client cannot be built) leaves the persisted
// months alone.
func TestFailedStartKeepsTheStorage(t *testing.T) {
	st := newMemStorage()
	key := "Receiver/cloudcarbon//state"
	st.data[key] = []byte("the months of an earlier run")
	broken := provider.Plugin{Name: "broken", NewConfig: func() provider.SourceConfig { return &brokenConfig{} }}
	cfg := createDefaultConfig([]provider.Plugin{broken})
	cfg.StorageID = &storageID
	cfg.Sections.values = map[string]any{"broken": []any{map[string]any{"name": "b"}}}
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	r := newReceiver(cfg, set)
	err := r.start(context.Background(), host{storageID: st})
	if err == nil || !strings.Contains(err.Error(), "no client today") {
		t.Fatalf("start error %v", err)
	}
	if err := r.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := string(st.data[key]); got != "the months of an earlier run" || len(st.data) != 1 {
		t.Errorf("storage holds %q after a failed start", st.data)
	}
	if n := st.clients[component.NewID(metadata.Type)]; n != 0 {
		t.Errorf("%d storage clients left open", n)
	}
}

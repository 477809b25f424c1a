package providertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// sourceName is the name of every source the suite configures.
const sourceName = "conformance"

// settleTimeout bounds how long one run of the refreshers may take,
// retries and backoffs of the cloud's client included.
const settleTimeout = 90 * time.Second

// harness is one scenario: the fake behind an Injector on a TLS server,
// and the exporter's parts wired as the exporter wires them.
type harness struct {
	t     *testing.T
	cloud Cloud
	fake  *Fake
	inj   *fakehttp.Injector
	ts    *httptest.Server
	out   *outputs
	clock atomic.Int64 // Unix nanoseconds

	reg     *prometheus.Registry
	metrics *refresh.Metrics
	store   *store.Store
	expo    *exposition.Exposition
	state   *store.StateFile
	opts    refresh.Options
	calls   *recorder
}

// start starts the fake for s, or skips when the cloud cannot serve it.
func (c Cloud) start(t *testing.T, s Scenario, out *outputs) *harness {
	t.Helper()
	f := c.Start(t, s)
	if f == nil {
		t.Skipf("%s serves no dataset for %+v", c.Plugin.Name, s)
	}
	h := &harness{t: t, cloud: c, fake: f, out: out}
	h.inj = &fakehttp.Injector{Next: f.Handler, Match: f.Data}
	h.ts = httptest.NewUnstartedServer(h.inj)
	// Handshakes the untrusted-certificate scenario fails on purpose.
	h.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	h.ts.StartTLS()
	t.Cleanup(h.ts.Close)
	h.clock.Store(f.Now.UnixNano())
	h.opts = refresh.Options{
		Interval: 6 * time.Hour, IdleInterval: 24 * time.Hour, Timeout: 30 * time.Second,
		BackoffMin: time.Minute, BackoffMax: time.Hour, MaxConcurrency: 1,
		History: 13, Retention: 38, Now: h.now,
	}
	h.state = store.NewStateFile(filepath.Join(t.TempDir(), "state.json"))
	h.reset()
	return h
}

func (h *harness) now() time.Time { return time.Unix(0, h.clock.Load()).UTC() }

// advance moves the refreshers' clock.
func (h *harness) advance(d time.Duration) { h.clock.Add(int64(d)) }

// reset gives the harness a new registry, store and exposition, as a
// restart of the exporter would.
func (h *harness) reset() {
	h.reg = prometheus.NewRegistry()
	h.metrics = refresh.NewMetrics(h.reg, []provider.Plugin{h.cloud.Plugin})
	h.expo = exposition.New(h.opts.History, func() *store.Snapshot { return h.store.Snapshot() }, h.out.logger,
		exposition.WithSchedules(map[string]provider.Schedule{h.cloud.Plugin.Name: h.cloud.Plugin.Schedule}))
	h.store = store.New(store.Options{State: h.state, Registerer: h.reg, Logger: h.out.logger, OnData: h.expo.Refresh})
	h.reg.MustRegister(h.expo.Freshness())
}

// source parses the fake's entry as a user's configuration and builds
// the source's client through the plug-in, reaching the fake with client.
func (h *harness) source(client *http.Client) refresh.Source {
	h.t.Helper()
	return h.build(h.fake.Entry(h.ts.URL), h.connection(client))
}

func (h *harness) connection(client *http.Client) provider.Connection {
	if h.fake.Connection != nil {
		return h.fake.Connection(client)
	}
	return provider.Connection{HTTPClient: client}
}

// build turns one entry of the cloud's section into a refresh.Source,
// its Fetch calls recorded.
func (h *harness) build(entry map[string]any, conn provider.Connection) refresh.Source {
	h.t.Helper()
	cfg := h.parse(entry)
	if len(cfg.Sources) != 1 {
		h.t.Fatalf("the entry gives %d sources", len(cfg.Sources))
	}
	src := cfg.Sources[0]
	name := src.Name()
	env := provider.Env{
		Name:       name,
		Logger:     h.out.logger.With("provider", src.Provider, "source_name", name),
		Observe:    h.metrics.RequestObserver(src.Provider, name),
		Counters:   h.metrics.Counters(src.Provider, name),
		Connection: conn,
	}
	p, err := src.Config.New(h.t.Context(), env)
	if err != nil {
		h.out.err(err)
		h.t.Fatalf("New: %v", err)
	}
	h.calls = &recorder{Provider: p, out: h.out}
	var recorded provider.Provider = h.calls
	costs, isCost := p.(provider.CostFeed)
	tags, isTag := p.(provider.TagFeed)
	switch {
	case isCost && isTag:
		recorded = &costTagRecorder{costRecorder: &costRecorder{recorder: h.calls, feed: costs}, tags: tags}
	case isCost:
		recorded = &costRecorder{recorder: h.calls, feed: costs}
	case isTag:
		recorded = &tagRecorder{recorder: h.calls, tags: tags}
	}
	return refresh.NewSource(name, src.Config, recorded)
}

// parse decodes entries as the cloud's section of a configuration file.
func (h *harness) parse(entries ...map[string]any) *config.Config {
	h.t.Helper()
	for _, e := range entries {
		if _, ok := e["name"]; !ok {
			e["name"] = sourceName
		}
	}
	text, err := yaml.Marshal(map[string]any{h.cloud.Plugin.Name: entries})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg, err := config.Parse(text, "conformance.yml", func(string) string { return "" }, []provider.Plugin{h.cloud.Plugin})
	if err != nil {
		h.out.err(err)
		h.t.Fatalf("the entry does not parse: %v", err)
	}
	return cfg
}

// run runs the refreshers for src until nothing is due at the harness's
// clock: the source has refreshed, or failed, and planned its next
// attempt later than now. seed is persisted data, for a restart.
func (h *harness) run(src refresh.Source, seed map[string]*store.SourceData) *store.SourceData {
	h.t.Helper()
	m := refresh.NewManager(h.store, h.metrics, h.out.logger)
	m.Apply(h.t.Context(), []refresh.Source{src}, h.opts, seed)
	defer m.Stop()
	deadline := time.Now().Add(settleTimeout)
	for {
		d, ok := h.store.Get(src.Name)
		if ok && d.Attempted && d.NextRefresh.After(h.now()) && !h.calls.busy() {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the source did not settle within %s", settleTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expect checks that the latest Fetch failed with reason, its message
// holding every one of want.
func (h *harness) expect(reason provider.Reason, want ...string) error {
	h.t.Helper()
	err := h.calls.last().err
	if err == nil {
		h.t.Fatalf("the refresh succeeded, want %s", reason)
	}
	if got := provider.ReasonOf(err); got != reason {
		h.t.Errorf("reason %s (%v), want %s", got, err, reason)
	}
	for _, w := range want {
		if !bytes.Contains([]byte(err.Error()), []byte(w)) {
			h.t.Errorf("error %q does not say %q", err, w)
		}
	}
	if got := errorsCounted(h.reg, reason); got < 1 {
		h.t.Errorf("refresh_errors_total{reason=%q} = %v, want it counted", reason, got)
	}
	return err
}

// recorder is the source's provider, its Fetch calls recorded.
type recorder struct {
	provider.Provider
	out      *outputs
	mu       sync.Mutex
	calls    []call
	inFlight int
}

type call struct {
	months []provider.Month
	err    error
	took   time.Duration
}

func (r *recorder) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	r.mu.Lock()
	r.inFlight++
	r.mu.Unlock()
	start := time.Now()
	res, err := r.Provider.Fetch(ctx, months)
	r.out.err(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	r.calls = append(r.calls, call{months: slices.Clone(months), err: err, took: time.Since(start)})
	return res, err
}

// costRecorder is a recorder of a source that reads cost too.
type costRecorder struct {
	*recorder
	feed provider.CostFeed
}

func (r *costRecorder) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	var recs []provider.Record
	err := r.track(func() (err error) { recs, err = r.feed.Costs(ctx, months); return err })
	return recs, err
}

// tagRecorder is a recorder of a source that reads tags too, and
// costTagRecorder of one that reads both.
type (
	tagRecorder struct {
		*recorder
		tags provider.TagFeed
	}
	costTagRecorder struct {
		*costRecorder
		tags provider.TagFeed
	}
)

func (r *tagRecorder) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	return r.recorder.tagCosts(ctx, r.tags, months, key)
}

func (r *costTagRecorder) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	return r.recorder.tagCosts(ctx, r.tags, months, key)
}

func (r *recorder) tagCosts(ctx context.Context, feed provider.TagFeed, months []provider.Month, key string) ([]provider.TagCost, error) {
	var recs []provider.TagCost
	err := r.track(func() (err error) { recs, err = feed.TagCosts(ctx, months, key); return err })
	return recs, err
}

// track counts f in flight, so that the refresher is not taken as idle
// while it reads cost or tags, and records f's error in the outputs.
func (r *recorder) track(f func() error) error {
	r.mu.Lock()
	r.inFlight++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	err := f()
	r.out.err(err)
	return err
}

func (r *recorder) busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight > 0
}

func (r *recorder) last() call {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return call{err: fmt.Errorf("no fetch was made")}
	}
	return r.calls[len(r.calls)-1]
}

// since returns the months fetched by the calls after the first n.
func (r *recorder) since(n int) map[provider.Month]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[provider.Month]int{}
	for _, c := range r.calls[min(n, len(r.calls)):] {
		for _, m := range c.months {
			out[m]++
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// outputs collects everything the exporter shows a user, for the check
// that no secret reaches any of it.
type outputs struct {
	logs   logbuf.Buffer
	logger *slog.Logger
	mu     sync.Mutex
	texts  []string
}

func newOutputs() *outputs {
	o := &outputs{}
	o.logger = slog.New(slog.NewTextHandler(&o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return o
}

func (o *outputs) add(what, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.texts = append(o.texts, what+": "+text)
}

func (o *outputs) err(err error) {
	if err != nil {
		o.add("error", err.Error())
	}
}

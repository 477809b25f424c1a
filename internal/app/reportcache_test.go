package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/report"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// countingBuild is a report build that counts its calls and, while gate
// is open, waits for it to close.
type countingBuild struct {
	calls atomic.Int64
	gate  chan struct{}
}

func (b *countingBuild) build(snap *store.Snapshot, ro report.Options) (int, string, []byte) {
	n := b.calls.Add(1)
	if b.gate != nil {
		<-b.gate
	}
	return http.StatusOK, "text/plain", fmt.Appendf(nil, "report %d of %d sources for %s at %s\n", n, len(snap.Sources), ro.Period, ro.Now)
}

func getReport(h http.Handler, query string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report?"+query, nil))
	return rec
}

// TestReportRenderedOncePerDataVersion: requests for the same report of
// the same data share one build, concurrent ones included; new data, other
// parameters and age each take a new one.
func TestReportRenderedOncePerDataVersion(t *testing.T) {
	s := store.New(store.Options{})
	s.Configure([]store.Key{{Name: "a", Provider: "ibm", Identity: "a"}, {Name: "b", Provider: "ibm", Identity: "b"}}, nil)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	b := &countingBuild{gate: make(chan struct{})}
	h := newReportHandler(0, time.Minute, s.Snapshot, func() time.Time { return now }, b.build)

	var wg sync.WaitGroup
	bodies := make([]string, 50)
	for i := range bodies {
		wg.Go(func() { bodies[i] = getReport(h, "period=year").Body.String() })
	}
	for b.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the others arrive and wait
	close(b.gate)
	wg.Wait()
	if got := b.calls.Load(); got != 1 {
		t.Errorf("%d concurrent requests built %d reports, want 1", len(bodies), got)
	}
	for i, body := range bodies {
		if body != bodies[0] {
			t.Fatalf("request %d got %q, request 0 %q", i, body, bodies[0])
		}
	}

	for _, step := range []struct {
		name   string
		change func()
		query  string
		builds int64
	}{
		{"same data", func() {}, "period=year", 1},
		{"other parameters", func() {}, "period=month", 2},
		{"new data", func() { s.Update("a", store.Data, func(*store.SourceData) {}) }, "period=year", 3},
		{"schedule change only", func() { s.Update("a", store.Schedule, func(d *store.SourceData) { d.Attempted = true }) }, "period=year", 3},
		{"source removed", func() { s.Configure([]store.Key{{Name: "a", Provider: "ibm", Identity: "a"}}, nil) }, "period=year", 4},
		{"a minute later", func() { now = now.Add(reportMaxAge) }, "period=year", 5},
	} {
		step.change()
		if rec := getReport(h, step.query); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", step.name, rec.Code, rec.Body)
		}
		if got := b.calls.Load(); got != step.builds {
			t.Errorf("%s: %d builds in all, want %d", step.name, got, step.builds)
		}
	}
}

// TestReportRequestsAreBounded: beyond the limit, requests are answered
// 503 at once, while a report is being built.
func TestReportRequestsAreBounded(t *testing.T) {
	s := store.New(store.Options{})
	b := &countingBuild{gate: make(chan struct{})}
	h := newReportHandler(2, time.Minute, s.Snapshot, time.Now, b.build)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = getReport(h, "period=year").Code })
	}
	for len(h.requests) < 2 {
		time.Sleep(time.Millisecond)
	}
	rec := getReport(h, "period=quarter")
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a request beyond the limit: %d %s, want 503", rec.Code, rec.Body)
	}
	close(b.gate)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("request %d within the limit: %d", i, code)
		}
	}
	if rec := getReport(h, "period=quarter"); rec.Code != http.StatusOK {
		t.Errorf("a request once the others are done: %d", rec.Code)
	}
}

// TestReportCacheIsBounded: the cache keeps at most reportCacheEntries
// reports, the most recently used.
func TestReportCacheIsBounded(t *testing.T) {
	s := store.New(store.Options{})
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	b := &countingBuild{}
	h := newReportHandler(0, time.Minute, s.Snapshot, func() time.Time { return now }, b.build)
	for i := range 3 * reportCacheEntries {
		now = now.Add(time.Millisecond)
		if rec := getReport(h, fmt.Sprintf("period=year&from=%d", 2000+i)); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.cache) > reportCacheEntries {
		t.Errorf("the cache holds %d reports, want at most %d", len(h.cache), reportCacheEntries)
	}
}

package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/report"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// What one /report handler keeps and does at once. A month-by-everything
// report of a large estate is megabytes and takes a second to build:
// building one per request let 150 concurrent requests take 1.9 GB.
const (
	// reportCacheEntries bounds the reports kept, one per set of
	// parameters; the least recently used goes first.
	reportCacheEntries = 16
	// reportCacheBytes bounds the bytes kept; a report larger than a
	// quarter of it is served to the requests waiting for it and dropped.
	reportCacheBytes = 64 << 20
	// reportMaxAge bounds how old a kept report may be: what is
	// provisional depends on the time as well as on the data.
	reportMaxAge = time.Minute
	// reportBuilds bounds the reports built at once, whatever their
	// parameters.
	reportBuilds = 2
)

// renderedReport is one report as served: built once, then shared by every
// request for the same parameters and data.
type renderedReport struct {
	// done is closed once the fields below are set.
	done        chan struct{}
	key         string
	version     dataVersion
	built       time.Time
	lastUsed    time.Time
	status      int
	contentType string
	body        []byte
}

// dataVersion identifies the data of a snapshot as far as a report sees
// it: the number of sources and the newest data generation. The store
// draws generations from one counter and gives a new one to every data
// change and to every source it adds, so any change raises the newest
// one, except removing sources, which lowers the count.
type dataVersion struct {
	sources    int
	generation uint64
}

func versionOf(snap *store.Snapshot) dataVersion {
	v := dataVersion{sources: len(snap.Sources)}
	for _, d := range snap.Sources {
		v.generation = max(v.generation, d.Generation)
	}
	return v
}

// reportHandler serves GET /report: at most maxRequests at once (0: no
// limit), more answered 503 at once, as /metrics; each report rendered
// once per data version and parameters, and served from that copy.
type reportHandler struct {
	snapshot    func() *store.Snapshot
	now         func() time.Time
	build       func(snap *store.Snapshot, ro report.Options) (status int, contentType string, body []byte)
	timeout     time.Duration
	maxRequests int
	requests    chan struct{}
	builds      chan struct{}
	onError     func(error)

	mu    sync.Mutex
	cache map[string]*renderedReport
	bytes int
}

func newReportHandler(maxRequests int, timeout time.Duration, snapshot func() *store.Snapshot, now func() time.Time,
	build func(*store.Snapshot, report.Options) (int, string, []byte)) *reportHandler {
	h := &reportHandler{snapshot: snapshot, now: now, build: build, timeout: timeout, maxRequests: maxRequests,
		builds: make(chan struct{}, reportBuilds), cache: map[string]*renderedReport{}}
	if maxRequests > 0 {
		h.requests = make(chan struct{}, maxRequests)
	}
	return h
}

func (h *reportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "This endpoint requires a GET request.", http.StatusMethodNotAllowed)
		return
	}
	if h.requests != nil {
		select {
		case h.requests <- struct{}{}:
			defer func() { <-h.requests }()
		default:
			http.Error(w, "Too many concurrent reports (limit "+strconv.Itoa(h.maxRequests)+", --web.max-requests); try again.",
				http.StatusServiceUnavailable)
			return
		}
	}
	if h.timeout > 0 {
		// A client that stops reading cannot hold a slot for longer.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.timeout))
	}
	ro, err := report.ParseOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rep, err := h.get(r.Context(), ro)
	if err != nil {
		return // the client went away
	}
	w.Header().Set("Content-Type", rep.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
	if rep.status != http.StatusOK {
		w.Header().Set("X-Content-Type-Options", "nosniff")
	}
	w.WriteHeader(rep.status)
	if _, err := w.Write(rep.body); err != nil && h.onError != nil {
		h.onError(err)
	}
}

// get returns the report for ro of the current data: the kept one, the
// one another request is building, or one it builds.
func (h *reportHandler) get(ctx context.Context, ro report.Options) (*renderedReport, error) {
	snap := h.snapshot()
	version, now := versionOf(snap), h.now()
	key := reportKey(ro)
	h.mu.Lock()
	rep := h.cache[key]
	if rep != nil && (rep.version != version || now.Sub(rep.built) >= reportMaxAge || now.Before(rep.built)) {
		h.dropLocked(rep)
		rep = nil
	}
	if rep != nil {
		rep.lastUsed = now
		h.mu.Unlock()
		select {
		case <-rep.done:
			return rep, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rep = &renderedReport{done: make(chan struct{}), key: key, version: version, built: now, lastUsed: now}
	h.cache[key] = rep
	h.mu.Unlock()

	select {
	case h.builds <- struct{}{}:
	case <-ctx.Done():
		h.abandon(rep)
		return nil, ctx.Err()
	}
	ro.Now = now
	rep.status, rep.contentType, rep.body = h.build(snap, ro)
	<-h.builds
	close(rep.done)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache[key] == rep {
		h.bytes += len(rep.body)
		if rep.status != http.StatusOK || len(rep.body) > reportCacheBytes/4 {
			h.dropLocked(rep)
		}
		h.evictLocked()
	}
	return rep, nil
}

// abandon gives up a report nobody built: requests waiting for it get a
// 503 and the next one builds it again.
func (h *reportHandler) abandon(rep *renderedReport) {
	rep.status, rep.contentType = http.StatusServiceUnavailable, "text/plain; charset=utf-8"
	rep.body = []byte("The report was not built; try again.\n")
	close(rep.done)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache[rep.key] == rep {
		delete(h.cache, rep.key)
	}
}

// dropLocked removes rep from the cache; requests that hold it still
// serve it.
func (h *reportHandler) dropLocked(rep *renderedReport) {
	if h.cache[rep.key] != rep {
		return
	}
	delete(h.cache, rep.key)
	select {
	case <-rep.done:
		h.bytes -= len(rep.body)
	default: // not counted yet
	}
}

// evictLocked drops the least recently used finished reports while the
// cache holds too many or too many bytes.
func (h *reportHandler) evictLocked() {
	for len(h.cache) > reportCacheEntries || h.bytes > reportCacheBytes {
		var oldest *renderedReport
		for _, rep := range h.cache {
			select {
			case <-rep.done:
			default:
				continue // being built
			}
			if oldest == nil || rep.lastUsed.Before(oldest.lastUsed) {
				oldest = rep
			}
		}
		if oldest == nil {
			return
		}
		h.dropLocked(oldest)
	}
}

// reportKey is the same for options that ask for the same report.
func reportKey(ro report.Options) string {
	// Every option but the clock, whichever options the report gains.
	ro.Now = time.Time{}
	return fmt.Sprintf("%#v", ro)
}

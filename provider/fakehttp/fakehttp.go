// Package fakehttp holds what the in-process provider fakes share: faults
// queued to replace the real answer to some requests, the Injector that
// drives any fake's faults the same way, request counters, HS256 tokens,
// and serving on loopback.
package fakehttp

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Fault replaces the real answer to the next Times requests it is queued
// for.
type Fault struct {
	// Status defaults to 500.
	Status int
	// Header is added to the answer; Content-Type defaults to
	// application/json.
	Header http.Header
	// Body is sent verbatim, so it can be truncated or invalid JSON.
	Body string
	// Delay holds the answer back (or until the client gives up).
	Delay time.Duration
	// Times counts the requests answered so; 0 means 1.
	Times int
}

// Write answers r with f: after f.Delay, f.Header, a Content-Type of
// application/json unless f.Header has one, f.Status and f.Body. If r's
// context ends during the delay, it aborts the response: a handler that
// returned without writing would be answered 200 with an empty body,
// which a client still waiting (its side of the connection is not
// always closed first) reads as an empty success.
func (f Fault) Write(w http.ResponseWriter, r *http.Request) {
	// net/http notices a client that went away, and ends r's context,
	// only once the request's body is read: unread, a delayed answer to
	// a POST would hold its connection, and the server's Close, forever.
	_, _ = io.Copy(io.Discard, r.Body)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(cmp.Or(f.Status, http.StatusInternalServerError))
	_, _ = io.WriteString(w, f.Body)
}

// Truncated is a fault whose connection ends before its body does: it
// announces more bytes than it sends.
func Truncated(body string) Fault {
	return Fault{Status: http.StatusOK, Body: body, Header: http.Header{
		"Content-Length": {strconv.Itoa(len(body) + 512)},
	}}
}

// Faults is a queue of faults, each queued for a key (a path, an
// operation, an endpoint). The zero value is an empty queue; it is safe
// for concurrent use.
type Faults[K comparable] struct {
	mu sync.Mutex
	q  []queued[K]
}

type queued[K comparable] struct {
	key   K
	fault Fault
}

// Inject queues f for key k: the next f.Times requests for k get f.
// Faults queued for one key are served in order. Inject sets a zero
// Status to 500 and a Times below 1 to 1.
func (fs *Faults[K]) Inject(k K, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.q = append(fs.q, queued[K]{k, f})
}

// Next takes one use of the oldest fault queued for k, if any, and
// dequeues the fault with its last use.
func (fs *Faults[K]) Next(k K) (Fault, bool) {
	return fs.NextFunc(func(key K) bool { return key == k })
}

// NextFunc is Next for the oldest fault whose key match accepts, for
// keys with wildcards.
func (fs *Faults[K]) NextFunc(match func(K) bool) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range fs.q {
		q := &fs.q[i]
		if !match(q.key) {
			continue
		}
		f := q.fault
		if q.fault.Times--; q.fault.Times <= 0 {
			fs.q = slices.Delete(fs.q, i, i+1)
		}
		return f, true
	}
	return Fault{}, false
}

// Counter counts requests by key. The zero value counts nothing yet; it
// is safe for concurrent use.
type Counter[K comparable] struct {
	mu sync.Mutex
	n  map[K]int
}

// Inc counts a request for k.
func (c *Counter[K]) Inc(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[K]int)
	}
	c.n[k]++
}

// Get returns how many requests for k were counted.
func (c *Counter[K]) Get(k K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// Total returns how many requests were counted, for every key.
func (c *Counter[K]) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// HS256 returns a JWT whose payload is claims in JSON, signed with key by
// HMAC-SHA256 under the header {"alg":"HS256","kid":"fake","typ":"JWT"}.
// The fakes' tokens are shaped like the real ones so that clients which
// decode them stay honest; no client verifies the signature.
func HS256(key []byte, claims any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "fake"})
	payload, _ := json.Marshal(claims)
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// Serve serves h on a loopback port, over TLS when tlsConfig is set, until
// the returned stop is called. It is how a fake runs in --demo, where no
// httptest server exists.
func Serve(ctx context.Context, h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) (baseURL string, stop func(), err error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		l, scheme = tls.NewListener(l, tlsConfig), "https"
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("Fake endpoint stopped", "err", err)
		}
	}()
	return scheme + "://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// Injector stands in front of a fake: the requests Match selects are
// answered by queued faults first, or all by Replace when it is set, and
// the arrival of each is recorded, so that a test drives any cloud's fake
// through one surface. It is safe for concurrent use.
type Injector struct {
	Next  http.Handler
	Match func(*http.Request) bool

	faults  Faults[struct{}]
	mu      sync.Mutex
	replace http.HandlerFunc
	all     int
	matched []time.Time
}

// Inject queues f for the requests Match selects (see Faults.Inject).
func (in *Injector) Inject(f Fault) { in.faults.Inject(struct{}{}, f) }

// Replace answers every request Match selects with h; nil restores the
// fake's answers.
func (in *Injector) Replace(h http.HandlerFunc) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.replace = h
}

// Requests returns how many requests arrived, selected or not.
func (in *Injector) Requests() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.all
}

// Arrivals returns when each selected request arrived, in order.
func (in *Injector) Arrivals() []time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.matched)
}

// ServeHTTP implements http.Handler.
func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	selected := in.Match != nil && in.Match(r)
	in.mu.Lock()
	in.all++
	replace := in.replace
	if selected {
		in.matched = append(in.matched, time.Now())
	}
	in.mu.Unlock()
	if selected {
		if f, ok := in.faults.Next(struct{}{}); ok {
			f.Write(w, r)
			return
		}
		if replace != nil {
			replace(w, r)
			return
		}
	}
	in.Next.ServeHTTP(w, r)
}

package fakehttp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultWrite(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		wantHeader http.Header
		wantBody   string
	}{
		{
			name:       "defaults",
			fault:      Fault{},
			wantStatus: http.StatusInternalServerError,
			wantHeader: http.Header{"Content-Type": {"application/json"}},
		},
		{
			name:       "status, header and body",
			fault:      Fault{Status: 429, Header: http.Header{"Retry-After": {"3"}}, Body: `{"message":"slow down"}`},
			wantStatus: 429,
			wantHeader: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"3"}},
			wantBody:   `{"message":"slow down"}`,
		},
		{
			name:       "own content type",
			fault:      Fault{Status: 502, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>bad gateway</html>"},
			wantStatus: 502,
			wantHeader: http.Header{"Content-Type": {"text/html"}},
			wantBody:   "<html>bad gateway</html>",
		},
		{
			name:       "several values, truncated body",
			fault:      Fault{Status: 200, Header: http.Header{"X-A": {"1", "2"}}, Body: `{"rows":[`},
			wantStatus: 200,
			wantHeader: http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}},
			wantBody:   `{"rows":[`,
		},
		{
			name:       "short delay",
			fault:      Fault{Status: 503, Delay: time.Millisecond},
			wantStatus: 503,
			wantHeader: http.Header{"Content-Type": {"application/json"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.fault.Write(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header(); !reflect.DeepEqual(got, tt.wantHeader) {
				t.Errorf("header = %v, want %v", got, tt.wantHeader)
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
		})
	}
}

func TestFaultWriteDelay(t *testing.T) {
	tests := []struct {
		name      string
		delay     time.Duration
		cancel    time.Duration // 0: never
		wantWrite bool
		minTime   time.Duration
	}{
		{name: "held back", delay: 50 * time.Millisecond, wantWrite: true, minTime: 50 * time.Millisecond},
		{name: "client gives up", delay: time.Minute, cancel: 20 * time.Millisecond, wantWrite: false, minTime: 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.cancel)
				defer cancel()
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			w := httptest.NewRecorder()
			start := time.Now()
			aborted := func() (aborted bool) {
				// The server turns this panic into a connection closed
				// without an answer.
				defer func() { aborted = recover() == http.ErrAbortHandler }()
				Fault{Status: 504, Body: "late", Delay: tt.delay}.Write(w, r)
				return false
			}()
			if aborted == tt.wantWrite {
				t.Errorf("aborted = %v, want %v", aborted, !tt.wantWrite)
			}
			if d := time.Since(start); d < tt.minTime || d > 10*time.Second {
				t.Errorf("took %v, want at least %v", d, tt.minTime)
			}
			if wrote := w.Body.Len() > 0 || len(w.Header()) > 0; wrote != tt.wantWrite {
				t.Errorf("wrote = %v, want %v", wrote, tt.wantWrite)
			}
			if tt.wantWrite && (w.Code != 504 || w.Body.String() != "late") {
				t.Errorf("answer %d %q", w.Code, w.Body.String())
			}
		})
	}
}

func TestFaults(t *testing.T) {
	type inject struct {
		key   string
		fault Fault
	}
	tests := []struct {
		name   string
		inject []inject
		next   []string
		want   []int // status per Next; 0: no fault
	}{
		{name: "empty", next: []string{"a"}, want: []int{0}},
		{
			name:   "defaults: 500, once",
			inject: []inject{{"a", Fault{}}},
			next:   []string{"a", "a"},
			want:   []int{500, 0},
		},
		{
			name:   "times",
			inject: []inject{{"a", Fault{Status: 429, Times: 3}}},
			next:   []string{"a", "a", "a", "a"},
			want:   []int{429, 429, 429, 0},
		},
		{
			name:   "negative times mean once",
			inject: []inject{{"a", Fault{Status: 503, Times: -2}}},
			next:   []string{"a", "a"},
			want:   []int{503, 0},
		},
		{
			name:   "in order per key",
			inject: []inject{{"a", Fault{Status: 429, Times: 2}}, {"a", Fault{Status: 503}}, {"a", Fault{Status: 200}}},
			next:   []string{"a", "a", "a", "a", "a"},
			want:   []int{429, 429, 503, 200, 0},
		},
		{
			name:   "keys apart",
			inject: []inject{{"a", Fault{Status: 401}}, {"b", Fault{Status: 403, Times: 2}}, {"a", Fault{Status: 404}}},
			next:   []string{"b", "c", "a", "b", "a", "a", "b"},
			want:   []int{403, 0, 401, 403, 404, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs Faults[string]
			for _, in := range tt.inject {
				fs.Inject(in.key, in.fault)
			}
			for i, k := range tt.next {
				f, ok := fs.Next(k)
				if ok != (tt.want[i] != 0) || f.Status != tt.want[i] {
					t.Errorf("Next(%q) #%d = %d, %v; want %d", k, i, f.Status, ok, tt.want[i])
				}
			}
		})
	}
}

func TestFaultsNextFunc(t *testing.T) {
	type key struct{ endpoint, kind string }
	match := func(endpoint, kind string) func(key) bool {
		return func(k key) bool {
			return (k.endpoint == "" || k.endpoint == endpoint) && (k.kind == "" || k.kind == kind)
		}
	}
	var fs Faults[key]
	fs.Inject(key{"query", "billing"}, Fault{Status: 403})
	fs.Inject(key{"", ""}, Fault{Status: 503, Times: 2})
	fs.Inject(key{"query", ""}, Fault{Status: 429})
	tests := []struct {
		endpoint, kind string
		want           int
	}{
		{"query", "carbon", 503},  // the wildcard is older than the query fault
		{"results", "", 503},      // and its last use
		{"query", "carbon", 429},  // the billing fault does not match
		{"query", "carbon", 0},    // all used
		{"query", "billing", 403}, // still queued
		{"query", "billing", 0},
	}
	for i, tt := range tests {
		f, ok := fs.NextFunc(match(tt.endpoint, tt.kind))
		if ok != (tt.want != 0) || f.Status != tt.want {
			t.Errorf("#%d NextFunc(%s, %s) = %d, %v; want %d", i, tt.endpoint, tt.kind, f.Status, ok, tt.want)
		}
	}
}

func TestFaultsConcurrent(t *testing.T) {
	var fs Faults[int]
	fs.Inject(1, Fault{Times: 100})
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for range 200 {
		wg.Go(func() {
			if _, ok := fs.Next(1); ok {
				mu.Lock()
				served++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if served != 100 {
		t.Errorf("served %d faults, want 100", served)
	}
}

func TestCounter(t *testing.T) {
	tests := []struct {
		name      string
		inc       []string
		get       map[string]int
		wantTotal int
	}{
		{name: "none", get: map[string]int{"a": 0, "": 0}},
		{name: "one key", inc: []string{"a", "a"}, get: map[string]int{"a": 2, "b": 0}, wantTotal: 2},
		{name: "keys", inc: []string{"a", "b", "a", ""}, get: map[string]int{"a": 2, "b": 1, "": 1}, wantTotal: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Counter[string]
			for _, k := range tt.inc {
				c.Inc(k)
			}
			for k, want := range tt.get {
				if got := c.Get(k); got != want {
					t.Errorf("Get(%q) = %d, want %d", k, got, want)
				}
			}
			if got := c.Total(); got != tt.wantTotal {
				t.Errorf("Total() = %d, want %d", got, tt.wantTotal)
			}
		})
	}
}

func TestCounterConcurrent(t *testing.T) {
	var c Counter[string]
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { c.Inc("a") })
	}
	wg.Wait()
	if got := c.Get("a"); got != 100 {
		t.Errorf("Get = %d, want 100", got)
	}
}

func TestHS256(t *testing.T) {
	tests := []struct {
		name   string
		key    []byte
		claims any
		want   map[string]any
	}{
		{name: "map", key: []byte("k1"), claims: map[string]any{"sub": "ServiceId-fake", "exp": 1700000000},
			want: map[string]any{"sub": "ServiceId-fake", "exp": float64(1700000000)}},
		{name: "struct", key: []byte{0, 1, 2}, claims: struct {
			Aud string `json:"aud"`
		}{"https://management.azure.com/"}, want: map[string]any{"aud": "https://management.azure.com/"}},
		{name: "empty", key: nil, claims: map[string]any{}, want: map[string]any{}},
	}
	enc := base64.RawURLEncoding
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := HS256(tt.key, tt.claims)
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q has %d segments", tok, len(parts))
			}
			hb, err := enc.DecodeString(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(hb), `{"alg":"HS256","kid":"fake","typ":"JWT"}`; got != want {
				t.Errorf("header = %s, want %s", got, want)
			}
			pb, err := enc.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(pb, &claims); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(claims, tt.want) {
				t.Errorf("claims = %v, want %v", claims, tt.want)
			}
			mac := hmac.New(sha256.New, tt.key)
			mac.Write([]byte(parts[0] + "." + parts[1]))
			if sig, err := enc.DecodeString(parts[2]); err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
				t.Errorf("signature does not verify (%v)", err)
			}
			if other := HS256(append([]byte("x"), tt.key...), tt.claims); other == tok {
				t.Error("another key signs the same")
			}
		})
	}
}

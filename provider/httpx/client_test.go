package httpx_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

func TestNewClient(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", map[string]int{"/small": 10, "/big": 11}[r.URL.Path]))
	}))
	t.Cleanup(ts.Close)

	// reached counts the requests that reach the caller's transport.
	var reached int
	callerRT := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		reached++
		return http.DefaultTransport.RoundTrip(r)
	})
	tests := []struct {
		name        string
		base        *http.Client
		observe     bool
		wantTimeout time.Duration
		wantReached int
	}{
		{name: "default client", wantTimeout: time.Minute},
		{name: "default client observed", observe: true, wantTimeout: time.Minute},
		{name: "caller's client", base: &http.Client{Timeout: 5 * time.Second, Transport: callerRT}, observe: true, wantTimeout: 5 * time.Second, wantReached: 2},
		{name: "caller's client without transport", base: &http.Client{Timeout: 7 * time.Second}, wantTimeout: 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = 0
			var mu sync.Mutex
			var seen []string
			o := httpx.ClientOptions{
				Timeout:          time.Minute,
				Endpoint:         func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/") },
				MaxResponseBytes: 10,
			}
			if tt.observe {
				o.Observe = func(endpoint string, code int) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, endpoint+" "+http.StatusText(code))
				}
			}
			var before http.Client
			if tt.base != nil {
				before = *tt.base
			}
			c := httpx.NewClient(tt.base, o)
			if c == tt.base {
				t.Fatal("NewClient returned the caller's client")
			}
			if tt.base != nil && (tt.base.Timeout != before.Timeout || (tt.base.Transport == nil) != (before.Transport == nil)) {
				t.Error("NewClient modified the caller's client")
			}
			if c.Timeout != tt.wantTimeout {
				t.Errorf("Timeout = %s, want %s", c.Timeout, tt.wantTimeout)
			}
			for path, wantErr := range map[string]error{"/small": nil, "/big": httpx.ErrResponseTooLarge} {
				resp, err := c.Get(ts.URL + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
					t.Errorf("GET %s: read error %v, want %v", path, err, wantErr)
				}
			}
			if reached != tt.wantReached {
				t.Errorf("the caller's transport saw %d requests, want %d", reached, tt.wantReached)
			}
			wantSeen := 0
			if tt.observe {
				wantSeen = 2
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != wantSeen {
				t.Errorf("observed %q, want %d attempts", seen, wantSeen)
			}
			for _, s := range seen {
				if s != "small OK" && s != "big OK" {
					t.Errorf("observed %q", s)
				}
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestLimitResponses(t *testing.T) {
	errBase := errors.New("base failed")
	tests := []struct {
		name      string
		body      *string // nil: a response without a body
		baseErr   error
		limit     int64
		wantErr   error
		wantBytes int
	}{
		{name: "under the limit", body: new(strings.Repeat("x", 9)), limit: 10, wantBytes: 9},
		{name: "exactly the limit", body: new(strings.Repeat("x", 10)), limit: 10, wantBytes: 10},
		{name: "one byte over", body: new(strings.Repeat("x", 11)), limit: 10, wantBytes: 10, wantErr: httpx.ErrResponseTooLarge},
		{name: "far over", body: new(strings.Repeat("x", 1<<20)), limit: 10, wantBytes: 10, wantErr: httpx.ErrResponseTooLarge},
		{name: "empty at zero", body: new(""), limit: 0},
		{name: "one byte at zero", body: new("x"), limit: 0, wantErr: httpx.ErrResponseTooLarge},
		{name: "no body", limit: 10},
		{name: "base error", baseErr: errBase, limit: 10, wantErr: errBase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closed := false
			base := roundTripFunc(func(*http.Request) (*http.Response, error) {
				if tt.baseErr != nil {
					return nil, tt.baseErr
				}
				resp := &http.Response{StatusCode: http.StatusOK}
				if tt.body != nil {
					resp.Body = closeFunc{strings.NewReader(*tt.body), func() { closed = true }}
				}
				return resp, nil
			})
			req, _ := http.NewRequest(http.MethodGet, "http://example.invalid/", nil)
			resp, err := httpx.LimitResponses(base, tt.limit).RoundTrip(req)
			if err == nil && resp.Body != nil {
				var data []byte
				data, err = io.ReadAll(resp.Body)
				if len(data) != tt.wantBytes {
					t.Errorf("read %d bytes, want %d", len(data), tt.wantBytes)
				}
				if cerr := resp.Body.Close(); cerr != nil || !closed {
					t.Errorf("Close = %v, closed base body: %v", cerr, closed)
				}
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == httpx.ErrResponseTooLarge {
				tl, ok := errors.AsType[*httpx.ResponseTooLargeError](err)
				if !ok || tl.Limit != tt.limit {
					t.Errorf("err = %#v, want a *ResponseTooLargeError with limit %d", err, tt.limit)
				}
				if want := "response body larger than 10 bytes"; tt.limit == 10 && err.Error() != want {
					t.Errorf("message %q, want %q", err.Error(), want)
				}
			}
		})
	}
}

type closeFunc struct {
	io.Reader
	close func()
}

func (c closeFunc) Close() error { c.close(); return nil }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"   ", 0, false},
		{"30", 30 * time.Second, true},
		{" 0 ", 0, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"86400", httpx.MaxRetryAfter, true},
		{"86401", httpx.MaxRetryAfter, true},
		{"99999999999999999", httpx.MaxRetryAfter, true},
		{"999999999999999999999999", 0, false}, // overflows uint64: not delay-seconds
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), httpx.MaxRetryAfter, true},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := httpx.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestReadBody: a body reads whole into one buffer of its announced
// length, or in chunks; one cut short is truncated, not short.
func TestReadBody(t *testing.T) {
	text := strings.Repeat("0123456789", 1000)
	for _, tt := range []struct {
		name   string
		length int64
		body   string
		want   string
		cut    bool
	}{
		{"announced", int64(len(text)), text, text, false},
		{"unknown length", -1, text, text, false},
		{"empty", 0, "", "", false},
		{"announced beyond the limit is not trusted", 1 << 40, text, text, false},
		{"cut short", int64(len(text)) + 10, text, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpx.ReadBody(strings.NewReader(tt.body), tt.length, 1<<20)
			if tt.cut {
				if !errors.Is(err, httpx.ErrTruncatedBody) {
					t.Errorf("err = %v, want a truncated body", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("ReadBody = %d bytes, %v; want %d bytes", len(got), err, len(tt.want))
			}
		})
	}
}

// TestCompactJSON: whitespace between tokens goes, whitespace inside
// strings (escaped quotes included) stays.
func TestCompactJSON(t *testing.T) {
	in := " {\n\t\"a b\" : [ 1 , \"x\\\" y\" ] ,\r\n \"c\":\"\\\\\" }  "
	got, err := io.ReadAll(httpx.CompactJSON(strings.NewReader(in)))
	if want := `{"a b":[1,"x\" y"],"c":"\\"}`; err != nil || string(got) != want {
		t.Errorf("CompactJSON = %q, %v; want %q", got, err, want)
	}
	if _, err := io.ReadAll(httpx.CompactJSON(strings.NewReader(strings.Repeat(" ", 1<<20)))); err != nil {
		t.Errorf("a body of whitespace: %v", err)
	}
}

package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// TestPausedTransport checks the source-wide pause that a Retry-After
// sets: which answers set it, that it holds back later requests for its
// length, and that a pause longer than a request's deadline fails that
// request at once as throttled, with the delay asked for.
func TestPausedTransport(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wantPause  bool
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, "1", true},
		{"503 with Retry-After", http.StatusServiceUnavailable, "1", true},
		{"429 with Retry-After 0", http.StatusTooManyRequests, "0", false},
		{"429 without Retry-After", http.StatusTooManyRequests, "", false},
		{"500 with Retry-After", http.StatusInternalServerError, "1", false},
		{"200", http.StatusOK, "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &httpx.PausedTransport{Pause: &httpx.Pause{}, Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
				h := http.Header{}
				if tt.retryAfter != "" {
					h.Set("Retry-After", tt.retryAfter)
				}
				return &http.Response{StatusCode: tt.status, Header: h, Body: http.NoBody}, nil
			})}
			req, _ := http.NewRequest(http.MethodGet, "http://api.invalid/v1/data", nil)
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			// A short deadline tells whether the next request would wait,
			// without waiting for the pause itself.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := rt.RoundTrip(req.WithContext(ctx))
			if paused := err != nil; paused != tt.wantPause {
				t.Fatalf("next request held back: %v (%v), want %v", paused, err, tt.wantPause)
			}
			if !tt.wantPause {
				return
			}
			if d := time.Since(start); d > 10*time.Millisecond {
				t.Errorf("a pause beyond the deadline was waited for (%v)", d)
			}
			if te, ok := errors.AsType[*httpx.ThrottledError](err); !ok || provider.ReasonOf(err) != provider.ReasonThrottled ||
				provider.RetryAfterOf(err) <= 900*time.Millisecond || te.RetryAfter > time.Second {
				t.Errorf("err = %v (%s, retry after %v), want throttled with the rest of the second", err, provider.ReasonOf(err), provider.RetryAfterOf(err))
			}
		})
	}

	t.Run("waits for the longest pause", func(t *testing.T) {
		var th httpx.Pause
		const d = 200 * time.Millisecond
		start := time.Now()
		th.Extend(d)
		th.Extend(d / 10) // a shorter pause does not cut the longer one
		if err := th.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < d {
			t.Errorf("waited %v, want at least %v", waited, d)
		}
		if err := th.Wait(context.Background()); err != nil {
			t.Errorf("wait after the pause: %v", err)
		}
	})
}

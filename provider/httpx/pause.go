package httpx

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Pause is a source-wide "not before" time. When an API answers one
// request with 429 or 503 and a Retry-After, no request of the source may
// go out before that time, whichever retry layer sends it: an SDK that
// retries on its own schedule would otherwise come back sooner than
// asked, and the source's other requests in flight would each earn their
// own 429 and burn their retries. The zero value is ready to use.
type Pause struct {
	mu    sync.Mutex
	until time.Time
}

// Extend holds every request back for d from now, unless a longer pause is
// already in force.
func (p *Pause) Extend(d time.Duration) {
	until := time.Now().Add(d)
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.until) {
		p.until = until
	}
}

// Wait returns once the pause, if any, is over, or with ctx's error. A
// pause that outlasts ctx's deadline is not waited for: Wait returns a
// *ThrottledError at once, so that the caller's own backoff, which
// honours its RetryAfter, waits instead of a refresh that could only time
// out. It looks again after sleeping because another answer may have
// extended the pause meanwhile.
func (p *Pause) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		d := time.Until(p.until)
		p.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return &ThrottledError{RetryAfter: d}
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// ThrottledError is a request not sent because the API asked the source
// to wait longer than the request may.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("the API asked to wait %s before the next request (Retry-After), longer than this refresh may", e.RetryAfter.Round(time.Second))
}

// FailureReason implements provider.Classified.
func (*ThrottledError) FailureReason() provider.Reason { return provider.ReasonThrottled }

// RetryAfterDelay implements provider.Delayed.
func (e *ThrottledError) RetryAfterDelay() time.Duration { return e.RetryAfter }

// NonRetriable tells azcore's retry policy not to retry.
func (*ThrottledError) NonRetriable() {}

// PausedTransport waits out Pause before every request it sends, and
// extends it by the Retry-After of every 429 or 503 answer.
type PausedTransport struct {
	Base  http.RoundTripper // nil: http.DefaultTransport
	Pause *Pause
}

// RoundTrip implements http.RoundTripper.
func (t *PausedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.Pause.Wait(req.Context()); err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even unsent
		}
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && d > 0 {
			t.Pause.Extend(d)
		}
	}
	return resp, err
}

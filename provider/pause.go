package provider

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Pause is a source-wide "not before" time. When an API answers one
// request with 429 and a Retry-After, that request waits in its retry
// layer's backoff; without a shared pause the source's other requests in
// flight would keep hitting an API that just asked for one, each earning
// its own 429 and burning its retries. The zero value is ready to use.
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

// Wait returns once the pause, if any, is over, or with ctx's error. It
// looks again after sleeping because another answer may have extended the
// pause meanwhile.
func (p *Pause) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		d := time.Until(p.until)
		p.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
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

// PausedTransport waits out Pause before every request it sends.
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
	return base.RoundTrip(req)
}

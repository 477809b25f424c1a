package provider

import (
	"net/http"
)

// RequestObserver is told of every HTTP attempt a provider client makes:
// the logical endpoint name (a small fixed set per provider, never a URL)
// and the status code, 0 when no response arrived.
type RequestObserver func(endpoint string, code int)

// BytesObserver is told how many bytes each query processed, for providers
// that bill by bytes scanned (BigQuery).
type BytesObserver func(bytes int64)

// InstrumentedTransport reports each round trip to Observe. It sits below
// any retry layer so that every attempt is counted.
type InstrumentedTransport struct {
	Base     http.RoundTripper
	Observe  RequestObserver
	Endpoint func(*http.Request) string
}

// RoundTrip implements http.RoundTripper.
func (t *InstrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if t.Observe != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Observe(t.Endpoint(req), code)
	}
	return resp, err
}

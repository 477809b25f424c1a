package httpx

import (
	"net/http"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// InstrumentedTransport reports each round trip to Observe. It sits below
// any retry layer so that every attempt is counted.
type InstrumentedTransport struct {
	Base     http.RoundTripper
	Observe  provider.RequestObserver
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

package httpx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// ClientOptions configures NewClient.
type ClientOptions struct {
	// Timeout is the default client's timeout; a caller's client keeps
	// its own.
	Timeout time.Duration
	// TLS, when set, is the TLS configuration of the default client's
	// transport; a caller's client keeps its own.
	TLS *tls.Config
	// Observe, when set, is told of every attempt; Endpoint, then
	// required, names the attempt's endpoint for it.
	Observe  provider.RequestObserver
	Endpoint func(*http.Request) string
	// MaxResponseBytes bounds every response body; see LimitResponses.
	MaxResponseBytes int64
	// FailFast reports the failures no retry cures as final errors; see
	// FailFast.
	FailFast bool
	// Pause, when set, is the source-wide pause the client's requests
	// wait out; nil gives the client one of its own. Every client honours
	// Retry-After through it; see PausedTransport.
	Pause *Pause
}

// NewClient derives the client a provider sends every request through,
// so that every provider counts attempts, bounds bodies and refreshes,
// and honours Retry-After alike. base is
// the caller's client, copied rather than modified because it may be
// shared, and kept as it is otherwise (a nil Transport meaning
// http.DefaultTransport). A nil base selects a client of its own, with
// o.Timeout, o.TLS and a clone of http.DefaultTransport that honours
// HTTPS_PROXY and NO_PROXY even if the process changed the default's
// proxy. Hand the result to the SDK as its transport or client, below its
// retry layer, so that every attempt is observed and every body bounded.
func NewClient(base *http.Client, o ClientOptions) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	} else {
		c.Timeout = o.Timeout
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
		if t, ok := rt.(*http.Transport); ok && base == nil {
			t = t.Clone()
			t.Proxy = http.ProxyFromEnvironment
			if o.TLS != nil {
				t.TLSClientConfig = o.TLS.Clone()
			}
			rt = t
		}
	}
	if o.FailFast {
		rt = FailFast(rt)
	}
	if o.Observe != nil {
		rt = &InstrumentedTransport{Base: rt, Observe: o.Observe, Endpoint: o.Endpoint}
	}
	rt = LimitResponses(rt, o.MaxResponseBytes)
	pause := o.Pause
	if pause == nil {
		pause = &Pause{}
	}
	c.Transport = &PausedTransport{Base: rt, Pause: pause}
	return &c
}

// ErrResponseTooLarge is matched (errors.Is) by every read of a body that
// LimitResponses cut off, so that callers can classify the failure as a
// malformed response without knowing the limit in force.
var ErrResponseTooLarge = errors.New("response body too large")

// ResponseTooLargeError is the error a body bounded by LimitResponses
// returns once it passes its limit. It is a type, not only the sentinel,
// so that a caller can restate the failure (limit included) without the
// request method and URL that HTTP clients and SDKs wrap around it.
type ResponseTooLargeError struct {
	Limit int64
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("response body larger than %d bytes", e.Limit)
}

// Unwrap makes errors.Is(err, ErrResponseTooLarge) hold.
func (e *ResponseTooLargeError) Unwrap() error { return ErrResponseTooLarge }

// FailureReason implements provider.Classified.
func (*ResponseTooLargeError) FailureReason() provider.Reason { return provider.ReasonMalformed }

// LimitResponses bounds every response body that base returns at limit
// bytes. It exists because SDKs read bodies whole, error answers included,
// so a broken or hostile server could otherwise exhaust memory; it must
// therefore sit below any SDK or retry layer. A body of exactly limit
// bytes reads in full; one more byte fails the read with *ResponseTooLargeError.
// A nil base means http.DefaultTransport.
func LimitResponses(base http.RoundTripper, limit int64) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return limitTransport{base: base, limit: limit}
}

type limitTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	budget := BudgetOf(req.Context())
	if resp != nil {
		budget.progressed()
	}
	if resp != nil && resp.Body != nil {
		resp.Body = &limitedBody{rc: resp.Body, left: t.limit, limit: t.limit, budget: budget}
	}
	return resp, err
}

// limitedBody bounds one body at its limit and charges what it reads to
// the refresh's budget, if any.
type limitedBody struct {
	rc          io.ReadCloser
	left, limit int64
	budget      *Budget
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe: a body of exactly the limit is fine, one more byte is not.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, &ResponseTooLargeError{Limit: b.limit}
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if berr := b.budget.chargeBytes(n); berr != nil {
		return 0, berr
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// MaxRetryAfter caps a server's Retry-After: anything longer is a broken
// header, a day is already far beyond any refresh interval, and the cap
// keeps the Duration from overflowing.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After value, delay-seconds or an
// HTTP date, relative to now. A date in the past means "now"; the result
// is at most MaxRetryAfter. ok is false when v is empty or neither form.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(secs, uint64(MaxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// FailFast wraps base so that two failures no retry cures surface as
// final errors, which retry layers give up on at once instead of retrying
// until the caller's deadline:
//   - a server certificate the client does not trust becomes a
//     *CertificateError (a proxy or private CA that needs trusting);
//   - a body that ends before its Content-Length or last chunk reads as
//     a *TruncatedBodyError instead of io.ErrUnexpectedEOF.
//
// Both carry azcore's NonRetriable marker; other retry layers must check
// IsCertificateError and ErrTruncatedBody themselves where they would
// retry them. It must sit below any retry layer. A nil base means
// http.DefaultTransport.
func FailFast(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return failFastTransport{base: base}
}

type failFastTransport struct{ base http.RoundTripper }

func (t failFastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		if IsCertificateError(err) {
			if _, ok := errors.AsType[*CertificateError](err); !ok {
				err = &CertificateError{Host: req.URL.Host, Err: err}
			}
		}
		return resp, err
	}
	if resp != nil && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &truncationBody{rc: resp.Body, length: resp.ContentLength}
	}
	return resp, nil
}

// truncationBody turns the io.ErrUnexpectedEOF of a body cut short into
// a *TruncatedBodyError.
type truncationBody struct {
	rc     io.ReadCloser
	read   int64
	length int64
}

func (b *truncationBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
		err = &TruncatedBodyError{Read: b.read, Length: b.length}
	}
	return n, err
}

func (b *truncationBody) Close() error { return b.rc.Close() }

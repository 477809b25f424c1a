// Package httpx is the HTTP layer every cloud client sends its requests
// through: one client per source that counts every attempt, bounds every
// answer and every refresh, waits out Retry-After for the whole source,
// turns the failures no retry cures into final errors, and classifies and
// scrubs what reaches the user.
package httpx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// ReasonForStatus classifies an HTTP status code.
func ReasonForStatus(code int) provider.Reason {
	switch {
	case code == http.StatusUnauthorized:
		return provider.ReasonAuth
	case code == http.StatusForbidden:
		return provider.ReasonPermission
	case code == http.StatusNotFound:
		return provider.ReasonNotFound
	case code == http.StatusTooManyRequests:
		return provider.ReasonThrottled
	case code == http.StatusRequestTimeout || code == http.StatusGatewayTimeout:
		return provider.ReasonTimeout
	case code >= 500:
		return provider.ReasonServer
	case code >= 400:
		return provider.ReasonBadRequest
	}
	return provider.ReasonOther
}

// CertificateHint is what a certificate error suggests: the usual causes
// are a TLS-intercepting proxy and a private CA, both cured by trusting
// their CA, never by retrying.
const CertificateHint = "if a proxy (HTTPS_PROXY) intercepts TLS or the endpoint uses a private CA, " +
	"add that CA's certificate to the system's trust store or to the bundle SSL_CERT_FILE names"

// IsCertificateError reports whether err's chain holds a failure to
// verify a server's TLS certificate: an unknown authority, a name
// mismatch, an expired or otherwise invalid certificate, or no roots to
// verify against.
func IsCertificateError(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*CertificateError](err); ok {
		return true
	}
	return provider.IsCertificateError(err)
}

// CertificateError is a server certificate the client does not trust.
// Its message says so and how to cure it (CertificateHint); it is final,
// so retry layers that honour NonRetriable (azcore) or classify errors
// themselves (see IsCertificateError) give up at once.
type CertificateError struct {
	// Host is the server's host (and port), when known.
	Host string
	// Err is the verification failure.
	Err error
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("the TLS certificate of %s is not trusted: %v; %s", cmp.Or(e.Host, "the server"), e.Err, CertificateHint)
}

// Unwrap returns the verification failure.
func (e *CertificateError) Unwrap() error { return e.Err }

// NonRetriable tells azcore's retry policy not to retry.
func (*CertificateError) NonRetriable() {}

// FailureReason implements provider.Classified: a certificate is a
// network matter.
func (*CertificateError) FailureReason() provider.Reason { return provider.ReasonNetwork }

// CertificateFailure returns the certificate error in err's chain as a
// *CertificateError, nil when there is none. A raw crypto/tls or x509
// error is wrapped, its host taken from the *url.Error around it.
func CertificateFailure(err error) *CertificateError {
	if !IsCertificateError(err) {
		return nil
	}
	if ce, ok := errors.AsType[*CertificateError](err); ok {
		return ce
	}
	ce := &CertificateError{Err: err}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		ce.Err = ue.Err
		if u, perr := url.Parse(ue.URL); perr == nil {
			ce.Host = u.Host
		}
	}
	return ce
}

// ErrTruncatedBody is matched (errors.Is) by every read of a body that
// ended before its Content-Length (or final chunk), once FailFast has
// seen it: the connection dropped mid-answer, so the answer is malformed.
var ErrTruncatedBody = errors.New("response body truncated")

// TruncatedBodyError is the error a body read through FailFast returns
// when the connection ends before the body does. It deliberately does not
// match io.ErrUnexpectedEOF, which some retry layers (the BigQuery
// client's) retry until the caller's deadline: a server that cuts an
// answer short tends to cut its next one too, and the refresher's own
// backoff is the better place to wait.
type TruncatedBodyError struct {
	// Read is the number of body bytes read; Length is the announced
	// Content-Length, -1 when unknown (chunked).
	Read, Length int64
}

func (e *TruncatedBodyError) Error() string {
	if e.Length >= 0 {
		return fmt.Sprintf("response body truncated: the connection ended after %d of %d bytes", e.Read, e.Length)
	}
	return fmt.Sprintf("response body truncated: the connection ended after %d bytes", e.Read)
}

// Unwrap makes errors.Is(err, ErrTruncatedBody) hold.
func (e *TruncatedBodyError) Unwrap() error { return ErrTruncatedBody }

// NonRetriable tells azcore's retry policy not to retry.
func (*TruncatedBodyError) NonRetriable() {}

// FailureReason implements provider.Classified.
func (*TruncatedBodyError) FailureReason() provider.Reason { return provider.ReasonMalformed }

// TransportFailure classifies an error that is not the API's answer, in
// the order that tells the truth: the caller's context first (its
// deadline is the usual cause of a timeout), then a body cut short or too
// large (malformed, which retrying does not mend), an untrusted
// certificate, the network. what prefixes the message. ok is false for
// any other error, which the provider classifies by the API's answer; the
// provider still scrubs the returned error of its secrets.
func TransportFailure(ctx context.Context, what string, err error) (reason provider.Reason, wrapped error, ok bool) {
	if cerr := ctx.Err(); cerr != nil {
		return provider.ReasonOf(cerr), fmt.Errorf("%s: %w", what, cerr), true
	}
	// The message names the cut, the limit or the pause itself, not the
	// layers of decoding that ran into it.
	if te, isPaused := errors.AsType[*ThrottledError](err); isPaused {
		return provider.ReasonThrottled, fmt.Errorf("%s: %w", what, te), true
	}
	if be, isOver := errors.AsType[*BudgetError](err); isOver {
		return provider.ReasonMalformed, fmt.Errorf("%s: %w", what, be), true
	}
	if tl, isLarge := errors.AsType[*ResponseTooLargeError](err); isLarge {
		return provider.ReasonMalformed, fmt.Errorf("%s: malformed response: %w", what, tl), true
	}
	if tb, isCut := errors.AsType[*TruncatedBodyError](err); isCut {
		return provider.ReasonMalformed, fmt.Errorf("%s: malformed response: %w", what, tb), true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return provider.ReasonMalformed, fmt.Errorf("%s: malformed response: %w", what, io.ErrUnexpectedEOF), true
	}
	if ce := CertificateFailure(err); ce != nil {
		return provider.ReasonNetwork, fmt.Errorf("%s: %w", what, ce), true
	}
	if ne, isNet := errors.AsType[net.Error](err); isNet {
		reason := provider.ReasonNetwork
		if ne.Timeout() {
			reason = provider.ReasonTimeout
		}
		return reason, &networkError{what: what, err: ne}, true
	}
	return "", nil, false
}

// networkError names a failed request once: SDKs wrap the *url.Error of
// net/http in errors of their own that repeat its method and URL
// (`Post "…": Post "…": dial tcp …`), and a URL may carry a query the
// user need not see. It says what failed, the method and host, and the
// network's own error.
type networkError struct {
	what string
	err  net.Error
}

func (e *networkError) Error() string {
	inner := error(e.err)
	var req string
	for {
		ue, ok := inner.(*url.Error)
		if !ok {
			break
		}
		if u, err := url.Parse(ue.URL); err == nil && req == "" {
			req = ue.Op + " " + u.Host
		}
		inner = ue.Err
	}
	if nested, ok := errors.AsType[*url.Error](inner); ok {
		inner = nested.Err
	}
	if req == "" {
		return e.what + ": " + inner.Error()
	}
	return e.what + ": " + req + ": " + inner.Error()
}

func (e *networkError) Unwrap() error { return e.err }

// Classify returns the classified, scrubbed *provider.Error of a failure
// that is not the API's answer (see TransportFailure), or false when err
// is the API's answer, which only the cloud's client can read.
func Classify(ctx context.Context, what string, err error, secrets ...string) (*provider.Error, bool) {
	reason, wrapped, ok := TransportFailure(ctx, what, err)
	if !ok {
		return nil, false
	}
	return &provider.Error{Reason: reason, RetryAfter: provider.RetryAfterOf(wrapped), Err: Redact(wrapped, secrets...)}, true
}

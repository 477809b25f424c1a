package provider

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Reason classifies a provider failure for the errors self-metric and for
// the refresher's backoff.
type Reason string

// Failure reasons.
const (
	ReasonAuth       Reason = "auth"
	ReasonPermission Reason = "permission"
	ReasonThrottled  Reason = "throttled"
	ReasonBadRequest Reason = "bad_request"
	ReasonNotFound   Reason = "not_found"
	ReasonServer     Reason = "server_error"
	ReasonTimeout    Reason = "timeout"
	ReasonNetwork    Reason = "network"
	ReasonMalformed  Reason = "malformed_response"
	ReasonCanceled   Reason = "canceled"
	ReasonOther      Reason = "other"
)

// AllReasons lists every Reason, so that metrics can be initialised at
// zero.
func AllReasons() []Reason {
	return []Reason{
		ReasonAuth, ReasonPermission, ReasonThrottled, ReasonBadRequest,
		ReasonNotFound, ReasonServer, ReasonTimeout, ReasonNetwork,
		ReasonMalformed, ReasonCanceled, ReasonOther,
	}
}

// Error is a classified provider failure.
type Error struct {
	Reason Reason
	// RetryAfter is the delay the provider asked for (HTTP Retry-After),
	// zero when it asked for none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ReasonForStatus classifies an HTTP status code.
func ReasonForStatus(code int) Reason {
	switch {
	case code == http.StatusUnauthorized:
		return ReasonAuth
	case code == http.StatusForbidden:
		return ReasonPermission
	case code == http.StatusNotFound:
		return ReasonNotFound
	case code == http.StatusTooManyRequests:
		return ReasonThrottled
	case code == http.StatusRequestTimeout || code == http.StatusGatewayTimeout:
		return ReasonTimeout
	case code >= 500:
		return ReasonServer
	case code >= 400:
		return ReasonBadRequest
	}
	return ReasonOther
}

// ReasonOf returns the reason of err: the Reason of an *Error in its chain,
// else one derived from context errors, bodies cut short or too large
// (ReasonMalformed), certificate errors and network errors
// (ReasonNetwork), else ReasonOther.
func ReasonOf(err error) Reason {
	var pe *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return pe.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.Is(err, ErrTruncatedBody), errors.Is(err, ErrResponseTooLarge):
		return ReasonMalformed
	case IsCertificateError(err):
		return ReasonNetwork
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return ReasonTimeout
		}
		return ReasonNetwork
	}
	return ReasonOther
}

// RetryAfterOf returns the Retry-After delay carried by err, or zero.
func RetryAfterOf(err error) time.Duration {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.RetryAfter
	}
	return 0
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
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	_, ok := errors.AsType[x509.SystemRootsError](err)
	return ok
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

// TransportFailure classifies an error that is not the API's answer, in
// the order that tells the truth: the caller's context first (its
// deadline is the usual cause of a timeout), then a body cut short or too
// large (malformed, which retrying does not mend), an untrusted
// certificate, the network. what prefixes the message. ok is false for
// any other error, which the provider classifies by the API's answer; the
// provider still scrubs the returned error of its secrets.
func TransportFailure(ctx context.Context, what string, err error) (reason Reason, wrapped error, ok bool) {
	if cerr := ctx.Err(); cerr != nil {
		return ReasonOf(cerr), fmt.Errorf("%s: %w", what, cerr), true
	}
	// The message names the cut or the limit itself, not the layers of
	// decoding that ran into it.
	if tl, isLarge := errors.AsType[*ResponseTooLargeError](err); isLarge {
		return ReasonMalformed, fmt.Errorf("%s: malformed response: %w", what, tl), true
	}
	if tb, isCut := errors.AsType[*TruncatedBodyError](err); isCut {
		return ReasonMalformed, fmt.Errorf("%s: malformed response: %w", what, tb), true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return ReasonMalformed, fmt.Errorf("%s: malformed response: %w", what, io.ErrUnexpectedEOF), true
	}
	if ce := CertificateFailure(err); ce != nil {
		return ReasonNetwork, fmt.Errorf("%s: %w", what, ce), true
	}
	if ne, isNet := errors.AsType[net.Error](err); isNet {
		reason := ReasonNetwork
		if ne.Timeout() {
			reason = ReasonTimeout
		}
		return reason, fmt.Errorf("%s: %w", what, ne), true
	}
	return "", nil, false
}

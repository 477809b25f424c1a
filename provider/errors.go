package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
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

// Classified is an error that knows its own Reason: the HTTP layer's
// errors for bodies cut short or too large and for untrusted certificates
// implement it, so that ReasonOf classifies them wherever they surface
// without this package knowing them.
type Classified interface {
	error
	FailureReason() Reason
}

// ReasonOf returns the reason of err: the Reason of an *Error in its chain,
// else one derived from context errors, a Classified error, or a network
// error (ReasonNetwork, ReasonTimeout), else ReasonOther.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	if pe, ok := errors.AsType[*Error](err); ok {
		return pe.Reason
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	}
	if c, ok := errors.AsType[Classified](err); ok {
		return c.FailureReason()
	}
	if IsCertificateError(err) {
		return ReasonNetwork
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		if ne.Timeout() {
			return ReasonTimeout
		}
		return ReasonNetwork
	}
	return ReasonOther
}

// Delayed is an error that carries the delay the provider asked for: the
// HTTP layer's refusal to send a request before a Retry-After is over.
type Delayed interface {
	error
	RetryAfterDelay() time.Duration
}

// RetryAfterOf returns the Retry-After delay carried by err: an *Error's,
// else a Delayed error's in its chain, else zero.
func RetryAfterOf(err error) time.Duration {
	if pe, ok := errors.AsType[*Error](err); ok && pe.RetryAfter > 0 {
		return pe.RetryAfter
	}
	if d, ok := errors.AsType[Delayed](err); ok {
		return d.RetryAfterDelay()
	}
	return 0
}

// IsCertificateError reports whether err's chain holds a failure of the
// standard library to verify a server's TLS certificate: an unknown
// authority, a name mismatch, an expired or otherwise invalid
// certificate, or no roots to verify against.
func IsCertificateError(err error) bool {
	if err == nil {
		return false
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

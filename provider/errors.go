package provider

import (
	"context"
	"errors"
	"net"
	"net/http"
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
// else one derived from context and network errors, else ReasonOther.
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

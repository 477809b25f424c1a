package ibm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// fail builds the *provider.Error every failure path returns, scrubbed
// of the API key.
func (p *Provider) fail(reason provider.Reason, retryAfter time.Duration, err error) *provider.Error {
	return &provider.Error{Reason: reason, RetryAfter: retryAfter, Err: httpx.Redact(err, p.secrets()...)}
}

// transportFailure classifies an error that came with no HTTP response:
// the caller's context first (its deadline is the usual cause of a
// timeout), then bodies too large or cut short (malformed), untrusted
// certificates, then network errors.
func (p *Provider) transportFailure(ctx context.Context, what string, err error) *provider.Error {
	if reason, wrapped, ok := httpx.TransportFailure(ctx, "ibm: "+what, err); ok {
		return p.fail(reason, provider.RetryAfterOf(wrapped), wrapped)
	}
	return p.fail(provider.ReasonOther, 0, fmt.Errorf("ibm: %s: %w", what, err))
}

// statusFailure classifies an HTTP error answer. The message names the
// request, the status and IBM's own explanation, plus a hint for the
// statuses a user can fix.
func (p *Provider) statusFailure(what string, resp *core.DetailedResponse, iam bool) *provider.Error {
	code := resp.StatusCode
	reason := httpx.ReasonForStatus(code)
	if iam && reason != provider.ReasonThrottled && reason != provider.ReasonServer && reason != provider.ReasonTimeout {
		// IAM answers 400 for an unknown or disabled key, 401/403 for
		// other credential problems: all are the key's fault.
		reason = provider.ReasonAuth
	}
	var retryAfter time.Duration
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		retryAfter, _ = httpx.ParseRetryAfter(resp.Headers.Get("Retry-After"), time.Now())
	}

	var b strings.Builder
	fmt.Fprintf(&b, "ibm: %s: %d %s", what, code, http.StatusText(code))
	if msg := errorMessage(resp, p.secrets()...); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if hint := statusHint(code, iam); hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	if retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", retryAfter)
	}
	return p.fail(reason, retryAfter, errors.New(b.String()))
}

func statusHint(code int, iam bool) string {
	switch {
	case iam && code < 500 && code != http.StatusTooManyRequests:
		return "check that the API key exists, is enabled and is for this IBM Cloud (IAM) endpoint"
	case iam:
		return ""
	case code == http.StatusUnauthorized:
		return "IBM rejected a freshly issued IAM token; check that the API key's identity can use the carbon calculator"
	case code == http.StatusForbidden:
		return "needs the Viewer role on Billing, or Usage report viewer on the enterprise"
	case code == http.StatusBadRequest:
		return "check the configured enterprise, account group or account id"
	}
	return ""
}

// errorMessage extracts the human part of an IBM error body. The Carbon
// Calculator answers {status, error, message, path}; IAM answers
// {errorCode, errorMessage}. go-sdk-core's own extraction prefers "error"
// (just "Forbidden"), so we read the fields ourselves.
func errorMessage(resp *core.DetailedResponse, secrets ...string) string {
	m, ok := resp.Result.(map[string]any)
	if !ok {
		return ""
	}
	str := func(k string) string {
		s, _ := m[k].(string)
		return strings.TrimSpace(s)
	}
	msg := str("message")
	if msg == "" {
		msg = str("errorMessage")
	}
	if msg == "" {
		msg = str("error")
		if msg != "" && strings.EqualFold(msg, http.StatusText(resp.StatusCode)) {
			msg = ""
		}
	}
	if code := str("errorCode"); code != "" {
		if msg == "" {
			msg = code
		} else {
			msg += " [" + code + "]"
		}
	}
	// Scrub before cutting: a key echoed across the cut would otherwise
	// leave its prefix for the final scrub to miss.
	return provider.Truncate(httpx.Scrub(msg, secrets...), maxMessageBytes)
}

// maxMessageBytes bounds the server-supplied text an error repeats.
const maxMessageBytes = 512

// tokenFailure classifies a failure to get an IAM token.
func (p *Provider) tokenFailure(ctx context.Context, err error) *provider.Error {
	const what = "POST " + iamPath
	if ctx.Err() != nil {
		return p.transportFailure(ctx, what, err)
	}
	if te, ok := errors.AsType[*iamTimeoutError](err); ok {
		return p.fail(provider.ReasonTimeout, 0, fmt.Errorf("ibm: %s: %w (check iam_url and the network path to it)", what, te))
	}
	if errors.Is(err, errNoAccessToken) {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, err))
	}
	if authErr, ok := errors.AsType[*core.AuthenticationError](err); ok && authErr.HTTPProblem != nil && authErr.Response != nil {
		return p.statusFailure(what, authErr.Response, true)
	}
	if hp, ok := errors.AsType[*core.HTTPProblem](err); ok && hp.Response != nil {
		return p.statusFailure(what, hp.Response, true)
	}
	if _, ok := errors.AsType[provider.Classified](err); ok || httpx.IsCertificateError(err) {
		return p.transportFailure(ctx, what, err)
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return p.transportFailure(ctx, what, err)
	}
	return p.fail(provider.ReasonAuth, 0, fmt.Errorf("ibm: %s: %w", what, err))
}

func malformed(what string, err error) error {
	return fmt.Errorf("ibm: %s: malformed response: %w", what, err)
}

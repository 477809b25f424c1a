package ibm

import (
	"cmp"
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

// api names the API an answer came from, for the hints of its errors.
type api int

const (
	apiCarbon api = iota
	apiIAM
	// apiAccountSummary and apiEnterpriseUsage are the cost feed's.
	apiAccountSummary
	apiEnterpriseUsage
)

// The permissions of the cost feed: the Usage Reports API's account
// summary needs a role on the account's Billing service, the Enterprise
// Usage Reports API one on the Enterprise service of the enterprise (or
// of the account group or account read).
const (
	AccountSummaryPermission  = "Viewer role (or higher) on the Billing account management service"
	EnterpriseUsagePermission = "Usage Report Viewer role (or Editor or Administrator) on the Enterprise service"
)

// statusFailure classifies an HTTP error answer. The message names the
// request, the status and IBM's own explanation, plus a hint for the
// statuses a user can fix.
func (p *Provider) statusFailure(what string, resp *core.DetailedResponse, from api) *provider.Error {
	code := resp.StatusCode
	reason := httpx.ReasonForStatus(code)
	iam := from == apiIAM
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
	if hint := statusHint(code, from); hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	if retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", retryAfter)
	}
	return p.fail(reason, retryAfter, errors.New(b.String()))
}

func statusHint(code int, from api) string {
	cost := from == apiAccountSummary || from == apiEnterpriseUsage
	switch {
	case from == apiIAM && code < 500 && code != http.StatusTooManyRequests:
		return "check that the API key exists, is enabled and is for this IBM Cloud (IAM) endpoint"
	case from == apiIAM:
		return ""
	case code == http.StatusUnauthorized && cost:
		return "IBM rejected a freshly issued IAM token; check that the API key's identity can read usage reports"
	case code == http.StatusUnauthorized:
		return "IBM rejected a freshly issued IAM token; check that the API key's identity can use the carbon calculator"
	case code == http.StatusForbidden && from == apiAccountSummary:
		return "the cost of provisional months needs the " + AccountSummaryPermission + " of the account"
	case code == http.StatusForbidden && from == apiEnterpriseUsage:
		return "the cost of provisional months needs the " + EnterpriseUsagePermission + " of the enterprise, account group or account"
	case code == http.StatusForbidden:
		return "needs the Viewer role on Billing, or Usage report viewer on the enterprise"
	case code == http.StatusNotFound && from == apiEnterpriseUsage:
		return "check the configured enterprise, account group or account id"
	case code == http.StatusBadRequest && from != apiAccountSummary:
		return "check the configured enterprise, account group or account id"
	}
	return ""
}

// errorMessage extracts the human part of an IBM error body. The Carbon
// Calculator answers {status, error, message, path}; IAM answers
// {errorCode, errorMessage}; the Usage Reports and Enterprise Usage
// Reports APIs answer IBM's platform errors, {errors: [{code, message}],
// status_code, trace}. go-sdk-core's own extraction prefers "error" (just
// "Forbidden"), so we read the fields ourselves.
func errorMessage(resp *core.DetailedResponse, secrets ...string) string {
	m, ok := resp.Result.(map[string]any)
	if !ok {
		return ""
	}
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return strings.TrimSpace(s)
	}
	// The first of the platform's errors, if any.
	first := map[string]any{}
	if errs, ok := m["errors"].([]any); ok && len(errs) > 0 {
		if e, ok := errs[0].(map[string]any); ok {
			first = e
		}
	}
	msg := cmp.Or(str(m, "message"), str(m, "errorMessage"), str(first, "message"))
	if msg == "" {
		msg = str(m, "error")
		if msg != "" && strings.EqualFold(msg, http.StatusText(resp.StatusCode)) {
			msg = ""
		}
	}
	if code := cmp.Or(str(m, "errorCode"), str(first, "code")); code != "" {
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
		return p.statusFailure(what, authErr.Response, apiIAM)
	}
	if hp, ok := errors.AsType[*core.HTTPProblem](err); ok && hp.Response != nil {
		return p.statusFailure(what, hp.Response, apiIAM)
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

package scaleway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/scaleway/scaleway-sdk-go/scw"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// PermissionSet is the IAM permission set that reads the Environmental
// Footprint API: "EnvironmentalImpactReadOnly — Read access to
// Environmental Impact information", scoped to the organization, in
// Scaleway's list of permission sets (IAM reference: permission sets).
const PermissionSet = "EnvironmentalImpactReadOnly"

// BillingPermissionSet is the IAM permission set that reads consumption
// (the Billing API): "BillingReadOnly — List and read access to billing
// information". Scaleway grants it apart from PermissionSet.
const BillingPermissionSet = "BillingReadOnly"

// Operation names in messages.
const (
	opImpactData   = "GetImpactData"
	opAvailability = "GetImpactReportAvailability"
	opConsumptions = "ListConsumptions"
)

// maxMessageBytes bounds the server-supplied text quoted in a message.
const maxMessageBytes = 512

// fail builds the *provider.Error every failure path returns, scrubbed of
// the secret key.
func (p *Provider) fail(reason provider.Reason, retryAfter time.Duration, err error) *provider.Error {
	return &provider.Error{Reason: reason, RetryAfter: retryAfter, Err: httpx.Redact(err, p.secrets...)}
}

// classify turns the error of one API call into a *provider.Error whose
// message names the operation, what Scaleway said and what the user can
// do about it. x is what the transport saw of the call.
func (p *Provider) classify(ctx context.Context, op string, x *exchange, err error) *provider.Error {
	what := "scaleway: " + op
	if over := httpx.Overrun(ctx); over != nil {
		// Past a limit of the refresh, whatever the layer that read the
		// answer (retryablehttp drains bodies unchecked) made of it.
		err = over
	}
	if reason, wrapped, ok := httpx.TransportFailure(ctx, what, err); ok {
		return p.fail(reason, provider.RetryAfterOf(wrapped), wrapped)
	}

	// Scaleway's standard errors, which the SDK decodes by their "type"
	// and returns without the status; then any other error answer.
	if pe, ok := errors.AsType[*scw.PermissionsDeniedError](err); ok {
		var denied []string
		for _, d := range pe.Details {
			denied = append(denied, strings.TrimSpace(d.Action+" "+d.Resource))
		}
		return p.answer(op, http.StatusForbidden, x, "permissions_denied", strings.Join(denied, "; "))
	}
	if ae, ok := errors.AsType[*scw.DeniedAuthenticationError](err); ok {
		return p.answer(op, http.StatusUnauthorized, x, "denied_authentication", strings.TrimPrefix(ae.Error(), "scaleway-sdk-go: "))
	}
	if ie, ok := errors.AsType[*scw.InvalidArgumentsError](err); ok {
		return p.answer(op, http.StatusBadRequest, x, "invalid_arguments", strings.TrimPrefix(ie.Error(), "scaleway-sdk-go: "))
	}
	if re, ok := errors.AsType[*scw.ResponseError](err); ok {
		msg := re.Message
		if msg == re.Status {
			msg = "" // the SDK's stand-in for a body that is not JSON
		}
		return p.answer(op, re.StatusCode, x, re.Type, msg)
	}
	if x != nil && x.status >= 400 {
		// An error answer whose body the SDK could not decode: an empty
		// 429 labelled as JSON, a proxy's HTML page. The status says it.
		return p.answer(op, x.status, x, "", "")
	}

	// A success whose body does not decode: JSON cut short within a body
	// that read in full, or the wrong shape.
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) {
		return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("%s: malformed response: %s", what,
			provider.Truncate(httpx.Scrub(err.Error(), p.secrets...), maxMessageBytes)))
	}
	return p.fail(provider.ReasonOther, 0, fmt.Errorf("%s: %w", what, err))
}

// answer classifies an error answer by its status, and words a message
// with Scaleway's own explanation and a hint for what the user can fix.
func (p *Provider) answer(op string, status int, x *exchange, kind, msg string) *provider.Error {
	if status == 0 && x != nil {
		status = x.status
	}
	reason := httpx.ReasonForStatus(status)
	switch kind {
	case "permissions_denied":
		reason = provider.ReasonPermission
	case "denied_authentication":
		reason = provider.ReasonAuth
	}
	var retryAfter time.Duration
	if x != nil && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		retryAfter, _ = httpx.ParseRetryAfter(x.header.Get("Retry-After"), time.Now())
	}

	var b strings.Builder
	fmt.Fprintf(&b, "scaleway: %s: ", op)
	if status != 0 {
		fmt.Fprintf(&b, "%d %s", status, http.StatusText(status))
	} else {
		b.WriteString("error answer")
	}
	// Scrub before cutting: a secret echoed across the cut would otherwise
	// leave its prefix for the final scrub to miss.
	if msg = httpx.Scrub(strings.TrimSpace(msg), p.secrets...); msg != "" {
		b.WriteString(": ")
		b.WriteString(provider.Truncate(msg, maxMessageBytes))
	}
	switch reason {
	case provider.ReasonPermission:
		if op == opConsumptions {
			fmt.Fprintf(&b, " (reading consumption for provisional months needs the IAM permission set %s on organization %s for the API key's user or application; the published footprint does not)",
				BillingPermissionSet, p.org)
		} else {
			fmt.Fprintf(&b, " (the API key's user or application needs the IAM permission set %s on organization %s)", PermissionSet, p.org)
		}
	case provider.ReasonAuth:
		b.WriteString(" (Scaleway rejected the API key: check the secret key, that the key is not expired or deleted, " +
			"and that it is the key of the access key configured)")
	case provider.ReasonThrottled:
		if x != nil && x.attempts > 1 {
			fmt.Fprintf(&b, " (rate limited; gave up after %d attempts)", x.attempts)
		} else {
			b.WriteString(" (rate limited)")
		}
	case provider.ReasonServer:
		if x != nil && x.attempts > 1 {
			fmt.Fprintf(&b, " (after %d attempts)", x.attempts)
		}
	case provider.ReasonBadRequest:
		b.WriteString(" (Scaleway rejected the query the exporter built; please report this)")
	case provider.ReasonNotFound:
		b.WriteString(" (check api_url: it must be the Scaleway API's base URL, such as " + DefaultAPIURL + ")")
	}
	if retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", retryAfter)
	}
	return p.fail(reason, retryAfter, errors.New(b.String()))
}

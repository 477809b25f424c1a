package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// opListAccounts is the Organizations operation the provider calls.
const opListAccounts = "ListAccounts"

// iamAction names the IAM permission an operation needs, for messages
// that tell the user what to grant.
func iamAction(op string) string {
	switch op {
	case opListAccounts:
		return "organizations:" + op
	case opCostAndUsage, opCostByTag:
		return "ce:" + opCostAndUsage
	}
	return "sustainability:" + op
}

// fail builds the *provider.Error every failure path returns, scrubbed of
// the secret access key.
func (p *Provider) fail(reason provider.Reason, retryAfter time.Duration, err error) *provider.Error {
	return &provider.Error{Reason: reason, RetryAfter: retryAfter, Err: httpx.Redact(err, p.secrets...)}
}

// classify turns the error of operation op into a *provider.Error whose
// message names the operation, what AWS said, and what the user can do
// about it. Failures that are not AWS's answer (the caller's deadline, a
// body cut short or too large, the refresh's budget, certificates, the
// network) are httpx's to classify; a refresh over its budget says so
// whatever the SDK made of the read that passed it.
func (p *Provider) classify(ctx context.Context, op string, err error) *provider.Error {
	what := "aws: " + op
	if ce, ok := errors.AsType[*credentialsError](err); ok && ctx.Err() == nil {
		return p.credentialsFailure(ctx, what, ce)
	}
	if over := httpx.Overrun(ctx); over != nil {
		err = over
	}
	if reason, wrapped, ok := httpx.TransportFailure(ctx, what, err); ok {
		return p.fail(reason, provider.RetryAfterOf(wrapped), wrapped)
	}
	if de, ok := errors.AsType[*smithy.DeserializationError](err); ok {
		return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("%s: malformed response: %w", what, de.Err))
	}
	status := 0
	var header http.Header
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); ok && re.Response != nil {
		status, header = re.HTTPStatusCode(), re.Response.Header
	}
	apiErr, isAPI := errors.AsType[smithy.APIError](err)
	if isAPI || status != 0 {
		var code, msg string
		if isAPI {
			code, msg = apiErr.ErrorCode(), apiErr.ErrorMessage()
		}
		return p.apiFailure(op, status, header, code, msg)
	}
	return p.fail(provider.ReasonOther, 0, fmt.Errorf("%s: %w", what, err))
}

// credentialsFailure classifies a failure of the credential chain: no
// request was sent. The chain's own requests (STS, SSO, the instance
// metadata service) fail on the network too, which httpx classifies.
func (p *Provider) credentialsFailure(ctx context.Context, what string, ce *credentialsError) *provider.Error {
	reason := provider.ReasonAuth
	if r, _, ok := httpx.TransportFailure(ctx, what, ce.err); ok {
		reason = r
	}
	return p.fail(reason, 0, fmt.Errorf("%s: no usable AWS credentials (check the entry's profile, static keys or role_arn, "+
		"or the environment's AWS_* variables, web identity token and instance or task role): %w", what, ce.err))
}

// apiFailure classifies an error answer by its code first, the status
// second: AWS's codes are more precise than its statuses (Organizations
// answers 400 to a denied call).
func (p *Provider) apiFailure(op string, status int, header http.Header, code, msg string) *provider.Error {
	var reason provider.Reason
	switch code {
	case "AccessDeniedException", "AccessDenied", "AWSOrganizationsNotInUseException":
		reason = provider.ReasonPermission
	case "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
		"MissingAuthenticationTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"ExpiredTokenException", "ExpiredToken", "InvalidAccessKeyId":
		reason = provider.ReasonAuth
	case "ThrottlingException", "TooManyRequestsException", "LimitExceededException":
		// Cost Explorer throttles with LimitExceededException.
		reason = provider.ReasonThrottled
	case "ValidationException", "BillExpirationException", "RequestChangedException", "InvalidNextTokenException",
		"UnresolvableUsageUnitException":
		reason = provider.ReasonBadRequest
	case "DataUnavailableException":
		reason = provider.ReasonNotFound
	case "InternalServerException":
		reason = provider.ReasonServer
	default:
		reason = httpx.ReasonForStatus(status)
	}
	var retryAfter time.Duration
	if reason == provider.ReasonThrottled || status == http.StatusServiceUnavailable {
		retryAfter, _ = httpx.ParseRetryAfter(header.Get("Retry-After"), time.Now())
	}

	var b strings.Builder
	fmt.Fprintf(&b, "aws: %s: ", op)
	if status != 0 {
		fmt.Fprintf(&b, "%d ", status)
	}
	b.WriteString(cmp.Or(code, http.StatusText(status)))
	// Scrub before cutting: a secret echoed across the cut would otherwise
	// leave its prefix for the final scrub to miss.
	if msg = httpx.Scrub(strings.TrimSpace(msg), p.secrets...); msg != "" {
		if n := 512; len(msg) > n {
			for n > 0 && !utf8.RuneStart(msg[n]) {
				n-- // never cut a character in two
			}
			msg = msg[:n] + "…"
		}
		b.WriteString(": ")
		b.WriteString(msg)
	}
	switch {
	case code == "AWSOrganizationsNotInUseException":
		b.WriteString(" (the account is in no organization; set organizations: false)")
	case reason == provider.ReasonPermission && op == opListAccounts:
		fmt.Fprintf(&b, " (the identity needs the IAM permission %s, which only the management account or a delegated administrator has)", iamAction(op))
	case reason == provider.ReasonPermission && (op == opCostAndUsage || op == opCostByTag):
		what, off := costUse(op)
		fmt.Fprintf(&b, " (the identity needs the IAM permission %s %s; a member account reads Cost Explorer "+
			"only if the management account allows it; or %s)", iamAction(op), what, off)
	case code == "DataUnavailableException":
		b.WriteString(" (Cost Explorer has no data for the account: enable it in the Billing and Cost Management console; data appears within a day)")
	case reason == provider.ReasonPermission:
		fmt.Fprintf(&b, " (the identity needs the IAM permission %s)", iamAction(op))
	case reason == provider.ReasonAuth:
		b.WriteString(" (AWS rejected the credentials: check the access key and its secret, the session token's expiry and the system clock)")
	case reason == provider.ReasonBadRequest:
		b.WriteString(" (AWS rejected the query the exporter built; please report this)")
	}
	if retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", retryAfter)
	}
	return p.fail(reason, retryAfter, errors.New(b.String()))
}

// denied reports whether err is AWS refusing the call for lack of
// permission (or of an organization), as opposed to failing it.
func denied(err error) bool {
	return provider.ReasonOf(err) == provider.ReasonPermission
}

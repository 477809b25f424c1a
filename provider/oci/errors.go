package oci

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// PolicyStatement is the IAM policy statement that lets a group of users
// read the tenancy's usage reports, carbon emissions and cost included;
// the exporter needs nothing else.
const PolicyStatement = "Allow group <group> to read usage-report in tenancy"

// policyStatement returns the statement for the configured principal:
// instance principals are granted through a dynamic group, OKE workloads
// by their service account.
func (p *Provider) policyStatement() string {
	switch p.opts.Auth {
	case AuthInstancePrincipal:
		return "Allow dynamic-group <dynamic-group> to read usage-report in tenancy"
	case AuthWorkloadIdentity:
		return "Allow any-user to read usage-report in tenancy where all {request.principal.type = 'workload', " +
			"request.principal.namespace = '<namespace>', request.principal.service_account = '<service-account>', " +
			"request.principal.cluster_id = '<cluster-ocid>'}"
	}
	return PolicyStatement
}

// fail builds the *provider.Error every failure path returns, scrubbed of
// the passphrase.
func (p *Provider) fail(reason provider.Reason, retryAfter time.Duration, err error) *provider.Error {
	return &provider.Error{Reason: reason, RetryAfter: retryAfter, Err: httpx.Redact(err, p.secrets...)}
}

// flatError puts the SDK's multi-line messages on one line, for logs, and
// bounds them: the SDK appends paragraphs of advice.
type flatError struct{ err error }

func (e flatError) Error() string {
	return provider.Truncate(strings.Join(strings.Fields(e.err.Error()), " "), 2*maxMessageBytes)
}
func (e flatError) Unwrap() error { return e.err }

// credentialsError classifies a failure to build the SDK's client, before
// any Usage API request: the principal's configuration is unusable, or
// its token could not be had, which can fail on the network too.
func (p *Provider) credentialsError(ctx context.Context, err error) *provider.Error {
	reason := provider.ReasonAuth
	if r, _, ok := httpx.TransportFailure(ctx, "oci", err); ok {
		reason = r
	}
	var hint string
	switch p.opts.Auth {
	case AuthInstancePrincipal:
		hint = "instance principals work on OCI compute instances only, with the instance metadata service at 169.254.169.254 reachable"
	case AuthWorkloadIdentity:
		hint = "workload identity works in OKE pods only, with OCI_RESOURCE_PRINCIPAL_VERSION=2.2 and OCI_RESOURCE_PRINCIPAL_REGION set"
	default:
		hint = fmt.Sprintf("check %s, its profile [%s] (user, fingerprint, tenancy, region, key_file) and the key's passphrase",
			p.opts.ConfigFile, p.opts.Profile)
	}
	return p.fail(reason, 0, fmt.Errorf("oci: no usable OCI credentials (auth %s: %s): %w", p.opts.Auth, hint, flatError{err}))
}

// classify turns the error of a Usage API request of operation op into a
// *provider.Error whose message names the operation, what OCI said, and
// what the user can do about it. resp is the last answer, if any.
func (p *Provider) classify(ctx context.Context, op string, err error, resp *http.Response) *provider.Error {
	what := "oci: " + op
	// The SDK turns an error answer whose body it cannot read into a
	// ServiceError of its own; a refresh over its budget says so instead.
	if over := httpx.Overrun(ctx); over != nil {
		err = over
	}
	if reason, wrapped, ok := httpx.TransportFailure(ctx, what, err); ok {
		return p.fail(reason, provider.RetryAfterOf(wrapped), wrapped)
	}
	var se common.ServiceError
	if errors.As(err, &se) {
		return p.serviceFailure(op, se, resp)
	}
	_, syntax := errors.AsType[*json.SyntaxError](err)
	_, typ := errors.AsType[*json.UnmarshalTypeError](err)
	if syntax || typ {
		return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("%s: malformed response: %w", what, err))
	}
	return p.fail(provider.ReasonOther, 0, fmt.Errorf("%s: %w", what, flatError{err}))
}

// serviceFailure classifies an error answer by its code first, the status
// second: OCI answers a missing permission with 404 NotAuthorizedOrNotFound,
// which only the code tells from an endpoint that does not exist.
func (p *Provider) serviceFailure(op string, se common.ServiceError, resp *http.Response) *provider.Error {
	status, code := se.GetHTTPStatusCode(), se.GetCode()
	var reason provider.Reason
	switch code {
	case "NotAuthenticated":
		reason = provider.ReasonAuth
	case "NotAuthorizedOrNotFound", "NotAuthorized", "NotAllowed", "Forbidden":
		reason = provider.ReasonPermission
	case "TooManyRequests":
		reason = provider.ReasonThrottled
	case "InvalidParameter", "MissingParameter", "LimitExceeded":
		reason = provider.ReasonBadRequest
	default:
		reason = httpx.ReasonForStatus(status)
	}
	var retryAfter time.Duration
	if resp != nil && (reason == provider.ReasonThrottled || status == http.StatusServiceUnavailable) {
		retryAfter, _ = httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}

	var b strings.Builder
	fmt.Fprintf(&b, "oci: %s: %d %s", op, status, cmp.Or(code, http.StatusText(status)))
	// Scrub before cutting: a secret echoed across the cut would otherwise
	// leave its prefix for the final scrub to miss.
	if msg := httpx.Scrub(strings.Join(strings.Fields(se.GetMessage()), " "), p.secrets...); msg != "" {
		b.WriteString(": ")
		b.WriteString(provider.Truncate(msg, maxMessageBytes))
	}
	if id := se.GetOpcRequestID(); id != "" {
		fmt.Fprintf(&b, " (opc-request-id %s)", provider.Truncate(id, 128))
	}
	switch reason {
	case provider.ReasonPermission:
		fmt.Fprintf(&b, " (the principal may not read the tenancy's usage reports: grant it the IAM policy statement %q, "+
			"and check that tenancy_id, if set, names the principal's own tenancy)", p.policyStatement())
		switch op {
		case opCost:
			b.WriteString(" (the cost of provisional months needs the same statement as the emissions; or set provisional: false)")
		case opTags:
			b.WriteString(" (the cost by tag of allocate_by needs the same statement as the emissions; or remove allocate_by)")
		}
	case provider.ReasonAuth:
		switch p.opts.Auth {
		case AuthConfigFile:
			b.WriteString(" (OCI did not accept the request signature: check the profile's user, tenancy and fingerprint, " +
				"that the key's public half is uploaded to that user, and the system clock)")
		default:
			b.WriteString(" (OCI did not accept the principal's token: check the principal's dynamic group or workload identity setup and the system clock)")
		}
	case provider.ReasonBadRequest:
		if op == opTags {
			// The one part of the query the user writes.
			b.WriteString(" (check that allocate_by names a tag of the tenancy: Namespace.key for a defined tag, key for a free-form one)")
			break
		}
		b.WriteString(" (OCI rejected the query the exporter built; please report this)")
	case provider.ReasonNotFound:
		b.WriteString(" (check the endpoint: the Usage API answers at https://usageapi.<region>.oci.oraclecloud.com in the commercial realm)")
	}
	if retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", retryAfter)
	}
	return p.fail(reason, retryAfter, errors.New(b.String()))
}

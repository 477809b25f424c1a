package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// fail builds the *provider.Error every failure path returns, scrubbed
// of the client secret and certificate password.
func (p *Provider) fail(reason provider.Reason, retryAfter time.Duration, err error) *provider.Error {
	return &provider.Error{Reason: reason, RetryAfter: retryAfter, Err: httpx.Redact(err, p.secrets...)}
}

// tokenError marks a failure of the credential, wherever in the pipeline
// it surfaces: azcore's bearer policy wraps credential errors in a private
// type, and the default credential chain's "no credential available"
// errors have no exported type at all.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// taggedCredential tags its credential's errors as tokenError.
type taggedCredential struct{ cred azcore.TokenCredential }

func (c taggedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.cred.GetToken(ctx, opts)
	if err != nil {
		return tok, &tokenError{err: err}
	}
	return tok, nil
}

// classify turns the error of one SDK call into a *provider.Error. raw is
// the response the call captured (runtime.WithCaptureResponse), if any: a
// success status with an error means the body did not decode. Failures
// that are not an answer of the API (the deadline, a body cut short or too
// large, the refresh's budget, a certificate, the network) are classified
// as every cloud's are (httpx.TransportFailure); ARM's and Entra's answers
// here.
func (p *Provider) classify(ctx context.Context, what string, err error, raw *http.Response) *provider.Error {
	return p.classifyFor(ctx, statusHint, what, err, raw)
}

// classifyCost is classify for Cost Management's answers.
func (p *Provider) classifyCost(ctx context.Context, what string, err error, raw *http.Response) *provider.Error {
	return p.classifyFor(ctx, costStatusHint, what, err, raw)
}

// classifyFor is classify for an API whose error answers hint gives hints
// for (statusHint, costStatusHint).
func (p *Provider) classifyFor(ctx context.Context, hint func(int) string, what string, err error, raw *http.Response) *provider.Error {
	if te, ok := errors.AsType[*tokenError](err); ok {
		return p.tokenFailure(ctx, te.err)
	}
	if reason, wrapped, ok := httpx.TransportFailure(ctx, "azure: "+what, err); ok {
		return p.fail(reason, provider.RetryAfterOf(wrapped), wrapped)
	}
	if be, ok := errors.AsType[*requestBudgetError](err); ok {
		return p.fail(provider.ReasonOther, 0, fmt.Errorf("azure: %s: %w", what, be))
	}
	if re, ok := errors.AsType[*azcore.ResponseError](err); ok {
		return p.statusFailure(hint, what, re)
	}
	if raw != nil && raw.StatusCode >= 200 && raw.StatusCode < 300 {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, err))
	}
	return p.fail(provider.ReasonOther, 0, fmt.Errorf("azure: %s: %s", what, p.oneLine(err.Error())))
}

// statusFailure classifies an ARM error answer. The message names the
// request, the status and ARM's own explanation, plus hint's hint for the
// statuses a user can fix.
func (p *Provider) statusFailure(hint func(int) string, what string, re *azcore.ResponseError) *provider.Error {
	code := re.StatusCode
	reason := httpx.ReasonForStatus(code)
	var ra time.Duration
	if re.RawResponse != nil && (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) {
		ra = retryAfter(re.RawResponse.Header, time.Now())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "azure: %s: %d %s", what, code, http.StatusText(code))
	errCode, msg := p.armError(re.RawResponse)
	if errCode == "" {
		errCode = re.ErrorCode
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if errCode != "" {
		fmt.Fprintf(&b, " [%s]", errCode)
	}
	if h := hint(code); h != "" {
		fmt.Fprintf(&b, " (%s)", h)
	}
	if ra > 0 {
		fmt.Fprintf(&b, " (retry after %s)", ra)
	}
	return p.fail(reason, ra, errors.New(b.String()))
}

func statusHint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "Azure Resource Manager rejected the token twice; check the tenant id and that the resource manager audience belongs to the configured cloud"
	case http.StatusForbidden:
		return "the identity needs the Carbon Optimization Reader role (or Reader) at subscription scope, or on a management group above the subscriptions"
	case http.StatusNotFound:
		return "the Microsoft.Carbon API is not available at this resource manager endpoint; check the cloud and endpoint settings"
	case http.StatusTooManyRequests:
		return "Azure Resource Manager throttled the requests"
	}
	return ""
}

// tokenFailure classifies a failure to get a token. MSAL keeps only the
// text of a failure that came with no answer, so the fetch's own records
// say what it was: the refresh's budget (httpx.Overrun) or an untrusted
// certificate (certFailure); the rest of such failures are classified as
// every cloud's are. Entra's answers are entraFailure's.
func (p *Provider) tokenFailure(ctx context.Context, err error) *provider.Error {
	var raw *http.Response
	if ae, ok := errors.AsType[*azidentity.AuthenticationFailedError](err); ok {
		raw = ae.RawResponse
	}
	if raw == nil {
		if over := httpx.Overrun(ctx); over != nil {
			err = over
		} else if ce := certFailure(ctx); ce != nil && httpx.CertificateFailure(err) == nil {
			err = ce
		}
	}
	if reason, wrapped, ok := httpx.TransportFailure(ctx, "azure: get token", err); ok {
		return p.fail(reason, provider.RetryAfterOf(wrapped), wrapped)
	}
	if raw == nil {
		return p.fail(provider.ReasonAuth, 0, fmt.Errorf("azure: get token: %s (%s)", p.oneLine(err.Error()), p.credentialHint()))
	}
	return p.entraFailure(raw)
}

// entraFailure classifies Entra's answer to a token request. Its answers
// to a bad tenant, client id, secret or certificate are 400 or 401; all of
// them (and a failed OpenID discovery) are the credential's fault, so only
// throttling and server errors keep their own reason.
func (p *Provider) entraFailure(raw *http.Response) *provider.Error {
	code := raw.StatusCode
	reason := provider.ReasonAuth
	var ra time.Duration
	switch {
	case code == http.StatusTooManyRequests:
		reason = provider.ReasonThrottled
		ra = retryAfter(raw.Header, time.Now())
	case code >= 500:
		reason = provider.ReasonServer
		ra = retryAfter(raw.Header, time.Now())
	}
	var b strings.Builder
	b.WriteString("azure: get token")
	if raw.Request != nil && raw.Request.URL != nil {
		fmt.Fprintf(&b, " (%s %s%s)", raw.Request.Method, raw.Request.URL.Host, raw.Request.URL.Path)
	}
	fmt.Fprintf(&b, ": %d %s", code, http.StatusText(code))
	for _, s := range p.entraError(raw) {
		if s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	if reason == provider.ReasonAuth {
		fmt.Fprintf(&b, " (%s)", p.credentialHint())
	}
	if ra > 0 {
		fmt.Fprintf(&b, " (retry after %s)", ra)
	}
	return p.fail(reason, ra, errors.New(b.String()))
}

func (p *Provider) credentialHint() string {
	switch p.opts.Credential {
	case CredentialClientSecret:
		return "check the tenant id, the client id and the client secret (its value, not its id) and whether it has expired"
	case CredentialClientCertificate:
		return "check the tenant id, the client id and that the certificate is registered on the application and not expired"
	}
	return "no credential of the default chain (environment, workload identity, managed identity, Azure CLI) could get a token; configure one or use client_secret or client_certificate"
}

// armError extracts ARM's {"error":{"code","message"}} from an error
// answer. azcore has read the body already and keeps it re-readable.
func (p *Provider) armError(resp *http.Response) (code, msg string) {
	if resp == nil {
		return "", ""
	}
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return "", ""
	}
	var v struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == nil {
		return "", ""
	}
	return p.oneLine(v.Error.Code), p.oneLine(v.Error.Message)
}

// entraError extracts Entra's {"error","error_description"}. The
// description's first line carries the AADSTS code and message; the rest is
// trace and correlation ids.
func (p *Provider) entraError(resp *http.Response) [2]string {
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return [2]string{}
	}
	var v struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &v) != nil {
		return [2]string{}
	}
	desc, _, _ := strings.Cut(strings.ReplaceAll(v.Description, "\r\n", "\n"), "\n")
	return [2]string{p.oneLine(v.Error), p.oneLine(desc)}
}

// oneLine collapses a multi-line message (azidentity's errors span many
// lines) and bounds its length. Secrets are scrubbed before the cut, or a
// secret echoed across it would leave a prefix the final scrub misses.
func (p *Provider) oneLine(s string) string {
	return provider.Truncate(strings.Join(strings.Fields(httpx.Scrub(s, p.secrets...)), " "), maxMessageBytes)
}

// maxMessageBytes bounds the server-supplied text a message or a denial
// reason repeats.
const maxMessageBytes = 512

// retryAfter reads the delay an answer asks for, as azcore does: the
// millisecond headers, which Azure services send for sub-second delays,
// take precedence over Retry-After; Cost Management's own throttling
// headers lengthen it (see costRetryAfterPolicy).
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if ms, err := strconv.ParseUint(strings.TrimSpace(h.Get(name)), 10, 64); err == nil {
			return time.Duration(min(ms, uint64(httpx.MaxRetryAfter/time.Millisecond))) * time.Millisecond
		}
	}
	d, _ := httpx.ParseRetryAfter(h.Get("Retry-After"), now)
	return max(d, costManagementRetryAfter(h))
}

func malformed(what string, err error) error {
	return fmt.Errorf("azure: %s: malformed response: %w", what, err)
}

package azure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// Endpoint names reported to Options.Observe.
const (
	EndpointToken         = "token"
	EndpointOpenID        = "openid_configuration"
	EndpointReports       = "carbon_emission_reports"
	EndpointDateRange     = "carbon_date_range"
	EndpointSubscriptions = "subscriptions"
	EndpointCostQuery     = "cost_management_query"
	// EndpointCostTagQuery is a Cost Management query of TagCosts:
	// the operation of EndpointCostQuery, grouped by a tag.
	EndpointCostTagQuery = "cost_management_tag_query"
	EndpointOther        = "other"
)

// Request paths of the Microsoft.Carbon operations, as the SDK builds them.
const (
	reportsPath   = "/providers/Microsoft.Carbon/carbonEmissionReports"
	dateRangePath = "/providers/Microsoft.Carbon/queryCarbonEmissionDataAvailableDateRange"
	// costQueryPath ends the path of a Cost Management query, whatever
	// its scope.
	costQueryPath = "/providers/Microsoft.CostManagement/query"
)

// instrumentedClient derives the client every request goes through. It
// becomes azcore's Transport, which sits below the retry policy, so every
// attempt is observed; and azcore reads bodies whole (success and error
// alike), so the bound must sit below it too.
//
// It fails fast (httpx.FailFast): azcore's retry policy gives up at once
// on an untrusted certificate and on a body cut short, which no retry
// cures, and certRecorder notes certificate failures for the fetch, as
// azidentity reports the token request's failure as text only.
func instrumentedClient(base *http.Client, observe provider.RequestObserver) *http.Client {
	c := httpx.NewClient(base, httpx.ClientOptions{
		Timeout:          defaultHTTPTimeout,
		TLS:              &tls.Config{MinVersion: tls.VersionTLS12},
		Observe:          observe,
		Endpoint:         endpointName,
		MaxResponseBytes: MaxResponseBytes,
		FailFast:         true,
	})
	c.Transport = certRecorder{base: c.Transport}
	return c
}

// certKey carries a fetch's *certRecord in the request context, from Fetch
// to certRecorder.
type certKey struct{}

// certRecord holds the first certificate failure of a fetch.
type certRecord struct {
	err atomic.Pointer[httpx.CertificateError]
}

// withCertRecord returns ctx with a fresh certRecord.
func withCertRecord(ctx context.Context) context.Context {
	return context.WithValue(ctx, certKey{}, &certRecord{})
}

// certFailure returns the certificate failure recorded for ctx's fetch, if
// any.
func certFailure(ctx context.Context) *httpx.CertificateError {
	if r, ok := ctx.Value(certKey{}).(*certRecord); ok {
		return r.err.Load()
	}
	return nil
}

// certRecorder records certificate failures in the fetch's certRecord.
// azidentity (through MSAL) turns a failed token or discovery request into
// an AuthenticationFailedError that keeps only the failure's text, so the
// record is how classify tells an untrusted authority from a rejected
// credential.
type certRecorder struct{ base http.RoundTripper }

func (t certRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		if ce, ok := errors.AsType[*httpx.CertificateError](err); ok {
			if r, ok := req.Context().Value(certKey{}).(*certRecord); ok {
				r.err.CompareAndSwap(nil, ce)
			}
		}
	}
	return resp, err
}

// endpointName maps a request to the fixed endpoint label set. Matching on
// path suffixes keeps it right behind path-prefixed proxies and for every
// authority (Entra v1 and v2 token paths, managed identity endpoints).
func endpointName(req *http.Request) string {
	p := strings.ToLower(strings.TrimRight(req.URL.Path, "/"))
	switch {
	case strings.HasSuffix(p, "/oauth2/v2.0/token"), strings.HasSuffix(p, "/oauth2/token"):
		return EndpointToken
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		return EndpointOpenID
	case strings.HasSuffix(p, strings.ToLower(reportsPath)):
		return EndpointReports
	case strings.HasSuffix(p, strings.ToLower(dateRangePath)):
		return EndpointDateRange
	case strings.HasSuffix(p, "/subscriptions"):
		return EndpointSubscriptions
	case strings.HasSuffix(p, strings.ToLower(costQueryPath)) && isTagQuery(req):
		return EndpointCostTagQuery
	case strings.HasSuffix(p, strings.ToLower(costQueryPath)):
		return EndpointCostQuery
	}
	return EndpointOther
}

// requestBudgetKey carries a fetch's *requestBudget in the request
// context, from Fetch to requestBudgetPolicy.
type requestBudgetKey struct{}

// requestBudget counts the ARM requests of one fetch against
// Options.RequestBudget.
type requestBudget struct {
	limit int64
	used  atomic.Int64
}

// requestBudgetError is returned when a fetch has used its request budget.
type requestBudgetError struct{ limit int64 }

func (e *requestBudgetError) Error() string {
	return fmt.Sprintf("request budget of %d ARM requests per refresh exhausted; raise the request budget or report on fewer subscriptions or months", e.limit)
}

// NonRetriable tells azcore's retry policy not to retry: it matches the
// SDK's errorinfo.NonRetriable interface, which lives in an internal
// package.
func (*requestBudgetError) NonRetriable() {}

// requestBudgetPolicy charges every ARM attempt to the fetch's request
// budget. It is a per-retry policy, so retries are charged too: the budget
// bounds the requests ARM sees, which is what throttling counts.
type requestBudgetPolicy struct{}

func (requestBudgetPolicy) Do(req *policy.Request) (*http.Response, error) {
	if b, ok := req.Raw().Context().Value(requestBudgetKey{}).(*requestBudget); ok && b.used.Add(1) > b.limit {
		return nil, &requestBudgetError{limit: b.limit}
	}
	return req.Next()
}

// triesKey carries the count of one call's tries in its context, from
// triesPolicy to shouldRetry.
type triesKey struct{}

// triesPolicy gives every call of a pipeline (ARM's and the credential's)
// a count of its tries. It is a per-call policy, so it sits above azcore's
// retry policy and the count spans the call's retries.
type triesPolicy struct{}

func (triesPolicy) Do(req *policy.Request) (*http.Response, error) {
	return req.WithContext(context.WithValue(req.Raw().Context(), triesKey{}, new(atomic.Int32))).Next()
}

// retriedStatus reports whether azcore retries an answer of status code
// by default.
func retriedStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// shouldRetry retries what azcore retries by default (the errors it is
// not told are final, and retriedStatus), but never waits past the call's
// deadline: azcore would sleep into it and report a timeout, where the
// answer in hand says what went wrong (a server error, or throttling and
// its Retry-After, which the refresher's backoff then honours).
func (p *Provider) shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	if !retriedStatus(resp.StatusCode) {
		return false
	}
	if resp.Request == nil {
		return true
	}
	ctx := resp.Request.Context()
	try := int32(1)
	if n, ok := ctx.Value(triesKey{}).(*atomic.Int32); ok {
		try = n.Add(1)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return true
	}
	wait := retryAfter(resp.Header, time.Now())
	if wait <= 0 {
		wait = p.maxBackoff(try)
	}
	return time.Until(deadline) > wait
}

// maxBackoff is the longest azcore waits after try when the server asks
// for no delay: (2^try - 1) times the retry delay, plus its jitter of at
// most 30%, up to the longest retry delay.
func (p *Provider) maxBackoff(try int32) time.Duration {
	d := (math.Exp2(float64(try)) - 1) * float64(p.opts.RetryDelay) * 1.3
	if d >= float64(p.opts.MaxRetryDelay) {
		return p.opts.MaxRetryDelay
	}
	return time.Duration(d)
}

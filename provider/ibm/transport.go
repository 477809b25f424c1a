package ibm

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// instrumentedClient derives the client every request goes through. It
// sits below go-sdk-core's retry layer, so that every attempt is observed
// and waits out the source's Retry-After pause (pages fetched in parallel
// included), and below go-sdk-core itself, so that the error bodies it
// reads whole are bounded too.
func instrumentedClient(base *http.Client, observe provider.RequestObserver) *http.Client {
	return httpx.NewClient(base, httpx.ClientOptions{
		Timeout:          defaultHTTPTimeout,
		Observe:          observe,
		Endpoint:         endpointName,
		MaxResponseBytes: MaxResponseBytes,
		FailFast:         true,
	})
}

// defaultClient is the base client when the caller gives none: what
// httpx.NewClient would build, except that it keeps as many idle
// connections to a host as pages are fetched at once. With the standard
// two, every round of parallel pages would close all but two connections
// and open (TLS-handshake) the rest again.
func defaultClient(pageConcurrency int) *http.Client {
	c := &http.Client{Timeout: defaultHTTPTimeout}
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.Proxy = http.ProxyFromEnvironment
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, pageConcurrency, 2)
		c.Transport = t
	}
	return c
}

// endpointName maps a request to the fixed endpoint label set; matching on
// the path suffix keeps it right behind path-prefixed proxies.
func endpointName(req *http.Request) string {
	switch {
	case strings.HasSuffix(req.URL.Path, iamPath):
		return "iam_token"
	case strings.HasSuffix(req.URL.Path, carbonPath):
		return "carbon_emissions"
	case accountSummaryRoute.MatchString(req.URL.Path):
		return "usage_account_summary"
	case strings.HasSuffix(req.URL.Path, enterpriseUsagePath):
		return "enterprise_usage_reports"
	}
	return "other"
}

// retryingClient puts go-sdk-core's retry layer (hashicorp retryablehttp)
// above base. It is what BaseService.EnableRetries builds, with two
// changes EnableRetries cannot express:
//   - core.IBMCloudSDKBackoffPolicy returns a seconds-valued Retry-After
//     uncapped, so "Retry-After: 3600" would block a refresh for an hour
//     (or until its deadline, turning a throttle into a timeout). We cap
//     waits at MaxRetryInterval and do not retry at all when the server
//     asks for longer, so the caller sees ReasonThrottled with RetryAfter.
//   - retryablehttp's minimum wait is fixed at 1s; we lower it to
//     MaxRetryInterval when that is shorter, so tiny intervals stay tiny.
//
// What is retried is go-sdk-core's policy: network errors (except TLS,
// scheme, header and redirect errors), 429, and 5xx except 501; plus,
// never, the failures httpx.FailFast marks final (certificate errors,
// which go-sdk-core no longer recognises once wrapped).
func (p *Provider) retryingClient(base *http.Client) *http.Client {
	rc := core.NewRetryableClientWithHTTPClient(base)
	rc.RetryMax = p.opts.MaxRetries
	rc.RetryWaitMax = p.maxRetry
	rc.RetryWaitMin = min(rc.RetryWaitMin, p.maxRetry)
	rc.CheckRetry = p.checkRetry
	rc.Backoff = backoff
	return rc.StandardClient()
}

func (p *Provider) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err != nil && ctx.Err() == nil && (httpx.IsCertificateError(err) || errors.Is(err, httpx.ErrTruncatedBody)) {
		return false, nil
	}
	retry, cerr := core.IBMCloudSDKRetryPolicy(ctx, resp, err)
	if retry && resp != nil {
		if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && d > p.maxRetry {
			return false, nil
		}
	}
	return retry, cerr
}

// backoff honours Retry-After (seconds or HTTP date) up to maxWait, and is
// otherwise exponential from minWait.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return min(d, maxWait)
		}
	}
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// tokenKey carries the bearer token of one request in its context, from
// Provider.token (which is context-aware) to preparedToken (which
// go-sdk-core calls without a context).
type tokenKey struct{}

// preparedToken is the BaseService authenticator. go-sdk-core's
// IamAuthenticator fetches tokens without a context, so a hung IAM endpoint
// would outlive the caller's deadline; Provider.token fetches the token
// under the caller's context first (see iam.go) and hands it over here.
type preparedToken struct{}

func (preparedToken) AuthenticationType() string { return core.AUTHTYPE_IAM }
func (preparedToken) Validate() error            { return nil }

func (preparedToken) Authenticate(req *http.Request) error {
	tok, _ := req.Context().Value(tokenKey{}).(string)
	if tok == "" {
		return errors.New("ibm: internal error: request without a prepared IAM token")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

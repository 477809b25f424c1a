package scaleway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// The client the SDK is given, from the SDK down:
//
//	sdkDoer          records the final answer for classification, and
//	                 decodes successful answers (see decodeAnswer)
//	retryablehttp    attempts, backoff, Retry-After when there is one
//	httpx.NewClient: the source's pause (held while one request waits out
//	                 a 429), observation of each attempt, fail-fast
//	                 truncation and certificate errors, bounded bodies,
//	                 timeout
//
// The SDK is given a Doer rather than an *http.Client on purpose: with an
// *http.Client it would wrap the transport in its request dumper when
// SCW_DEBUG is set, and dump responses in full.

// retrying builds the Doer the SDK sends every request through.
func (p *Provider) retrying(base *http.Client) sdkDoer {
	rc := &retryablehttp.Client{
		HTTPClient:   base,
		Logger:       retryLogger{log: p.log, secrets: p.secrets},
		RetryWaitMin: p.opts.MinBackoff,
		RetryWaitMax: p.opts.MaxBackoff,
		RetryMax:     p.opts.MaxAttempts - 1,
		CheckRetry:   p.checkRetry,
		Backoff: func(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
			d := backoff(minWait, maxWait, attempt, resp)
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				// Scaleway's limit is per key: the other months in flight
				// would only earn 429s of their own.
				p.pause.Extend(d)
			}
			return d
		},
		// The last answer goes back to the SDK as it came, so that a 429
		// or 5xx after the last attempt is classified by its status
		// rather than by the library's "giving up" message.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, attempt int) {
			if x := exchangeOf(req.Context()); x != nil {
				x.attempts = attempt + 1
			}
		},
	}
	return sdkDoer{rc: rc}
}

// checkRetry retries what retryablehttp's default policy retries (429,
// 5xx but 501, connection errors but TLS, scheme, header and redirect
// errors), except:
//   - the failures httpx.FailFast marks final: an untrusted certificate
//     (which the default policy no longer recognises once wrapped) and a
//     body cut short, which a server that did it once tends to do again;
//   - a Retry-After longer than MaxBackoff, which is left to the
//     refresher's backoff rather than blocking the refresh.
func (p *Provider) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil && (httpx.IsCertificateError(err) || errors.Is(err, httpx.ErrTruncatedBody) ||
		errors.Is(err, httpx.ErrResponseTooLarge)) {
		return false, nil
	}
	retry, cerr := retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	if retry && resp != nil {
		if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && d > p.opts.MaxBackoff {
			return false, nil
		}
	}
	return retry, cerr
}

// backoff waits what the server asks (Retry-After, capped at maxWait)
// when it asks, and otherwise an exponential delay from minWait with
// "equal jitter" (half fixed, half random), which is what Scaleway's 429s
// without Retry-After need: several exporters throttled at once must not
// come back in step.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return min(d, maxWait)
		}
	}
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sdkDoer is the SDK's HTTP client.
type sdkDoer struct{ rc *retryablehttp.Client }

// Do implements the SDK's httpClient interface.
func (d sdkDoer) Do(req *http.Request) (*http.Response, error) {
	rr, err := retryablehttp.FromRequest(req)
	if err != nil {
		return nil, err
	}
	resp, err := d.rc.Do(rr)
	x := exchangeOf(req.Context())
	if x == nil || resp == nil {
		return resp, err
	}
	x.status, x.header = resp.StatusCode, resp.Header.Clone()
	switch {
	case err != nil:
		return resp, err
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// The SDK reads an error body whole, then decodes it. Scaleway's
		// are a few hundred bytes; one cut at maxErrorBytes does not
		// decode, and the answer is classified by its status.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, maxErrorBytes), resp.Body}
		return resp, nil
	case x.into == nil:
		return resp, nil
	}
	return decodeAnswer(resp, x.into)
}

// maxErrorBytes bounds what the SDK reads of an error answer.
const maxErrorBytes = 64 << 10

// decodeAnswer decodes a successful answer into v, the SDK's own typed
// struct, and hands the SDK the answer without its body, which the SDK
// then does not decode. The SDK decodes through a json.Decoder, whose
// buffer holds the whole answer and grows by doubling: an answer cut at
// MaxResponseBytes cost three times that in allocations.
func decodeAnswer(resp *http.Response, v any) (*http.Response, error) {
	body, err := httpx.ReadBody(resp.Body, resp.ContentLength, MaxResponseBytes)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, err
	}
	resp.Body, resp.ContentLength = http.NoBody, 0
	return resp, nil
}

// exchange is what the transport saw of one API call: the SDK's errors
// keep neither headers nor, when an error body does not parse (an empty
// 429 labelled JSON), the status.
type exchange struct {
	status   int
	header   http.Header
	attempts int
	// into, when set, receives the decoded body of a successful answer
	// in place of the SDK's result (see decodeAnswer).
	into any
}

type exchangeKey struct{}

// withExchange returns a context whose requests record into x. One
// exchange serves one call, made by one goroutine.
func withExchange(ctx context.Context, x *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

func exchangeOf(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// retryLogger puts retryablehttp's messages in the source's log at debug
// level: a failed attempt that a retry cures is no news, and the
// refresher logs the failures that remain. Errors are scrubbed of the
// secret key, which no message should hold in the first place.
type retryLogger struct {
	log     *slog.Logger
	secrets []string
}

func (l retryLogger) Error(msg string, kv ...any) { l.debug(msg, kv) }
func (l retryLogger) Info(msg string, kv ...any)  { l.debug(msg, kv) }
func (l retryLogger) Debug(msg string, kv ...any) { l.debug(msg, kv) }
func (l retryLogger) Warn(msg string, kv ...any)  { l.debug(msg, kv) }

func (l retryLogger) debug(msg string, kv []any) {
	for i, v := range kv {
		switch v := v.(type) {
		case error:
			kv[i] = httpx.Scrub(v.Error(), l.secrets...)
		case string:
			kv[i] = httpx.Scrub(v, l.secrets...)
		}
	}
	l.log.Debug("Scaleway HTTP client: "+msg, kv...)
}

package ibm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// IAM tokens.
//
// go-sdk-core's IamAuthenticator.GetToken caches a token per
// authenticator, but fetches a new one under a process-wide lock and
// without a context. One source whose IAM endpoint accepts connections and
// never answers would hold that lock until its HTTP client gave up (never,
// for a client without a timeout), and every other IBM source of the
// process, indeed every go-sdk-core user, would wait behind it. A
// goroutine around GetToken bounds the caller's wait but not the lock, and
// leaves one goroutine per refresh blocked behind it.
//
// So this package never calls GetToken. Each Provider keeps its own token
// and fetches new ones with IamAuthenticator.RequestToken, which takes no
// lock, through an HTTP client bound to the fetch's context and to
// Options.IAMTimeout: a hung IAM endpoint costs its own source at most
// that long per refresh, and nothing else. A source's token requests are
// serialised by a one-slot semaphore whose wait obeys the context, so the
// parallel pages of one fetch share one token request.

// DefaultIAMTimeout is Options.IAMTimeout when unset. IAM answers in well
// under a second; 30 seconds is go-sdk-core's own IAM client timeout.
const DefaultIAMTimeout = 30 * time.Second

// tokenExpiryWindow: a token this close to its expiry is not used, as in
// go-sdk-core, because some IBM services reject tokens about to expire.
const tokenExpiryWindow = 10 * time.Second

// tokenRetryDelay is how long a token that is due for refresh but still
// valid keeps being used after a failed refresh, before the next attempt.
const tokenRetryDelay = time.Minute

// iamToken is a cached access token. The zero value holds none.
type iamToken struct {
	access string
	// expires is when IBM stops accepting the token; refresh is when a
	// new one is fetched (80% of its lifetime, as go-sdk-core does).
	expires, refresh time.Time
}

// usable reports whether t may still be sent at now.
func (t iamToken) usable(now time.Time) bool {
	return t.access != "" && now.Before(t.expires.Add(-tokenExpiryWindow))
}

// fresh reports whether t is usable and not yet due for refresh.
func (t iamToken) fresh(now time.Time) bool { return t.usable(now) && now.Before(t.refresh) }

func (p *Provider) cachedToken() iamToken {
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	return p.tok
}

// token returns a bearer token: the cached one while it is fresh, else a
// new one. While a token is due for refresh but still valid, one request
// refreshes it and the others keep using it; if the refresh fails, the
// old token serves until it expires.
func (p *Provider) token(ctx context.Context) (string, error) {
	tok := p.cachedToken()
	now := time.Now()
	if tok.fresh(now) {
		return tok.access, nil
	}
	if tok.usable(now) {
		select {
		case p.iamSem <- struct{}{}:
		default:
			return tok.access, nil // another request is refreshing it
		}
	} else {
		select {
		case p.iamSem <- struct{}{}:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	defer func() { <-p.iamSem }()

	// Another request may have fetched a token while this one waited.
	if cur := p.cachedToken(); cur.fresh(time.Now()) {
		return cur.access, nil
	}
	fresh, err := p.requestToken(ctx)
	if err != nil {
		p.tokMu.Lock()
		defer p.tokMu.Unlock()
		if p.tok.usable(time.Now()) {
			p.tok.refresh = time.Now().Add(tokenRetryDelay)
			p.log.DebugContext(ctx, "ibm IAM token refresh failed; using the current token until it expires",
				"err", httpx.Scrub(err.Error(), p.opts.APIKey))
			return p.tok.access, nil
		}
		return "", err
	}
	p.tokMu.Lock()
	p.tok = fresh
	p.tokMu.Unlock()
	return fresh.access, nil
}

// dropToken forgets tok, a token IBM rejected, so that the next request
// fetches a new one. Comparing with the cached token keeps concurrent
// requests from discarding each other's fresh tokens.
func (p *Provider) dropToken(tok string) {
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	if p.tok.access == tok {
		p.tok = iamToken{}
		p.dropped = tok
	}
}

// secrets are what no message may show: the API key and the bearer
// tokens the source sends, which a server may echo in an error answer.
func (p *Provider) secrets() []string {
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	return []string{p.opts.APIKey, p.tok.access, p.dropped}
}

// iamTimeoutError is a token request that IAM did not answer in time,
// while the fetch itself had time left.
type iamTimeoutError struct{ timeout time.Duration }

func (e *iamTimeoutError) Error() string {
	return fmt.Sprintf("IAM did not answer within %s", e.timeout)
}

// Unwrap makes the timeout match context.DeadlineExceeded.
func (e *iamTimeoutError) Unwrap() error { return context.DeadlineExceeded }

// errNoAccessToken is a 2xx IAM answer without a token: an empty or
// truncated body (go-sdk-core ignores decoding errors of the answer).
var errNoAccessToken = errors.New("IAM answered without an access token")

// requestToken fetches a new token, bounded by ctx and by IAMTimeout (or
// the HTTP client's own timeout, when shorter).
func (p *Provider) requestToken(ctx context.Context) (iamToken, error) {
	timeout := p.opts.IAMTimeout
	if t := p.iamHTTP.Timeout; t > 0 && t < timeout {
		timeout = t
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := *p.iamHTTP
	client.Transport = boundTransport{ctx: rctx, base: p.iamHTTP.Transport}
	auth, err := p.newAuthenticator(&client)
	if err != nil {
		return iamToken{}, err
	}
	start := time.Now()
	resp, err := auth.RequestToken()
	if err != nil {
		if ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return iamToken{}, &iamTimeoutError{timeout: timeout}
		}
		return iamToken{}, err
	}
	if resp == nil || resp.AccessToken == "" {
		if err := httpx.Overrun(ctx); err != nil {
			return iamToken{}, err
		}
		return iamToken{}, errNoAccessToken
	}
	tok := iamToken{access: resp.AccessToken}
	ttl := time.Duration(resp.ExpiresIn) * time.Second
	switch {
	case resp.Expiration > 0:
		tok.expires = time.Unix(resp.Expiration, 0)
	default:
		tok.expires = start.Add(ttl)
	}
	if ttl <= 0 {
		ttl = tok.expires.Sub(start)
	}
	tok.refresh = tok.expires.Add(-ttl / 5)
	return tok, nil
}

// newAuthenticator builds an IAM authenticator that sends through client.
// It is used for RequestToken only, never for its GetToken (see above).
func (p *Provider) newAuthenticator(client *http.Client) (*core.IamAuthenticator, error) {
	auth, err := core.NewIamAuthenticatorBuilder().
		SetApiKey(p.opts.APIKey).
		SetURL(p.opts.IAMURL).
		SetClient(client).
		Build()
	if err != nil {
		return nil, fmt.Errorf("ibm: IAM authenticator: %s", httpx.Scrub(err.Error(), p.opts.APIKey))
	}
	return auth, nil
}

// boundTransport sends every request under ctx. go-sdk-core builds its
// token request without a context; this is how the fetch's deadline and
// the IAM timeout reach it, the body read included.
type boundTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req.WithContext(t.ctx))
}

package oci

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// The SDK's common.Retry runs each operation in a goroutine and, when the
// caller's context ends first, returns at once with a response variable
// that goroutine is still writing: a data race (oci-go-sdk v65.129.0,
// common/retry.go). So the SDK is given a context that never ends,
// carrying the caller's, and the caller's context reaches each HTTP
// request below the SDK, in callerContext: a cancelled fetch still aborts
// the request in flight and the wait between attempts (retryPolicy), and
// the SDK's goroutine returns the failure before common.Retry does.

// callerContextKey keys the caller's context in the SDK's.
type callerContextKey struct{}

// sdkContext returns the context to hand the SDK for a call made under
// ctx: ctx's values, no cancellation or deadline, and ctx itself for
// callerContext.
func sdkContext(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), callerContextKey{}, ctx)
}

// callerContext ends each request when the caller's context carried by
// sdkContext ends, as well as when its own does.
type callerContext struct{ base http.RoundTripper }

func (t callerContext) RoundTrip(req *http.Request) (*http.Response, error) {
	caller, ok := req.Context().Value(callerContextKey{}).(context.Context)
	if !ok {
		return t.base.RoundTrip(req)
	}
	// AfterFunc runs its function in a goroutine of its own: a request
	// whose caller is already gone must not race it onto the wire.
	if err := caller.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(caller, func() { cancel(context.Cause(caller)) })
	release := func() {
		stop()
		cancel(nil)
	}
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil || resp == nil || resp.Body == nil {
		release()
		return resp, err
	}
	// The body is read after RoundTrip returns, under the same context.
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// releasingBody releases its request's context when closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// compactJSON drops the whitespace JSON allows between tokens from every
// JSON answer, below the SDK, which reads answers whole before decoding
// them: a broken answer padded with whitespace up to MaxResponseBytes
// then costs the SDK nothing instead of twice its size. It sits above
// the body limit, which counts the bytes as sent.
type compactJSON struct{ base http.RoundTripper }

func (t compactJSON) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, err
	}
	resp.Body = compactBody{Reader: httpx.CompactJSON(resp.Body), Closer: resp.Body}
	// The length no longer holds.
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return resp, nil
}

type compactBody struct {
	io.Reader
	io.Closer
}

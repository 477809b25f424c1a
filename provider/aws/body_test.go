package aws

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// sdkBody behaves as smithy-go's request body: once closed, WriteTo
// answers io.EOF as an error.
type sdkBody struct {
	mu     sync.Mutex
	r      *strings.Reader
	closed bool
}

func (b *sdkBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.EOF
	}
	return b.r.Read(p)
}

func (b *sdkBody) WriteTo(w io.Writer) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.EOF
	}
	return b.r.WriteTo(w)
}

func (b *sdkBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

type recordingTransport struct{ got *http.Request }

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.got = req
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// TestOwnBody reads the body the transport was given after the SDK closed
// its own, which is what net/http's last read of a request body does when
// the server answered first.
func TestOwnBody(t *testing.T) {
	const payload = `{"TimePeriod":{"Start":"2026-10-01","End":"2026-12-01"}}`
	for _, tc := range []struct {
		name    string
		wrap    func(http.RoundTripper) http.RoundTripper
		wantErr bool
	}{
		{"the SDK's body", func(rt http.RoundTripper) http.RoundTripper { return rt }, true},
		{"a copy of its own", func(rt http.RoundTripper) http.RoundTripper { return ownBody{rt} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &sdkBody{r: strings.NewReader(payload)}
			req, err := http.NewRequest(http.MethodPost, "http://ce.test/", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(len(payload))
			rec := &recordingTransport{}
			if _, err := tc.wrap(rec).RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			var sent strings.Builder
			if _, err := io.Copy(&sent, io.LimitReader(rec.got.Body, rec.got.ContentLength)); err != nil {
				t.Fatal(err)
			}
			_ = body.Close() // the SDK, once the response headers are in
			_, err = io.Copy(io.Discard, rec.got.Body)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Errorf("the read after the SDK closed its body: %v, want an error: %t", err, tc.wantErr)
			}
			if sent.String() != payload || rec.got.ContentLength != int64(len(payload)) {
				t.Errorf("sent %q (Content-Length %d), want %q", sent.String(), rec.got.ContentLength, payload)
			}
		})
	}
}

func TestOwnBodyBounds(t *testing.T) {
	rec := &recordingTransport{}
	req, _ := http.NewRequest(http.MethodPost, "http://ce.test/", strings.NewReader(strings.Repeat("x", maxRequestBody+1)))
	if _, err := (ownBody{rec}).RoundTrip(req); err == nil || rec.got != nil {
		t.Errorf("a body over %d bytes: %v, sent: %t", maxRequestBody, err, rec.got != nil)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://ce.test/", nil)
	if _, err := (ownBody{rec}).RoundTrip(req); err != nil || rec.got != req {
		t.Errorf("a request without a body: %v, passed on unchanged: %t", err, rec.got == req)
	}
}

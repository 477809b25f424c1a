package httpx_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

func TestCertificateErrors(t *testing.T) {
	unknown := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	wrapped := &url.Error{Op: "Get", URL: "https://iam.example.com/identity/token", Err: unknown}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"tls verification", unknown, true},
		{"in a url.Error", wrapped, true},
		{"hostname", fmt.Errorf("x: %w", x509.HostnameError{Host: "a"}), true},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, true},
		{"no roots", x509.SystemRootsError{}, true},
		{"wrapped CertificateError", fmt.Errorf("x: %w", &httpx.CertificateError{Err: unknown}), true},
		{"other", errors.New("x509: certificate signed by unknown authority"), false},
		{"nil", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := httpx.IsCertificateError(tt.err); got != tt.want {
				t.Errorf("IsCertificateError = %v, want %v", got, tt.want)
			}
			if tt.want {
				if r := provider.ReasonOf(tt.err); r != provider.ReasonNetwork {
					t.Errorf("ReasonOf = %s, want %s", r, provider.ReasonNetwork)
				}
				if r := provider.ReasonOf(httpx.Redact(tt.err)); r != provider.ReasonNetwork {
					t.Errorf("ReasonOf(Redact) = %s, want %s", r, provider.ReasonNetwork)
				}
			}
		})
	}
	ce := httpx.CertificateFailure(wrapped)
	if ce == nil || ce.Host != "iam.example.com" || !errors.Is(ce, unknown) {
		t.Fatalf("CertificateFailure = %#v", ce)
	}
	for _, want := range []string{"TLS certificate of iam.example.com is not trusted", "HTTPS_PROXY", "SSL_CERT_FILE"} {
		if !strings.Contains(ce.Error(), want) {
			t.Errorf("message %q does not say %q", ce.Error(), want)
		}
	}
	if httpx.CertificateFailure(errors.New("x")) != nil {
		t.Error("CertificateFailure of another error is not nil")
	}
}

func TestFailFast(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/truncated":
			w.Header().Set("Content-Length", strconv.Itoa(100))
			_, _ = io.WriteString(w, `{"a":`)
		case "/chunked":
			_, _ = io.WriteString(w, `{"a":`)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			_, _ = io.WriteString(w, `{"a":1}`)
		}
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()

	trusted := httpx.NewClient(ts.Client(), httpx.ClientOptions{FailFast: true, MaxResponseBytes: 1 << 20})
	get := func(c *http.Client, path string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.URL+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		return io.ReadAll(resp.Body)
	}

	if b, err := get(trusted, "/"); err != nil || string(b) != `{"a":1}` {
		t.Errorf("whole body: %q, %v", b, err)
	}
	for _, path := range []string{"/truncated", "/chunked"} {
		b, err := get(trusted, path)
		var te *httpx.TruncatedBodyError
		if !errors.As(err, &te) || !errors.Is(err, httpx.ErrTruncatedBody) || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: error %v (%T), want a *TruncatedBodyError that is not io.ErrUnexpectedEOF", path, err, err)
			continue
		}
		if te.Read != int64(len(b)) || te.Read != 5 {
			t.Errorf("%s: Read = %d, body %q", path, te.Read, b)
		}
		if provider.ReasonOf(err) != provider.ReasonMalformed {
			t.Errorf("%s: ReasonOf = %s", path, provider.ReasonOf(err))
		}
	}

	untrusted := httpx.NewClient(nil, httpx.ClientOptions{FailFast: true})
	_, err := get(untrusted, "/")
	ce, ok := errors.AsType[*httpx.CertificateError](err)
	if !ok || ce.Host != strings.TrimPrefix(ts.URL, "https://") {
		t.Fatalf("untrusted: %v (%T), want a *CertificateError for the server's host", err, err)
	}
	if _, ok := errors.AsType[interface {
		error
		NonRetriable()
	}](err); !ok {
		t.Error("a certificate error is not marked NonRetriable")
	}
	// Without FailFast, nothing changes.
	_, err = get(httpx.NewClient(nil, httpx.ClientOptions{}), "/")
	if _, ok := errors.AsType[*httpx.CertificateError](err); ok || !httpx.IsCertificateError(err) {
		t.Errorf("without FailFast: %v (%T)", err, err)
	}
}

func TestTransportFailure(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		reason provider.Reason
		ok     bool
	}{
		{"context first", canceled, &net.OpError{Op: "dial", Err: errors.New("refused")}, provider.ReasonCanceled, true},
		{"truncated body", context.Background(), fmt.Errorf("decode: %w", &httpx.TruncatedBodyError{}), provider.ReasonMalformed, true},
		{"unexpected EOF", context.Background(), fmt.Errorf("read: %w", io.ErrUnexpectedEOF), provider.ReasonMalformed, true},
		{"network", context.Background(), &net.OpError{Op: "dial", Err: errors.New("refused")}, provider.ReasonNetwork, true},
		{"an API answer", context.Background(), errors.New("403 Forbidden"), "", false},
	} {
		reason, wrapped, ok := httpx.TransportFailure(tc.ctx, "x: op", tc.err)
		if reason != tc.reason || ok != tc.ok || (ok && !strings.HasPrefix(wrapped.Error(), "x: op: ")) {
			t.Errorf("%s: %q %v %v, want %q %v", tc.name, reason, wrapped, ok, tc.reason, tc.ok)
		}
	}
}

// TestNetworkErrorNamesTheRequestOnce: SDKs wrap net/http's *url.Error in
// errors that repeat its method and URL; the classified message names the
// method and host once, and no query.
func TestNetworkErrorNamesTheRequestOnce(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	inner := &url.Error{Op: "Post", URL: "https://api.example.com/v1/data?token=abc", Err: dial}
	outer := &url.Error{Op: "Post", URL: "https://api.example.com/v1/data?token=abc", Err: inner}
	sdk := fmt.Errorf("sdk: request failed: %w", outer)
	reason, err, ok := httpx.TransportFailure(context.Background(), "cloud: ListData", sdk)
	if !ok || reason != provider.ReasonNetwork {
		t.Fatalf("TransportFailure = %s, %v, %v", reason, err, ok)
	}
	const want = "cloud: ListData: Post api.example.com: dial tcp: connect: connection refused"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if !errors.Is(err, dial) {
		t.Error("the network error is no longer in the chain")
	}
}

package provider_test

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
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, s string
		n       int
		want    string
	}{
		{"short", "héllo", 10, "héllo"},
		{"exact", "héllo", 6, "héllo"},
		{"ascii cut", "hello world", 5, "hello…"},
		// é is two bytes (c3 a9); a cut at byte 2 would split it.
		{"rune straddles the limit", "hé", 2, "h…"},
		{"cut after the rune", "héllo", 3, "hé…"},
		{"four-byte rune", "a😀b", 4, "a…"},
		{"zero", "abc", 0, "…"},
		{"negative", "abc", -1, "…"},
		{"empty", "", 0, ""},
		{"invalid bytes repaired", "a\xffb", 10, "a\uFFFDb"},
		{"invalid bytes repaired before the cut", "a\xff\xfeb", 4, "a\uFFFD…"},
		{"truncated rune at the end", "ab\xc3", 10, "ab\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := provider.Truncate(tt.s, tt.n)
			if got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", tt.s, tt.n, got)
			}
		})
	}
}

func FuzzTruncate(f *testing.F) {
	f.Add("hé", 2)
	f.Add("a😀b", 3)
	f.Add("a\xff\xfeb", 4)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 1 << 12
		got := provider.Truncate(s, n)
		if !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q is not valid UTF-8", s, n, got)
		}
		body, cut := strings.CutSuffix(got, "…")
		valid := strings.ToValidUTF8(s, "\uFFFD")
		switch {
		case got == valid:
		case !cut || len(body) > max(n, 0) || !strings.HasPrefix(valid, body):
			t.Fatalf("Truncate(%q, %d) = %q: not a bounded prefix of %q", s, n, got, valid)
		}
	})
}

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
		{"wrapped CertificateError", fmt.Errorf("x: %w", &provider.CertificateError{Err: unknown}), true},
		{"other", errors.New("x509: certificate signed by unknown authority"), false},
		{"nil", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.IsCertificateError(tt.err); got != tt.want {
				t.Errorf("IsCertificateError = %v, want %v", got, tt.want)
			}
			if tt.want {
				if r := provider.ReasonOf(tt.err); r != provider.ReasonNetwork {
					t.Errorf("ReasonOf = %s, want %s", r, provider.ReasonNetwork)
				}
				if r := provider.ReasonOf(provider.Redact(tt.err)); r != provider.ReasonNetwork {
					t.Errorf("ReasonOf(Redact) = %s, want %s", r, provider.ReasonNetwork)
				}
			}
		})
	}
	ce := provider.CertificateFailure(wrapped)
	if ce == nil || ce.Host != "iam.example.com" || !errors.Is(ce, unknown) {
		t.Fatalf("CertificateFailure = %#v", ce)
	}
	for _, want := range []string{"TLS certificate of iam.example.com is not trusted", "HTTPS_PROXY", "SSL_CERT_FILE"} {
		if !strings.Contains(ce.Error(), want) {
			t.Errorf("message %q does not say %q", ce.Error(), want)
		}
	}
	if provider.CertificateFailure(errors.New("x")) != nil {
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

	trusted := provider.NewClient(ts.Client(), provider.ClientOptions{FailFast: true, MaxResponseBytes: 1 << 20})
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
		var te *provider.TruncatedBodyError
		if !errors.As(err, &te) || !errors.Is(err, provider.ErrTruncatedBody) || errors.Is(err, io.ErrUnexpectedEOF) {
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

	untrusted := provider.NewClient(nil, provider.ClientOptions{FailFast: true})
	_, err := get(untrusted, "/")
	ce, ok := errors.AsType[*provider.CertificateError](err)
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
	_, err = get(provider.NewClient(nil, provider.ClientOptions{}), "/")
	if _, ok := errors.AsType[*provider.CertificateError](err); ok || !provider.IsCertificateError(err) {
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
		{"truncated body", context.Background(), fmt.Errorf("decode: %w", &provider.TruncatedBodyError{}), provider.ReasonMalformed, true},
		{"unexpected EOF", context.Background(), fmt.Errorf("read: %w", io.ErrUnexpectedEOF), provider.ReasonMalformed, true},
		{"network", context.Background(), &net.OpError{Op: "dial", Err: errors.New("refused")}, provider.ReasonNetwork, true},
		{"an API answer", context.Background(), errors.New("403 Forbidden"), "", false},
	} {
		reason, wrapped, ok := provider.TransportFailure(tc.ctx, "x: op", tc.err)
		if reason != tc.reason || ok != tc.ok || (ok && !strings.HasPrefix(wrapped.Error(), "x: op: ")) {
			t.Errorf("%s: %q %v %v, want %q %v", tc.name, reason, wrapped, ok, tc.reason, tc.ok)
		}
	}
}

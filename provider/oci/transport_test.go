package oci

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCompactJSON: JSON answers lose the whitespace between tokens and
// keep every byte of their strings; other answers are left alone.
func TestCompactJSON(t *testing.T) {
	const body = " {\n \"items\" : [ {\"service\": \"Block \\\" Storage \", \"region\":\"us-ashburn-1\"} ]\t}\r\n"
	for _, tt := range []struct{ contentType, want string }{
		{"application/json; charset=utf-8", `{"items":[{"service":"Block \" Storage ","region":"us-ashburn-1"}]}`},
		{"text/html", body},
	} {
		rt := compactJSON{base: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body)),
				Header: http.Header{"Content-Type": {tt.contentType}}}, nil
		})}
		resp, err := rt.RoundTrip(&http.Request{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %q (%v), want %q", tt.contentType, got, err, tt.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

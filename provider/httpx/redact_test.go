package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

func TestScrub(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"no secrets", "key s3cr3t", nil, "key s3cr3t"},
		{"empty secret ignored", "key s3cr3t", []string{""}, "key s3cr3t"},
		{"every occurrence", "s3cr3t and s3cr3t", []string{"s3cr3t"}, "<secret> and <secret>"},
		{"several secrets", "a=pw1 b=pw2", []string{"pw1", "", "pw2"}, "a=<secret> b=<secret>"},
		{"absent secret", "nothing here", []string{"pw"}, "nothing here"},
		// The shorter secret first must not leave the longer one's tail.
		{"overlapping secrets", "x abcdef y abc", []string{"abc", "abcdef"}, "x <secret> y <secret>"},
	}
	for _, tt := range tests {
		if got := httpx.Scrub(tt.in, tt.secrets...); got != tt.want {
			t.Errorf("%s: Scrub(%q, %q) = %q, want %q", tt.name, tt.in, tt.secrets, got, tt.want)
		}
	}
}

// sdkError stands for an SDK error holding server-supplied text, which
// Redact must make unreachable.
type sdkError struct{ err error }

func (e *sdkError) Error() string { return "sdk: " + e.err.Error() }
func (e *sdkError) Unwrap() error { return e.err }

func TestRedact(t *testing.T) {
	const secret = "hunter2"
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused " + secret)}
	tests := []struct {
		name       string
		err        error
		wantMsg    string
		wantIs     error // nil: no cause is kept
		wantReason provider.Reason
	}{
		{"plain", fmt.Errorf("echoed %s", secret), "echoed <secret>", nil, provider.ReasonOther},
		{"sdk error dropped", &sdkError{errors.New("server said " + secret)}, "sdk: server said <secret>", nil, provider.ReasonOther},
		{"deadline", fmt.Errorf("get: %w", &sdkError{context.DeadlineExceeded}), "get: sdk: context deadline exceeded", context.DeadlineExceeded, provider.ReasonTimeout},
		{"canceled", fmt.Errorf("get: %w", &sdkError{context.Canceled}), "get: sdk: context canceled", context.Canceled, provider.ReasonCanceled},
		{"network", fmt.Errorf("get: %w", &sdkError{opErr}), "get: sdk: dial tcp: connection refused <secret>", opErr, provider.ReasonNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := httpx.Redact(tt.err, secret)
			if err.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tt.wantMsg)
			}
			if _, ok := errors.AsType[*sdkError](err); ok {
				t.Error("the SDK error is still reachable")
			}
			if cause := errors.Unwrap(err); tt.wantIs == nil && cause != nil {
				t.Errorf("cause %v kept, want none", cause)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
			if got := provider.ReasonOf(err); got != tt.wantReason {
				t.Errorf("ReasonOf = %s, want %s", got, tt.wantReason)
			}
		})
	}
	if err := httpx.Redact(nil, secret); err != nil {
		t.Errorf("Redact(nil) = %v", err)
	}
}

package provider

import (
	"cmp"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"unicode/utf8"
)

// Scrub replaces every occurrence of each non-empty secret in s with
// "<secret>". Nothing a provider builds puts a secret into a message; this
// is defence in depth against servers and libraries that echo request
// data. Longer secrets are replaced first, so that a secret containing
// another is never left partly visible.
func Scrub(s string, secrets ...string) string {
	var pairs []string
	for _, secret := range secrets {
		if secret != "" {
			pairs = append(pairs, secret)
		}
	}
	if len(pairs) == 0 {
		return s
	}
	// strings.Replacer tries its old strings in argument order at each
	// position, so longest first means longest match.
	slices.SortStableFunc(pairs, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	args := make([]string, 0, 2*len(pairs))
	for _, secret := range pairs {
		args = append(args, secret, "<secret>")
	}
	return strings.NewReplacer(args...).Replace(s)
}

// Redact returns an error whose message is err's, scrubbed of secrets. Of
// err's chain it keeps only a context error, ErrTruncatedBody,
// ErrResponseTooLarge, a *CertificateError or a net.Error, so that
// errors.Is(err, context.DeadlineExceeded) and ReasonOf keep working while
// SDK errors, which hold server-supplied text and raw responses, become
// unreachable. A nil err gives nil.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var cause error
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		cause = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		cause = context.Canceled
	case errors.Is(err, ErrTruncatedBody):
		cause = ErrTruncatedBody
	case errors.Is(err, ErrResponseTooLarge):
		cause = ErrResponseTooLarge
	case IsCertificateError(err):
		// Certificates and verification errors hold no secret and no
		// server-supplied text.
		cause = CertificateFailure(err)
	case errors.As(err, &ne):
		cause = ne
	}
	return &redactedError{msg: Scrub(err.Error(), secrets...), cause: cause}
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// Truncate bounds a message, or a label value taken from one, at n bytes
// of valid UTF-8. Invalid bytes are first replaced by U+FFFD, so that the
// result is always valid UTF-8 (which Prometheus label values must be);
// a string longer than n is then cut at the last rune boundary at or
// before n and marked with "…". Every provider cuts server-supplied text
// with it, so that no cut splits a character.
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

package httpx

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Scrub replaces every occurrence of each non-empty secret in s, and of
// the forms a client derives from it to send it (base64 in a Basic
// header or a JWT, URL encoding in a form or query), with "<secret>".
// Nothing a provider builds puts a secret into a message; this is defence
// in depth against servers and libraries that echo request data. Longer
// strings are replaced first, so that a secret containing another is never
// left partly visible.
func Scrub(s string, secrets ...string) string {
	var olds []string
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		olds = append(olds, secret)
		for _, form := range derived(secret) {
			if form != secret {
				olds = append(olds, form)
			}
		}
	}
	if len(olds) == 0 {
		return s
	}
	// strings.Replacer tries its old strings in argument order at each
	// position, so longest first means longest match.
	slices.SortStableFunc(olds, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	args := make([]string, 0, 2*len(olds))
	for _, old := range slices.Compact(olds) {
		args = append(args, old, "<secret>")
	}
	return strings.NewReplacer(args...).Replace(s)
}

// derived returns the encodings under which secret travels on the wire.
// Short secrets (under 8 bytes) get no base64 forms, whose few characters
// would match unrelated text.
func derived(secret string) []string {
	forms := []string{url.QueryEscape(secret), url.PathEscape(secret)}
	if len(secret) < 8 {
		return forms
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		// Inside a longer encoded string (user:secret in a Basic header)
		// the secret starts at any of three offsets within a 3-byte group;
		// only the characters whose 6 bits all come from the secret are
		// the same whatever its neighbours.
		for off := range 3 {
			e := enc.EncodeToString(append(make([]byte, off), secret...))
			first := (8*off + 5) / 6
			last := (8*(off+len(secret)) - 6) / 6
			forms = append(forms, e[first:last+1])
		}
	}
	return forms
}

// Redact returns an error whose message is err's, scrubbed of secrets. Of
// err's chain it keeps only a context error, a provider.Classified error
// (a body cut short or too large, an untrusted certificate) or a
// net.Error, so that errors.Is(err, context.DeadlineExceeded) and
// provider.ReasonOf keep working while SDK errors, which hold
// server-supplied text and raw responses, become unreachable. A nil err
// gives nil.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var cause error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		cause = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		cause = context.Canceled
	default:
		if c, ok := errors.AsType[provider.Classified](err); ok {
			// These hold no secret and no server-supplied text.
			cause = c
		} else if ce := CertificateFailure(err); ce != nil {
			cause = ce
		} else if ne, ok := errors.AsType[net.Error](err); ok {
			cause = ne
		}
	}
	return &redactedError{msg: Scrub(err.Error(), secrets...), cause: cause}
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

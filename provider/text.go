package provider

import (
	"strings"
	"unicode/utf8"
)

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

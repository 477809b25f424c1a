package provider_test

import (
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

package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
)

// mergeBomb is a few hundred bytes that expand to 8^9 keys through merge
// keys: each anchor merges the previous one eight times, and the last line,
// last formatted with the merge, uses the last anchor eight times.
func mergeBomb(last string) string {
	var b strings.Builder
	b.WriteString("a0: &a0 {jitter: 0.1}\n")
	for n := 1; n <= 8; n++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", n-1), 8), ",")
		fmt.Fprintf(&b, "a%d: &a%d {jitter: 0.1, <<: [%s]}\n", n, n, refs)
	}
	fmt.Fprintf(&b, last+"\n", "<<: ["+strings.TrimSuffix(strings.Repeat("*a8,", 8), ",")+"]")
	return b.String()
}

// TestExpansionIsBounded: files whose anchors and merge keys expand
// exponentially are refused with a clear error after a bounded amount of
// work, wherever the expansion sits.
func TestExpansionIsBounded(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"merge keys in refresh", mergeBomb("refresh: {%s}"), "expands to more than 100000 keys"},
		{"merge keys in an ibm entry", mergeBomb("ibm: [{%s}]"), "expands to more than 100000 keys"},
		{"merge keys under an unknown key", mergeBomb("nope: {%s}"), "expands to more than 100000 keys"},
		{"merge keys in a map of secrets", mergeBomb("otlp: {headers: {%s}}"), "expands to more than 100000 keys"},
		{"aliases in a list", "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
			"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nibm: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n", ""},
		{"too large", strings.Repeat("# padding\n", 110_000), "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), "bomb.yml", nil, clouds.All())
			if err == nil {
				t.Fatal("got no error")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestSecretInTheWrongFieldIsNotEchoed: a secret pasted where the name of
// its variable or file belongs, or as a key, is not repeated by the error.
func TestSecretInTheWrongFieldIsNotEchoed(t *testing.T) {
	const secret = "CANARY-w~r0ng.F1eld/Secret+="
	for _, tc := range []struct{ name, data, want string }{
		{"api_key_env", "ibm:\n  - api_key_env: " + secret + "\n", "ibm.api_key_env must be the name of an environment variable"},
		{"api_key_file", "ibm:\n  - api_key_file: " + secret + "\n", "ibm.api_key_file names no existing file"},
		{"client_secret_env", "azure:\n  - credential: client_secret\n    tenant_id: t\n    client_id: c\n    client_secret_env: '" + secret + "'\n    list_subscriptions: true\n",
			"azure.client_secret_env must be the name of an environment variable"},
		{"secret as a key", "ibm:\n  - api_key: k\n    '" + secret + "': x\n", "an unknown field in ibm entry"},
		{"long key", "ibm:\n  - api_key: k\n    abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH: x\n", "an unknown field in ibm entry"},
		{"hex token as a key", "ibm:\n  - api_key: k\n    canary0a1b2c3d4e5f60718293a4b5c6: x\n", "an unknown field in ibm entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), "c.yml", func(string) string { return "" }, clouds.All())
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if msg := strings.ToUpper(err.Error()); strings.Contains(msg, "CANARY") || strings.Contains(msg, "ABCDEFGH") {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

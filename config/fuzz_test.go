package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// leakSeeds are the shapes of the leaks that probes found: a secret where
// a path, a variable name, a name, an anchor, a tag or a key belongs.
var leakSeeds = []string{
	"oci:\n  - config_file: |\n      -----BEGIN PRIVATE KEY-----\n      MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n      -----END PRIVATE KEY-----\n",
	"oci:\n  - config_file: " + strings.Repeat("Zq8LmW2x", 40) + "\n",
	"ibm:\n  - api_key_file: fuzz_test.go/wJalrXUtnFEMI7K7MDENG\n",
	"gcp:\n  - project: p\n    carbon_table: a.b.c\n    credentials_file: fuzz_test.go/wJalrXUtnFEMI7K7MDENG\n",
	"ibm:\n  - api_key_env: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n",
	"ibm:\n  - name: Ab3dEfGh1jKlMnOpQr\n",
	"aws:\n  - name: Ab3dEfGh1jKlMnOpQr\n    organizations_endpoint: https://o.example\n",
	"gcp:\n  - project: Ab3dEfGh1jKlMnOpQr\n",
	"ibm: *Ab3dEfGh1jKlMnOpQr\n",
	"refresh:\n  interval: !!float Ab3dEfGh1jKlMnOpQr\n",
	"ibm:\n  - api_key: k\n    Ab3dEfGh1jKlMnOpQr: 1\n    Ab3dEfGh1jKlMnOpQr: 2\n",
	"otlp:\n  headers:\n    authorization: Bearer Ab3dEfGh1jKlMnOpQr\n    authorization: Bearer Ab3dEfGh1jKlMnOpQs\n",
}

// FuzzParse feeds the configuration parser arbitrary files, anchors,
// aliases and merge keys included: it must never panic and must answer
// within its expansion bound. No secret may reach its output: neither the
// values of secret keys, nor the secret the environment holds, nor any
// value of the file shaped like a credential (see secretShaped), wherever
// it was put.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "config", "*.yml"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(mergeBomb("refresh: {%s}")))
	f.Add([]byte("a: &a {interval: 1h}\nrefresh: {<<: *a, jitter: 0.2}\nibm: [{api_key_env: K, <<: {name: x}}]\n"))
	f.Add([]byte("ibm:\n  - api_key: k\n    api_url: http://[::1]:80/x\n"))
	for _, s := range leakSeeds {
		f.Add([]byte(s))
	}
	plugins := clouds.All()
	secretKeys := secretKeyNames(plugins)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, ok := parseOutput(data, plugins)
		if strings.Contains(out, canary) {
			t.Fatalf("the output reveals the secret of the environment:\n%s", out)
		}
		doc := &yaml.Node{}
		if yaml.Unmarshal(data, doc) != nil {
			doc = nil
		}
		for _, v := range secretValues(doc, secretKeys) {
			if echoed(data, v, out, plugins) {
				t.Fatalf("the output reveals the value %q of a secret key:\n%s", v, out)
			}
		}
		if ok {
			// A valid file's values print as they are, but for secrets.
			return
		}
		for _, v := range candidates(data, doc) {
			if secretShaped(v) && echoed(data, v, out, plugins) {
				t.Fatalf("the error repeats the value %q:\n%s", v, out)
			}
		}
	})
}

// echoed reports whether out, the output for data, repeats the value v of
// data. A message may hold the same characters for a reason of its own (a
// key name, a hint, an example): it is an echo only if, once v is replaced
// in data by another value of the same shape, the output loses v or
// repeats the other value.
func echoed(data []byte, v, out string, plugins []provider.Plugin) bool {
	if !strings.Contains(out, v) {
		return false
	}
	other := shift(v)
	again, _ := parseOutput(bytes.ReplaceAll(data, []byte(v), []byte(other)), plugins)
	return !strings.Contains(again, v) || strings.Contains(again, other)
}

// fuzzEnv sets the variables the seed files name and those starting with
// SET_; every other is unset.
func fuzzEnv(name string) string {
	if name == "IBM_CLOUD_API_KEY" || strings.HasPrefix(name, "SET_") {
		return canary
	}
	return ""
}

// parseOutput returns what the exporter prints of a file: the error, or
// the configuration and its hash.
func parseOutput(data []byte, plugins []provider.Plugin) (string, bool) {
	c, err := Parse(data, "fuzz.yml", fuzzEnv, plugins)
	if err != nil {
		return err.Error(), false
	}
	return c.String() + c.Hash(), true
}

// secretShaped is what a generated credential looks like and a key name,
// an enum, a number, a path or an id does not: long, with capitals, small
// letters and digits.
func secretShaped(s string) bool {
	if len(s) < 16 {
		return false
	}
	var upper, lower, digit bool
	for _, r := range s {
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
		digit = digit || unicode.IsDigit(r)
	}
	return upper && lower && digit
}

// candidates returns the values of data that could be echoed: every
// scalar of the document doc (nil if data does not parse), as a whole and
// word by word, and every run of the raw text between YAML's indicators.
func candidates(data []byte, doc *yaml.Node) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, w := range strings.FieldsFunc(string(data), func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(":,[]{}'\"&*!#|>`", r)
	}) {
		add(w)
	}
	if doc != nil {
		walk(doc, func(n *yaml.Node) {
			add(n.Value)
			for _, w := range strings.Fields(n.Value) {
				add(w)
			}
		})
	}
	return out
}

func walk(n *yaml.Node, f func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode {
		f(n)
	}
	for _, c := range n.Content {
		walk(c, f)
	}
}

// secretKeyNames returns the keys whose values are secrets: those of the
// fields of type Secret in every section.
func secretKeyNames(plugins []provider.Plugin) map[string]bool {
	keys := map[string]bool{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			switch {
			case f.Type == reflect.TypeFor[Secret]():
				keys[yamlKey(f)] = true
			case f.Type.Kind() == reflect.Struct:
				visit(f.Type)
			}
		}
	}
	l, err := newLayout(plugins)
	if err != nil {
		panic(err)
	}
	visit(reflect.TypeFor[Refresh]())
	for _, t := range l.entries {
		visit(t)
	}
	return keys
}

// secretValues returns the values the document doc (nil if it does not
// parse) gives secret keys and OTLP headers, long enough that no message
// could hold them by chance.
func secretValues(doc *yaml.Node, keys map[string]bool) []string {
	if doc == nil {
		return nil
	}
	var out []string
	var visit func(n *yaml.Node, headers bool)
	visit = func(n *yaml.Node, headers bool) {
		if n.Kind == yaml.AliasNode || n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind == yaml.ScalarNode && (headers || keys[k.Value]) && len(strings.TrimSpace(v.Value)) >= 8 {
					out = append(out, strings.TrimSpace(v.Value))
				}
				visit(v, k.Value == "headers")
			}
			return
		}
		for _, c := range n.Content {
			visit(c, false)
		}
	}
	visit(doc, false)
	return out
}

// shift returns s with every letter and digit replaced by the next one of
// its kind, which keeps its shape (case, length, punctuation).
func shift(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == 'z':
			return 'a'
		case r == 'Z':
			return 'A'
		case r == '9':
			return '0'
		case r >= 'a' && r < 'z', r >= 'A' && r < 'Z', r >= '0' && r < '9':
			return r + 1
		}
		return r
	}, s)
}

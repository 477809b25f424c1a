package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
)

// FuzzParse feeds the configuration parser arbitrary files, anchors,
// aliases and merge keys included: it must never panic, must answer
// within its expansion bound, and its errors must never repeat the secret
// the environment holds.
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
	plugins := clouds.All()
	env := func(string) string { return canary }
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yml", env, plugins)
		if err != nil {
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error reveals the secret: %v", err)
			}
			return
		}
		if out := c.String(); strings.Contains(out, canary) {
			t.Errorf("String reveals the secret: %s", out)
		}
		_ = c.Hash()
	})
}

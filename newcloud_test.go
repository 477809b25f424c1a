package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// throwaway is a whole cloud: a plug-in whose source reports one record
// per month, with its config section and its part of the example file.
var throwaway = map[string]string{
	"provider/zz/zz.go": `// Package zz is a cloud that exists only in a test.
package zz

import (
	"context"
	_ "embed"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

//go:embed example.yml
var example string

// Plugin describes the cloud.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name: "zz", Schedule: provider.Schedule{PublishDelay: 24 * time.Hour, SettleDelay: 24 * time.Hour},
		NewConfig: func() provider.SourceConfig { return &Config{} }, Example: example,
	}
}

// Config is one entry of the zz section.
type Config struct {
	Name  string ` + "`yaml:\"name\"`" + `
	Grams float64 ` + "`yaml:\"grams\"`" + `
}

func (c *Config) SourceName() *string { return &c.Name }
func (c *Config) Check(v provider.Checker) {
	if c.Grams < 0 {
		v.Errorf("grams", "zz.grams must not be negative")
	}
}
func (c *Config) Identity() string { return "zz" }
func (c *Config) Covers() []provider.Coverage { return []provider.Coverage{{Key: c.Name, What: "source " + c.Name}} }
func (c *Config) New(context.Context, provider.Env) (provider.Provider, error) { return source{c.Grams}, nil }

type source struct{ grams float64 }

func (source) Name() string               { return "zz" }
func (source) Schedule() provider.Schedule { return Plugin().Schedule }
func (source) Close() error               { return nil }
func (s source) Fetch(_ context.Context, months []provider.Month) (provider.Result, error) {
	var res provider.Result
	for _, m := range months {
		res.Records = append(res.Records, provider.Record{Provider: "zz", Account: "a", Service: "s", Location: "l",
			Scope: provider.ScopeUnspecified, Month: m, EmissionsGrams: s.grams, Known: provider.Emissions})
	}
	return res, nil
}
`,
	"provider/zz/example.yml": "# A cloud that exists only in a test.\nzz:\n  - name: zz\n    # Grams reported per month.\n    grams: 0\n",
}

// TestNewCloudIsOnePackageAndOneLine adds a cloud to a copy of the module
// as a new contributor would, its package and its entry in the list of
// plug-ins (with that entry's import), and checks that the exporter
// builds, knows the cloud's configuration section and example, and passes
// its layering, example and exposition tests without another edit.
func TestNewCloudIsOnePackageAndOneLine(t *testing.T) {
	if testing.Short() {
		t.Skip("copies and builds the module")
	}
	dir := t.TempDir()
	files, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	for name := range strings.SplitSeq(strings.TrimSpace(string(files)), "\n") {
		data, err := os.ReadFile(name)
		if err != nil {
			continue // deleted in the work tree
		}
		write(t, filepath.Join(dir, name), data)
	}
	for name, text := range throwaway {
		write(t, filepath.Join(dir, name), []byte(text))
	}
	list := filepath.Join(dir, "internal", "clouds", "clouds.go")
	src, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "\t\tscaleway.Plugin(),\n", "\t\tscaleway.Plugin(),\n\t\tzz.Plugin(),\n", 1)
	edited = strings.Replace(edited, "provider/scaleway\"\n", "provider/scaleway\"\n\t\"github.com/cloudcarbon/cloudcarbon_exporter/provider/zz\"\n", 1)
	if edited == string(src) {
		t.Fatal("internal/clouds/clouds.go no longer ends its list with scaleway")
	}
	write(t, list, []byte(edited))

	gocmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	gocmd("vet", ".", "./config", "./internal/...", "./provider/zz")
	if out := gocmd("run", ".", "example-config"); !strings.Contains(out, "\nzz:\n  - name: zz\n") {
		t.Errorf("the example configuration has no zz section:\n%s", out)
	}
	cfg := filepath.Join(dir, "zz.yml")
	write(t, cfg, []byte("zz:\n  - grams: 5\n"))
	if out := gocmd("run", ".", "--config.file", cfg, "--config.check"); !strings.Contains(out, "grams: 5") {
		t.Errorf("--config.check does not show the zz entry:\n%s", out)
	}
	gocmd("test", "-count=1", "-run", "TestImportRules|TestExample|TestDemoExpositionGolden|TestREADMEMetricTable", ".", "./config", "./internal/app")
	diff := gocmd("run", ".", "dump", "--config.file", cfg, "--state.file", "")
	if !strings.Contains(diff, `cloudcarbon_emissions_grams{account="a",location="l",provider="zz",scope="unspecified",service="s"} 5`) {
		t.Errorf("dump does not serve the zz source:\n%s", firstLines(diff, 20))
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func firstLines(s string, n int) string {
	lines := bytes.SplitN([]byte(s), []byte("\n"), n+1)
	return string(bytes.Join(lines[:min(n, len(lines))], []byte("\n")))
}

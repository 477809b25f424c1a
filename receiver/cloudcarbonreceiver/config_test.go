package cloudcarbonreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway"
)

const (
	testIBMKey = "ibm-s3cr3t-key-0000"
	// testSCWSecret is shaped as Scaleway's secret keys are, a UUID.
	testSCWSecret = "d3adbeef-1111-4222-8333-444455556666"
	// testEnterprise is only digits: YAML reads it as a number.
	testEnterprise = "01234567890123456789012345678901"
)

var testSecrets = []string{testIBMKey, testSCWSecret}

// loadConfig resolves the file as the Collector does (the file and env
// providers, ${env:...} expanded) and unmarshals the configuration of the
// receiver id.
func loadConfig(t *testing.T, file, id string) (*Config, error) {
	t.Helper()
	t.Setenv("CLOUDCARBON_TEST_IBM_KEY", testIBMKey)
	t.Setenv("CLOUDCARBON_TEST_SCW_SECRET", testSCWSecret)
	t.Setenv("CLOUDCARBON_TEST_ENTERPRISE", testEnterprise)
	resolver, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:              []string{"file:" + file},
		ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
		DefaultScheme:     "env",
	})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := resolver.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conf.Sub(id)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	return cfg, sub.Unmarshal(cfg)
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		id    string
		check func(t *testing.T, cfg *Config, parsed *config.Config)
	}{
		{"cloudcarbon", func(t *testing.T, cfg *Config, parsed *config.Config) {
			if cfg.CollectionInterval != time.Minute || cfg.HistoryMonths != DefaultHistoryMonths || cfg.StorageID != nil || cfg.Demo {
				t.Errorf("defaults: %+v", cfg)
			}
			if len(parsed.Sources) != 0 || parsed.Refresh != config.Default().Refresh {
				t.Errorf("exporter defaults: %+v", parsed)
			}
		}},
		{"cloudcarbon/all", func(t *testing.T, cfg *Config, parsed *config.Config) {
			if cfg.CollectionInterval != 5*time.Minute || cfg.InitialDelay != 10*time.Second || cfg.HistoryMonths != 25 {
				t.Errorf("receiver keys: %+v", cfg)
			}
			if cfg.StorageID == nil || *cfg.StorageID != component.MustNewID("file_storage") {
				t.Errorf("storage = %v", cfg.StorageID)
			}
			r := parsed.Refresh
			if r.Interval != 2*time.Hour || r.IdleInterval != 12*time.Hour || r.MaxConcurrency != 4 || r.Jitter != config.DefaultJitter {
				t.Errorf("refresh: %+v", r)
			}
			if len(parsed.Sources) != 3 {
				t.Fatalf("sources: %+v", parsed.Sources)
			}
			acme, other := parsed.Sources[0].Config.(*ibm.Config), parsed.Sources[1].Config.(*ibm.Config)
			if acme.Name != "acme" || acme.APIKey.Value() != testIBMKey || acme.EnterpriseID != testEnterprise || acme.PageConcurrency != ibm.DefaultPageConcurrency {
				t.Errorf("ibm acme: %+v (enterprise %q)", acme, acme.EnterpriseID)
			}
			if other.APIKey.Value() != testIBMKey || other.PageConcurrency != 2 || other.APIURL != ibm.DefaultAPIURL {
				t.Errorf("ibm other: %+v", other)
			}
			if scw := parsed.Sources[2].Config.(*scaleway.Config); scw.Name != "scaleway" || scw.SecretKey.Value() != testSCWSecret {
				t.Errorf("scaleway: %+v", scw)
			}
		}},
		{"cloudcarbon/demo", func(t *testing.T, cfg *Config, parsed *config.Config) {
			if !cfg.Demo || len(parsed.Sources) != 0 {
				t.Errorf("demo: %+v, %+v", cfg, parsed)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			cfg, err := loadConfig(t, filepath.Join("testdata", "config.yaml"), tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if err := confmap.Validate(cfg); err != nil {
				t.Fatal(err)
			}
			parsed, err := cfg.parse(func(string) string { return testIBMKey })
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg, parsed)
		})
	}
}

// TestInvalidConfig: every problem of the exporter's sections is the
// plug-in's or the exporter parser's message, at its path in the
// receiver's configuration; the receiver's own keys are the Collector's
// to report.
func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		id, want string
		// unmarshal marks an error of the Collector's decoding, before
		// validation.
		unmarshal bool
	}{
		{id: "unknown_key", want: `ibm::0::api_urll: unknown field "api_urll" in ibm entry; known fields are name, api_key, api_key_file, api_key_env, enterprise_id, enterprise_group_id, enterprise_account_id, account_name, api_url, iam_url, page_concurrency, provisional, usage_reports_url, enterprise_usage_reports_url`},
		{id: "bad_value", want: "ibm::0::page_concurrency: ibm.page_concurrency must be a whole number"},
		{id: "secret_in_url", want: "ibm::0::api_url: ibm.api_url must not contain a user name or password"},
		{id: "missing_key", want: `ibm::0: ibm entry "ibm" has no API key; set one of api_key_env, api_key_file or api_key`},
		{id: "two_keys", want: `scaleway::0::secret_key_env: scaleway entry "scaleway" sets secret_key and secret_key_env; set only one of secret_key, secret_key_file and secret_key_env`},
		{id: "refresh", want: "refresh::interval: refresh.interval must be at least 1m\nrefresh::jitter: refresh.jitter must be between 0 and 0.5, a fraction of the interval"},
		{id: "section_shape", want: `ibm: ibm must be a list, one entry per item, each starting with "- "`},
		{id: "demo_and_clouds", want: "demo configures every cloud itself; remove the ibm section or demo"},
		{id: "history", want: "history_months must be between 1 and 120"},
		{id: "receiver_key", want: "has invalid keys: collection_intervall", unmarshal: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			cfg, err := loadConfig(t, filepath.Join("testdata", "invalid.yaml"), "cloudcarbon/"+tt.id)
			if tt.unmarshal {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("unmarshal error %v, want one containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = confmap.Validate(cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			for _, s := range testSecrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestSecretsNeverPrinted: secret keys are held as configopaque.String,
// so that neither printing nor marshalling the configuration, as the
// Collector does to show its effective configuration, reveals them; the
// parsed configuration redacts them too.
func TestSecretsNeverPrinted(t *testing.T) {
	cfg, err := loadConfig(t, filepath.Join("testdata", "config.yaml"), "cloudcarbon/all")
	if err != nil {
		t.Fatal(err)
	}
	conf := confmap.New()
	if err := conf.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	marshalled, err := yaml.Marshal(conf.ToStringMap())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(marshalled), "enterprise_id: \""+testEnterprise) || !strings.Contains(string(marshalled), "api_key: '[REDACTED]'") {
		t.Errorf("marshalled configuration:\n%s", marshalled)
	}
	parsed, err := cfg.parse(func(string) string { return testIBMKey })
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg),
		"marshalled": string(marshalled), "parsed": parsed.String(), "parsed %+v": fmt.Sprintf("%+v", parsed),
	} {
		for _, s := range testSecrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a secret:\n%s", what, text)
			}
		}
	}
}

// TestMarshalRoundTrip: the marshalled configuration reads back as the
// same configuration, secrets aside.
func TestMarshalRoundTrip(t *testing.T) {
	cfg, err := loadConfig(t, filepath.Join("testdata", "config.yaml"), "cloudcarbon/all")
	if err != nil {
		t.Fatal(err)
	}
	conf := confmap.New()
	if err := conf.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	back := NewFactory().CreateDefaultConfig().(*Config)
	if err := conf.Unmarshal(back); err != nil {
		t.Fatal(err)
	}
	if back.CollectionInterval != cfg.CollectionInterval || *back.StorageID != *cfg.StorageID || back.HistoryMonths != cfg.HistoryMonths {
		t.Errorf("read back %+v, want %+v", back, cfg)
	}
	if got, want := fmt.Sprint(back.Sections), fmt.Sprint(cfg.Sections); got != want {
		t.Errorf("sections read back as\n%s\nwant\n%s", got, want)
	}
}

// TestDocumentedConfigurations: the configuration in this README and the
// demo configuration in examples/ are valid.
func TestDocumentedConfigurations(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(readme), "\n```yaml\n")
	block, _, ok := strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("no yaml block in README.md")
	}
	readmeConfig := filepath.Join(t.TempDir(), "readme.yaml")
	if err := os.WriteFile(readmeConfig, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IBM_CLOUD_API_KEY", testIBMKey)
	t.Setenv("AZURE_CLIENT_SECRET", "azure-s3cr3t")
	for _, file := range []string{readmeConfig, filepath.Join("..", "..", "examples", "otelcol-cloudcarbon-demo.yaml")} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := loadConfig(t, file, "receivers::cloudcarbon")
			if err != nil {
				t.Fatal(err)
			}
			if err := confmap.Validate(cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
)

// canary stands for an API key; it must never show up in any output.
const canary = "CANARY-7f3a9c-SECRET"

func testEnv(name string) string {
	if name == "IBM_CLOUD_API_KEY" {
		return canary
	}
	return ""
}

// parseFile parses a file under testdata/config the way Load does, with
// testEnv as the environment. Tests that use it run from the module root, so
// that messages carry the paths users see.
func parseFile(t *testing.T, name string) (*Config, error) {
	t.Helper()
	path := filepath.Join("testdata", "config", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, path, testEnv, clouds.All())
}

// cloudNames lists the clouds' sections as the top level's known fields
// name them, so that adding a cloud needs no change here.
func cloudNames() string {
	var names []string
	for _, pl := range clouds.All() {
		names = append(names, pl.Name)
	}
	return strings.Join(names, ", ")
}

// entries returns the configurations of the sources of one cloud.
func entries[T any](c *Config, cloud string) []*T {
	var out []*T
	for _, s := range c.Sources {
		if s.Provider == cloud {
			out = append(out, s.Config.(any).(*T))
		}
	}
	return out
}

func TestInvalid(t *testing.T) {
	t.Chdir("..")
	const d = "testdata/config/"
	tests := map[string]string{
		"invalid-unknown-field.yml":     d + `invalid-unknown-field.yml:4: unknown field "api_kye" in ibm entry; known fields are name, api_key, api_key_file, api_key_env, enterprise_id, enterprise_group_id, enterprise_account_id, account_name, api_url, iam_url, page_concurrency, provisional, usage_reports_url, enterprise_usage_reports_url`,
		"invalid-unknown-top-level.yml": d + `invalid-unknown-top-level.yml:3: unknown field "ibm_cloud" at the top level; known fields are refresh, otlp, ` + cloudNames(),
		"invalid-otlp.yml": d + `invalid-otlp.yml:3: otlp.interval must be greater than 0` + "\n" +
			d + `invalid-otlp.yml:4: otlp.endpoint must be host:port or an http:// or https:// URL`,
		"invalid-azure-secret.yml": d + `invalid-azure-secret.yml:2: azure entry "azure" has credential client_secret but no client_id; set the application (client) id of the app registration` + "\n" +
			d + `invalid-azure-secret.yml:2: azure entry "azure" has no client secret; set one of client_secret_env, client_secret_file or client_secret`,
		"invalid-azure-default.yml": d + `invalid-azure-default.yml:3: azure entry "azure" sets client_id, which credential default does not use` + "\n" +
			d + `invalid-azure-default.yml:4: azure.cloud must be public, china or usgovernment` + "\n" +
			d + `invalid-azure-default.yml:5: azure.resource_manager_endpoint must be an https:// URL: the Azure SDK sends tokens only over TLS` + "\n" +
			d + `invalid-azure-default.yml:8: azure.subscriptions entry 2 is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)` + "\n" +
			d + `invalid-azure-default.yml:9: azure.subscriptions lists 11111111-2222-3333-4444-555555555555 twice`,
		"invalid-azure-nosubs.yml": d + `invalid-azure-nosubs.yml:2: azure entry "tenant-a" has no subscriptions; list them in subscriptions or set list_subscriptions: true` + "\n" +
			d + `invalid-azure-nosubs.yml:4: azure.credential must be default, client_secret or client_certificate` + "\n" +
			d + `invalid-azure-nosubs.yml:6: name "tenant-a" is already used at line 2; source names must be unique`,
		"invalid-gcp.yml": d + `invalid-gcp.yml:2: gcp.project is not a project id (6 to 30 small letters, digits and hyphens, such as my-project-123)` + "\n" +
			d + `invalid-gcp.yml:2: gcp entry "gcp" has no carbon_table; set the Carbon Footprint export's project.dataset.table, e.g. my-project.carbon.carbon_footprint` + "\n" +
			d + `invalid-gcp.yml:3: gcp.billing_table must be project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX` + "\n" +
			d + `invalid-gcp.yml:4: gcp.max_bytes_billed must be at least 10485760 (10 MiB), BigQuery's minimum charge per query` + "\n" +
			d + `invalid-gcp.yml:5: gcp.billing_account must look like 012345-6789AB-CDEF01`,
		"invalid-too-fast.yml": d + `invalid-too-fast.yml:2: refresh.interval must be at least 1m` + "\n" +
			d + `invalid-too-fast.yml:3: refresh.idle_interval must be at least 1m` + "\n" +
			d + `invalid-too-fast.yml:4: refresh.backoff_min must be at least 1s` + "\n" +
			d + `invalid-too-fast.yml:6: otlp.interval must be at least 1s`,
		"invalid-unknown-refresh.yml": d + `invalid-unknown-refresh.yml:2: unknown field "intervall" in refresh; known fields are interval, idle_interval, jitter, timeout, backoff_min, backoff_max, max_concurrency`,
		"invalid-duration.yml":        d + `invalid-duration.yml:2: refresh.interval must be a duration such as "6h", "30m" or "90s"`,
		"invalid-duration-zero.yml": d + `invalid-duration-zero.yml:2: refresh.timeout must be greater than 0` + "\n" +
			d + `invalid-duration-zero.yml:3: refresh.backoff_min must be greater than 0`,
		"invalid-idle-shorter.yml":          d + `invalid-idle-shorter.yml:3: refresh.idle_interval (6h) must not be shorter than refresh.interval (12h): interval applies while a month is due to be published, idle_interval the rest of the time`,
		"invalid-idle-default-shorter.yml":  d + `invalid-idle-default-shorter.yml:2: refresh.idle_interval (24h) must not be shorter than refresh.interval (48h): interval applies while a month is due to be published, idle_interval the rest of the time`,
		"invalid-backoff.yml":               d + `invalid-backoff.yml:2: refresh.backoff_min (2h) must not be longer than refresh.backoff_max (1h)`,
		"invalid-jitter.yml":                d + `invalid-jitter.yml:2: refresh.jitter must be between 0 and 0.5, a fraction of the interval`,
		"invalid-jitter-type.yml":           d + `invalid-jitter-type.yml:2: refresh.jitter must be a number`,
		"invalid-max-concurrency.yml":       d + `invalid-max-concurrency.yml:2: refresh.max_concurrency must be from 1 to 64`,
		"invalid-max-concurrency-large.yml": d + `invalid-max-concurrency-large.yml:2: refresh.max_concurrency must be from 1 to 64`,
		"invalid-port.yml": d + `invalid-port.yml:2: otlp.endpoint must have a port from 1 to 65535` + "\n" +
			d + `invalid-port.yml:5: ibm.api_url must have a port from 1 to 65535` + "\n" +
			d + `invalid-port.yml:6: ibm.iam_url must have a port from 1 to 65535`,
		"invalid-max-concurrency-type.yml": d + `invalid-max-concurrency-type.yml:2: refresh.max_concurrency must be a whole number`,
		"invalid-secret-in-wrong-field.yml": d + `invalid-secret-in-wrong-field.yml:3: refresh.max_concurrency must be a whole number` + "\n" +
			d + `invalid-secret-in-wrong-field.yml:4: refresh.timeout must be a duration such as "6h", "30m" or "90s"`,
		"invalid-api-key-type.yml":           d + `invalid-api-key-type.yml:2: ibm.api_key must be a single string`,
		"invalid-syntax.yml":                 d + `invalid-syntax.yml:4: invalid YAML: mapping values are not allowed in this context`,
		"invalid-syntax-quote.yml":           d + `invalid-syntax-quote.yml:3: invalid YAML: found unexpected end of stream`,
		"invalid-duplicate-key.yml":          d + `invalid-duplicate-key.yml:4: duplicate key "api_key", already set at line 3`,
		"invalid-duplicate-name.yml":         d + `invalid-duplicate-name.yml:4: name "prod" is already used at line 2; source names must be unique`,
		"invalid-duplicate-default-name.yml": d + `invalid-duplicate-default-name.yml:4: the default name "ibm-2" of this ibm entry is already used at line 2; give the entry a unique name`,
		"invalid-name.yml":                   d + `invalid-name.yml:2: ibm.name must contain only lowercase letters, digits, '_' and '-'`,
		"invalid-no-key.yml":                 d + `invalid-no-key.yml:2: ibm entry "prod" has no API key; set one of api_key_env, api_key_file or api_key`,
		"invalid-two-keys.yml":               d + `invalid-two-keys.yml:4: ibm entry "prod" sets api_key and api_key_env; set only one of api_key, api_key_file and api_key_env`,
		"invalid-key-file-missing.yml":       d + `invalid-key-file-missing.yml:2: ibm.api_key_file names no existing file (the value is not shown, in case it is the API key itself)`,
		"invalid-key-file-empty.yml":         d + `invalid-key-file-empty.yml:2: ibm.api_key_file "testdata/config/empty-key.txt" is empty; it must contain the API key`,
		"invalid-key-env-unset.yml":          d + `invalid-key-env-unset.yml:2: ibm.api_key_env names the environment variable "UNSET_VARIABLE", which is unset or empty; set it or use api_key_file`,
		"invalid-key-empty.yml":              d + `invalid-key-empty.yml:2: ibm.api_key is empty`,
		"invalid-overlap.yml": d + `invalid-overlap.yml:5: ibm entries "prod" and "prod-again" both read enterprise 0123456789abcdef0123456789abcdef: every figure of it would be counted twice; remove one, or give each a part of its own` + "\n" +
			d + `invalid-overlap.yml:16: gcp entries "carbon" and "carbon-3" both read the Carbon Footprint export carbon-prod.carbon.carbon_footprint: every figure of it would be counted twice; remove one, or give each a part of its own` + "\n" +
			d + `invalid-overlap.yml:22: aws entries "one" and "two" both read the accounts of role arn:aws:iam::123456789012:role/carbon: every figure of it would be counted twice; remove one, or give each a part of its own` + "\n" +
			d + `invalid-overlap.yml:28: azure entries "a" and "b" both read subscription 5b25ef0a-4d9d-46aa-a750-1c5e3b79cc2c: every figure of it would be counted twice; remove one, or give each a part of its own`,
		"invalid-enterprise-two.yml": d + `invalid-enterprise-two.yml:4: ibm entry "ibm" sets both enterprise_id and enterprise_account_id; set at most one of enterprise_id, enterprise_group_id and enterprise_account_id`,
		"invalid-enterprise-id.yml":  d + `invalid-enterprise-id.yml:3: ibm.enterprise_group_id must be 32 lowercase letters and digits, as shown by the IBM Cloud console`,
		"invalid-url.yml": d + `invalid-url.yml:4: ibm.api_url must be an absolute http:// or https:// URL` + "\n" +
			d + `invalid-url.yml:5: ibm.iam_url must be an absolute http:// or https:// URL` + "\n" +
			d + `invalid-url.yml:8: ibm.api_url must not contain a user name or password` + "\n" +
			d + `invalid-url.yml:9: ibm.iam_url must not contain a query` + "\n" +
			d + `invalid-url.yml:12: ibm.api_url must not contain a fragment` + "\n" +
			d + `invalid-url.yml:13: ibm.iam_url is not a valid URL`,
		"invalid-anchor.yml":                 d + `invalid-anchor.yml: invalid YAML: unknown anchor (not shown) referenced`,
		"invalid-duplicate-secret-key.yml":   d + `invalid-duplicate-secret-key.yml:4: duplicate key, already set at line 3`,
		"invalid-file-name-too-long.yml":     d + `invalid-file-name-too-long.yml:2: oci.config_file cannot be read (file name too long); the path is not shown, in case it is a credential pasted in its place`,
		"invalid-file-not-directory.yml":     d + `invalid-file-not-directory.yml:4: gcp.credentials_file cannot be read (not a directory); the path is not shown, in case it is a credential pasted in its place`,
		"invalid-file-pem.yml":               d + `invalid-file-pem.yml:2: oci.config_file cannot be read (no such file or directory); the path is not shown, in case it is a credential pasted in its place`,
		"invalid-key-env-secret.yml":         d + `invalid-key-env-secret.yml:2: ibm.api_key_env names an environment variable that is unset or empty; set it or use api_key_file (the name is not shown: it is not in capitals and underscores, such as IBM_CLOUD_API_KEY, and may be the API key itself)`,
		"invalid-key-file-not-directory.yml": d + `invalid-key-file-not-directory.yml:2: ibm.api_key_file cannot be read (not a directory); the path is not shown, in case it is the API key itself`,
		"invalid-name-secret.yml": d + `invalid-name-secret.yml:2: ibm.name must contain only lowercase letters, digits, '_' and '-'` + "\n" +
			d + `invalid-name-secret.yml:2: ibm entry "ibm" has no API key; set one of api_key_env, api_key_file or api_key`,
		"invalid-tag.yml":                   d + `invalid-tag.yml: invalid YAML: cannot decode !!str (not shown) as a !!float`,
		"invalid-multiple-documents.yml":    d + `invalid-multiple-documents.yml:3: a second YAML document starts here; put the whole configuration in one document`,
		"invalid-not-mapping.yml":           d + `invalid-not-mapping.yml:1: the configuration must be a mapping of keys such as refresh and ibm, not a list`,
		"invalid-ibm-not-list.yml":          d + `invalid-ibm-not-list.yml:1: ibm must be a list, one entry per item, each starting with "- "`,
		"invalid-ibm-entry-not-mapping.yml": d + `invalid-ibm-entry-not-mapping.yml:2: ibm entry must be a mapping of keys`,
		"invalid-refresh-not-mapping.yml":   d + `invalid-refresh-not-mapping.yml:1: refresh must be a mapping of keys`,
		"invalid-many.yml": d + `invalid-many.yml:3: refresh.interval must be greater than 0` + "\n" +
			d + `invalid-many.yml:4: refresh.jitter must be between 0 and 0.5, a fraction of the interval` + "\n" +
			d + `invalid-many.yml:6: ibm entry "prod" has no API key; set one of api_key_env, api_key_file or api_key` + "\n" +
			d + `invalid-many.yml:7: name "prod" is already used at line 6; source names must be unique` + "\n" +
			d + `invalid-many.yml:9: ibm entry "prod" sets api_key and api_key_file; set only one of api_key, api_key_file and api_key_env` + "\n" +
			d + `invalid-many.yml:10: ibm.enterprise_id must be 32 lowercase letters and digits, as shown by the IBM Cloud console`,
	}

	files, err := filepath.Glob("testdata/config/invalid-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected error in this table", f)
		}
	}

	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseFile(t, name)
			if err == nil {
				t.Fatalf("got no error and %v, want:\n%s", c, want)
			}
			if got := err.Error(); got != want {
				t.Errorf("got error:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Errorf("error reveals a secret:\n%s", err)
			}
			if c != nil {
				t.Errorf("got config %v with the error, want nil", c)
			}
		})
	}
}

func TestValid(t *testing.T) {
	t.Chdir("..")
	refresh := defaultRefresh()
	otlp := Default().OTLP
	ibmEntry := func(a ibm.Config) provider.SourceConfig {
		if a.APIURL == "" {
			a.APIURL = ibm.DefaultAPIURL
		}
		if a.IAMURL == "" {
			a.IAMURL = ibm.DefaultIAMURL
		}
		if a.PageConcurrency == 0 {
			a.PageConcurrency = ibm.DefaultPageConcurrency
		}
		return &a
	}
	type want struct {
		refresh Refresh
		otlp    OTLP
		sources []provider.SourceConfig
	}
	tests := map[string]want{
		"valid-empty.yml": {refresh, otlp, nil},
		"valid-minimal.yml": {refresh, otlp, []provider.SourceConfig{
			ibmEntry(ibm.Config{Name: "ibm", APIKey: canary, APIKeyEnv: "IBM_CLOUD_API_KEY"}),
		}},
		"valid-full.yml": {
			Refresh{
				Interval:       2 * time.Hour,
				IdleInterval:   12 * time.Hour,
				Jitter:         0,
				Timeout:        5 * time.Minute,
				BackoffMin:     30 * time.Second,
				BackoffMax:     2 * time.Hour,
				MaxConcurrency: 4,
			},
			OTLP{Enabled: true, Interval: 30 * time.Second, Endpoint: "collector.example:4317", Insecure: true,
				Timeout: 5 * time.Second, Headers: map[string]Secret{"authorization": "Bearer CANARY-otlp-token"}},
			[]provider.SourceConfig{&ibm.Config{
				Name:            "enterprise_main",
				APIKey:          canary,
				APIKeyFile:      "ibm-key.txt",
				EnterpriseID:    "0123456789abcdef0123456789abcdef",
				AccountName:     "Main enterprise",
				APIURL:          "http://127.0.0.1:8080/carbon/",
				IAMURL:          "https://private.iam.cloud.ibm.com",
				PageConcurrency: ibm.DefaultPageConcurrency,
			}},
		},
		"valid-several.yml": {refresh, otlp, []provider.SourceConfig{
			ibmEntry(ibm.Config{Name: "ibm-1", APIKey: canary, APIKeyEnv: "IBM_CLOUD_API_KEY"}),
			ibmEntry(ibm.Config{Name: "group-a", APIKey: "CANARY-inline-key", EnterpriseGroupID: "abcdefabcdefabcdefabcdefabcdef01"}),
			ibmEntry(ibm.Config{Name: "ibm-3", APIKey: canary, APIKeyFile: "ibm-key.txt", EnterpriseAccountID: "0123456789abcdef0123456789abcdef"}),
		}},
		"valid-azure.yml": {refresh, otlp, []provider.SourceConfig{
			&azure.Config{Name: "contoso", Credential: "client_secret", TenantID: "contoso.onmicrosoft.com", ClientID: "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70",
				ClientSecret: canary, ClientSecretEnv: "IBM_CLOUD_API_KEY", Cloud: "public", RequestBudget: 500, AllocateTop: provider.DefaultAllocationTop,
				Subscriptions: []string{"11111111-2222-3333-4444-555555555555", "abcdefab-2222-3333-4444-555555555555"}},
			&azure.Config{Name: "msi", Credential: "default", Cloud: "usgovernment", ListSubscriptions: true, RequestBudget: 50, AllocateTop: provider.DefaultAllocationTop},
		}},
		"valid-gcp.yml": {refresh, otlp, []provider.SourceConfig{
			&gcp.Config{Name: "gcp", Project: "acme-carbon", CarbonTable: "acme-carbon.carbon.carbon_footprint",
				BillingTable: "acme-billing.billing.gcp_billing_export_v1_012345_6789AB_CDEF01", BillingAccount: "012345-6789AB-CDEF01",
				Location: "EU", MaxBytesBilled: gcp.DefaultMaxBytesBilled},
		}},
		"valid-anchors.yml": {refresh, otlp, []provider.SourceConfig{
			ibmEntry(ibm.Config{Name: "first", APIKey: canary, APIKeyEnv: "IBM_CLOUD_API_KEY", IAMURL: "https://private.iam.cloud.ibm.com"}),
			ibmEntry(ibm.Config{Name: "second", APIKey: canary, APIKeyEnv: "IBM_CLOUD_API_KEY", IAMURL: "https://private.iam.cloud.ibm.com", EnterpriseID: "0123456789abcdef0123456789abcdef"}),
		}},
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseFile(t, name)
			if err != nil {
				t.Fatal(err)
			}
			var sources []provider.SourceConfig
			for _, s := range got.Sources {
				sources = append(sources, s.Config)
			}
			if !reflect.DeepEqual(got.Refresh, want.refresh) || !reflect.DeepEqual(got.OTLP, want.otlp) || !reflect.DeepEqual(sources, want.sources) {
				t.Errorf("got (API keys compared by value, shown redacted):\n%#v\n%#v\n%#v\nwant:\n%#v", got.Refresh, got.OTLP, sources, want)
			}
			// Every secret in these files starts with CANARY.
			for _, out := range []string{got.String(), fmt.Sprintf("%v %+v %#v", got, got, got)} {
				if strings.Contains(out, "CANARY") {
					t.Errorf("a secret is printed:\n%s", out)
				}
			}
		})
	}
}

// TestDocuments covers what a file can hold besides one mapping.
func TestDocuments(t *testing.T) {
	tests := []struct {
		name, data, err string
	}{
		{name: "empty", data: ""},
		{name: "comments only", data: "# nothing yet\n"},
		{name: "document start only", data: "---\n"},
		{name: "null", data: "~\n"},
		{name: "explicit document end", data: "refresh: {}\n...\n"},
		{name: "null sections", data: "refresh:\nibm:\n"},
		{name: "second document", data: "refresh: {}\n---\nibm: []\n", err: "c.yml:2: a second YAML document starts here; put the whole configuration in one document"},
		{name: "scalar", data: "ibm\n", err: "c.yml:1: the configuration must be a mapping of keys such as refresh and ibm, not a single value"},
		{name: "unknown anchor", data: "ibm: *x\n", err: "c.yml: invalid YAML: unknown anchor 'x' referenced"},
		{name: "float into int", data: "refresh: {max_concurrency: 2.0}\n", err: "c.yml:1: refresh.max_concurrency must be a whole number"},
		{name: "flow style", data: "refresh: {interval: 1h, idle_interval: soon}\n", err: `c.yml:1: refresh.idle_interval must be a duration such as "6h", "30m" or "90s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), "c.yml", testEnv, clouds.All())
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := Default(); !reflect.DeepEqual(c.Refresh, want.Refresh) || !reflect.DeepEqual(c.OTLP, want.OTLP) || len(c.Sources) > 0 {
				t.Errorf("got %#v, want defaults %#v", c, want)
			}
		})
	}
}

// TestExample keeps the defaults stated in the file users copy equal to the
// code's, and every key documented there. Each cloud's section is checked
// the same way by the conformance suite (provider/providertest).
func TestExample(t *testing.T) {
	text := Example(clouds.All())
	example, err := Parse([]byte(text), "example.yml", testEnv, clouds.All())
	if err != nil {
		t.Fatal(err)
	}
	empty, err := Parse(nil, "empty.yml", testEnv, clouds.All())
	if err != nil {
		t.Fatal(err)
	}
	if example.Refresh != empty.Refresh || example.Refresh != Default().Refresh {
		t.Errorf("the example states refresh defaults\n%+v\nbut the code has\n%+v", example.Refresh, empty.Refresh)
	}
	if !reflect.DeepEqual(example.OTLP, empty.OTLP) {
		t.Errorf("the example states otlp defaults\n%+v\nbut the code has\n%+v", example.OTLP, empty.OTLP)
	}
	// Refresh defaults are compared above only if the example sets every key.
	var raw struct {
		Refresh map[string]any `yaml:"refresh"`
	}
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatal(err)
	}
	l, err := newLayout(clouds.All())
	if err != nil {
		t.Fatal(err)
	}
	s := sections(l.typ)
	for _, k := range s["config.Refresh"].keys {
		if _, ok := raw.Refresh[k]; !ok {
			t.Errorf("the example does not set refresh.%s", k)
		}
	}
	for _, k := range s["config.OTLP"].keys {
		if !strings.Contains(text, k+":") {
			t.Errorf("the example does not document otlp.%s", k)
		}
	}
	for _, pl := range clouds.All() {
		if !strings.Contains(text, "\n"+pl.Name+":\n") {
			t.Errorf("the example has no %s section", pl.Name)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloudcarbon_exporter.yml")
	if err := os.WriteFile(path, []byte(Example(clouds.All())), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IBM_CLOUD_API_KEY", canary)
	c, err := Load(path, clouds.All())
	if err != nil {
		t.Fatal(err)
	}
	if got := entries[ibm.Config](c, "ibm")[0].APIKey.Value(); got != canary {
		t.Errorf("got key %q from the environment, want %q", got, canary)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "no-such-file.yml"), clouds.All()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v for a missing file, want an error wrapping fs.ErrNotExist", err)
	}
}

// TestSecretsNotRevealed checks every way a loaded config is printed, for a
// key given inline, in a file and in the environment.
func TestSecretsNotRevealed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"inline": "ibm:\n  - api_key: " + canary + "\n",
		"file":   "ibm:\n  - api_key_file: key\n",
		"env":    "ibm:\n  - api_key_env: IBM_CLOUD_API_KEY\n",
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(data), filepath.Join(dir, "c.yml"), testEnv, clouds.All())
			if err != nil {
				t.Fatal(err)
			}
			entry := entries[ibm.Config](c, "ibm")[0]
			if got := entry.APIKey.Value(); got != canary {
				t.Fatalf("got key %q, want %q", got, canary)
			}
			var out bytes.Buffer
			fmt.Fprintf(&out, "%v %+v %#v %s %q %x\n", c, c, c, c, c, c)
			fmt.Fprintf(&out, "%v %+v %#v\n", *c, *c, *c)
			fmt.Fprintf(&out, "%v %+v %#v %v\n", entry, entry, entry, *entry)
			out.WriteString(c.String())
			out.WriteString(c.Hash())
			j, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(j)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("loaded", "config", c, "account", entry, "key", entry.APIKey)
			slog.New(slog.NewTextHandler(&out, nil)).Info("loaded", "config", c, "account", entry, "key", entry.APIKey)
			if strings.Contains(out.String(), canary) {
				t.Errorf("output reveals the secret:\n%s", out.String())
			}
			if !strings.Contains(c.String(), "api_key: <secret>") {
				t.Errorf("String() does not show the redacted key:\n%s", c)
			}
		})
	}
}

// TestKeyFileErrors checks that a key file that cannot be used is named
// by its key, never by its path or content, and that none blocks the load.
func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat(canary, maxKeyFileSize/len(canary)+1)
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"big": "c.yml:1: ibm.api_key_file cannot be read (larger than 65536 bytes; it must hold only the credential); the path is not shown, in case it is the API key itself",
		".":   "c.yml:1: ibm.api_key_file cannot be read (not a regular file); the path is not shown, in case it is the API key itself",
		// A pipe would block the load until something writes to it.
		"fifo": "c.yml:1: ibm.api_key_file cannot be read (not a regular file); the path is not shown, in case it is the API key itself",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Parse([]byte("ibm: [{api_key_file: "+file+"}]\n"), filepath.Join(dir, "c.yml"), testEnv, clouds.All())
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			// Let the blocked load go before failing.
			if w, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			t.Fatalf("%s: the load blocked", file)
		}
		if err == nil {
			t.Fatalf("%s: got no error", file)
		}
		got := strings.ReplaceAll(err.Error(), filepath.Join(dir, "c.yml"), "c.yml")
		if got != want {
			t.Errorf("got error\n%s\nwant\n%s", got, want)
		}
		if strings.Contains(got, "CANARY") {
			t.Errorf("error reveals the file's content: %s", got)
		}
	}
}

func TestHash(t *testing.T) {
	parse := func(data string, getenv func(string) string) string {
		t.Helper()
		c, err := Parse([]byte(data), "c.yml", getenv, clouds.All())
		if err != nil {
			t.Fatal(err)
		}
		return c.Hash()
	}
	base := parse("ibm:\n- api_key_env: IBM_CLOUD_API_KEY\n", testEnv)
	if len(base) != 64 {
		t.Errorf("got hash %q, want 64 hex digits", base)
	}
	same := parse("# IBM production\n\nibm:\n  - api_key_env:   IBM_CLOUD_API_KEY   # from the vault\n\n", testEnv)
	if same != base {
		t.Error("hash changed when only comments and whitespace did")
	}
	rotated := parse("ibm:\n- api_key_env: IBM_CLOUD_API_KEY\n", func(string) string { return "rotated" })
	if rotated == base {
		t.Error("hash did not change when the API key did")
	}
	if parse("refresh: {interval: 5h}\nibm:\n- api_key_env: IBM_CLOUD_API_KEY\n", testEnv) == base {
		t.Error("hash did not change when refresh did")
	}
}

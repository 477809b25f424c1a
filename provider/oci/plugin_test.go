package oci_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
)

// parse parses text as the file dir/c.yml, with the oci plug-in only and
// OCI_TEST_PASSPHRASE holding the canary.
func parse(dir, text string) (*config.Config, error) {
	getenv := func(k string) string {
		if k == "OCI_TEST_PASSPHRASE" {
			return canary
		}
		return ""
	}
	return config.Parse([]byte(text), filepath.Join(dir, "c.yml"), getenv, []provider.Plugin{oci.Plugin()})
}

// configCase is an oci section as a user writes it, and what it gives:
// want edits the defaults into the configuration expected.
type configCase struct {
	name, text string
	want       func(c *oci.Config)
	wantErr    string
}

// TestConfig checks the oci section as users write it, through the real
// configuration parser: defaults, and a clear message at the right line
// for every mistake.
func TestConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	write(t, filepath.Join(home, ".oci", "config"), "[DEFAULT]\n")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "oci", "config"), "[DEFAULT]\n")
	write(t, filepath.Join(dir, "passphrase"), canary+"\n")
	defaults := oci.Config{Name: "oci", Auth: "config_file", ConfigFile: filepath.Join(home, ".oci", "config"), Profile: "DEFAULT",
		EmissionCalculationMethod: "power_based", CompartmentDepth: 6, AllocateTop: provider.DefaultAllocationTop}

	for _, tt := range configCases(dir) {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(dir, tt.text)
			if tt.wantErr != "" {
				if want := filepath.Join(dir, tt.wantErr); err == nil || err.Error() != want {
					t.Fatalf("err %v\nwant %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("the secret is in the message: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			tt.want(&want)
			if got := *c.Sources[0].Config.(*oci.Config); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
			if s := c.String(); strings.Contains(s, canary) {
				t.Errorf("the printed configuration holds the secret:\n%s", s)
			}
		})
	}
}

// configCases are the cases of TestConfig, whose files lie in dir.
func configCases(dir string) []configCase {
	return append(goodConfigs(dir), badConfigs(dir)...)
}

// goodConfigs are sections that load.
func goodConfigs(dir string) []configCase {
	return []configCase{
		{
			name: "defaults: ~/.oci/config, profile DEFAULT, power-based, every compartment",
			text: "oci:\n  - {}\n",
			want: func(*oci.Config) {},
		},
		{
			name: "a relative config file, a profile and a passphrase from the environment",
			text: "oci:\n  - config_file: oci/config\n    profile: CARBON\n    private_key_passphrase_env: OCI_TEST_PASSPHRASE\n" +
				"    region: eu-frankfurt-1\n    tenancy_id: ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq\n",
			want: func(c *oci.Config) {
				c.ConfigFile, c.Profile, c.PrivateKeyPassphrase, c.PrivateKeyPassphraseEnv = filepath.Join(dir, "oci", "config"), "CARBON", canary, "OCI_TEST_PASSPHRASE"
				c.Region, c.TenancyID = "eu-frankfurt-1", "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq"
			},
		},
		{
			name: "a passphrase file",
			text: "oci:\n  - private_key_passphrase_file: passphrase\n",
			want: func(c *oci.Config) {
				c.PrivateKeyPassphrase, c.PrivateKeyPassphraseFile = canary, "passphrase"
			},
		},
		{
			name: "instance principal, spend-based, top-level compartments",
			text: "oci:\n  - auth: instance_principal\n    emission_calculation_method: spend_based\n    compartment_depth: 1\n    endpoint: https://usageapi.example.com/\n",
			want: func(c *oci.Config) {
				*c = oci.Config{Name: "oci", Auth: "instance_principal", Endpoint: "https://usageapi.example.com",
					EmissionCalculationMethod: "spend_based", CompartmentDepth: 1, AllocateTop: 100}
			},
		},
		{
			name: "provisional months",
			text: "oci:\n  - auth: instance_principal\n    provisional: true\n",
			want: func(c *oci.Config) {
				*c = oci.Config{Name: "oci", Auth: "instance_principal", EmissionCalculationMethod: "power_based", CompartmentDepth: 6, Provisional: true, AllocateTop: 100}
			},
		},
		{
			name: "allocation by a free-form and a defined tag, ten values each",
			text: "oci:\n  - auth: instance_principal\n    allocate_by: [team, Operations.CostCenter]\n    allocate_top: 10\n",
			want: func(c *oci.Config) {
				*c = oci.Config{Name: "oci", Auth: "instance_principal", EmissionCalculationMethod: "power_based", CompartmentDepth: 6,
					AllocateBy: []string{"team", "Operations.CostCenter"}, AllocateTop: 10}
			},
		},
		{
			name: "workload identity with a short region name",
			text: "oci:\n  - auth: workload_identity\n    region: iad\n",
			want: func(c *oci.Config) {
				*c = oci.Config{Name: "oci", Auth: "workload_identity", Region: "iad", EmissionCalculationMethod: "power_based", CompartmentDepth: 6, AllocateTop: 100}
			},
		},
	}
}

// badConfigs are mistakes, each with its message.
func badConfigs(dir string) []configCase {
	return []configCase{
		{
			name:    "unknown auth",
			text:    "oci:\n  - auth: api_key\n",
			wantErr: "c.yml:2: oci.auth must be config_file, instance_principal or workload_identity",
		},
		{
			name:    "a config file that is not there",
			text:    "oci:\n  - config_file: nope/config\n",
			wantErr: "c.yml:2: oci.config_file cannot be read (no such file or directory); the path is not shown, in case it is a credential pasted in its place",
		},
		{
			name:    "a config file with instance principals",
			text:    "oci:\n  - name: vm\n    auth: instance_principal\n    config_file: oci/config\n",
			wantErr: `c.yml:4: oci entry "vm" sets config_file, which only auth: config_file reads; auth instance_principal needs no key`,
		},
		{
			name:    "a passphrase with workload identity",
			text:    "oci:\n  - auth: workload_identity\n    private_key_passphrase_env: OCI_TEST_PASSPHRASE\n",
			wantErr: `c.yml:3: oci entry "oci" sets private_key_passphrase_env, which only auth: config_file reads; auth workload_identity needs no key`,
		},
		{
			name:    "a passphrase given twice",
			text:    "oci:\n  - private_key_passphrase_env: OCI_TEST_PASSPHRASE\n    private_key_passphrase_file: passphrase\n",
			wantErr: `c.yml:2: oci entry "oci" sets private_key_passphrase_file and private_key_passphrase_env; set only one of private_key_passphrase, private_key_passphrase_file and private_key_passphrase_env`,
		},
		{
			name:    "a profile in brackets",
			text:    "oci:\n  - profile: '[CARBON]'\n",
			wantErr: "c.yml:2: oci.profile must be a profile name as the OCI config file writes it between brackets, without the brackets",
		},
		{
			name:    "a region that is not one",
			text:    "oci:\n  - auth: instance_principal\n    region: US Ashburn\n",
			wantErr: "c.yml:3: oci.region must be a region identifier such as us-ashburn-1, or its short name such as iad",
		},
		{
			name:    "a compartment OCID for the tenancy",
			text:    "oci:\n  - auth: instance_principal\n    tenancy_id: ocid1.compartment.oc1..aaaaaaaa\n",
			wantErr: "c.yml:3: oci.tenancy_id must be a tenancy OCID such as ocid1.tenancy.oc1..aaaaaaaa…, as the console shows under Tenancy details",
		},
		{
			name:    "an endpoint with the API's path",
			text:    "oci:\n  - auth: instance_principal\n    endpoint: https://usageapi.us-ashburn-1.oci.oraclecloud.com/20200107\n",
			wantErr: "c.yml:3: oci.endpoint must not contain a path: the SDK adds /20200107 itself",
		},
		{
			name:    "an endpoint with a password",
			text:    "oci:\n  - auth: instance_principal\n    endpoint: https://user:" + canary + "@usageapi.example.com\n",
			wantErr: "c.yml:3: oci.endpoint must not contain a user name or password",
		},
		{
			name:    "an unknown method",
			text:    "oci:\n  - auth: instance_principal\n    emission_calculation_method: POWER_BASED\n",
			wantErr: "c.yml:3: oci.emission_calculation_method must be power_based (location-based and market-based, for the services Oracle meters by power) or spend_based (market-based only, for most services)",
		},
		{
			name:    "a depth of zero",
			text:    "oci:\n  - auth: instance_principal\n    compartment_depth: 0\n",
			wantErr: "c.yml:3: oci.compartment_depth must be from 1 (compartments under the root) to 6 (every compartment), not 0",
		},
		{
			name:    "a tag with two periods",
			text:    "oci:\n  - auth: instance_principal\n    allocate_by:\n      - team\n      - Operations.Cost.Center\n",
			wantErr: "c.yml:5: oci.allocate_by: an OCI tag is Namespace.key for a defined tag or key for a free-form tag; namespaces and keys hold no period",
		},
		{
			name:    "a tag without its namespace",
			text:    "oci:\n  - auth: instance_principal\n    allocate_by: [.team]\n",
			wantErr: "c.yml:3: oci.allocate_by: an OCI tag is Namespace.key for a defined tag or key for a free-form tag; namespaces and keys hold no period",
		},
		{
			name:    "an empty key",
			text:    "oci:\n  - auth: instance_principal\n    allocate_by: ['']\n",
			wantErr: "c.yml:3: allocate_by has an empty key or one with leading or trailing spaces",
		},
		{
			name:    "no values kept",
			text:    "oci:\n  - auth: instance_principal\n    allocate_by: [team]\n    allocate_top: 0\n",
			wantErr: "c.yml:4: allocate_top must be between 1 and 1000",
		},
		{
			name:    "a key file instead of a config file",
			text:    "oci:\n  - key_file: ~/.oci/key.pem\n",
			wantErr: `c.yml:2: unknown field "key_file" in oci entry; known fields are name, auth, config_file, profile, private_key_passphrase, private_key_passphrase_file, private_key_passphrase_env, region, tenancy_id, endpoint, emission_calculation_method, compartment_depth, provisional, allocate_by, allocate_top`,
		},
	}
}

// TestKeyRotation: the config file takes part in the configuration's
// hash, so that a reload after rotating it is not skipped.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	write(t, path, "[DEFAULT]\nfingerprint=aa\n")
	text := "oci:\n  - config_file: config\n"
	before, err := parse(dir, text)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "[DEFAULT]\nfingerprint=bb\n")
	after, err := parse(dir, text)
	if err != nil {
		t.Fatal(err)
	}
	if before.Hash() == after.Hash() {
		t.Error("the hash did not change with the config file")
	}
}

func TestIdentity(t *testing.T) {
	c := oci.Config{Name: "x", Auth: "config_file", ConfigFile: "/etc/oci/config", Profile: "CARBON", PrivateKeyPassphrase: canary,
		Region: "eu-frankfurt-1", TenancyID: tenancy, EmissionCalculationMethod: "power_based", CompartmentDepth: 6}
	got := c.Identity()
	want := "oci|auth=config_file|config=/etc/oci/config|profile=CARBON|region=eu-frankfurt-1|endpoint=|tenancy=" + tenancy + "|method=power_based|depth=6"
	if got != want {
		t.Errorf("identity %q, want %q", got, want)
	}
	ip := oci.Config{Auth: "instance_principal", EmissionCalculationMethod: "spend_based", CompartmentDepth: 2}
	if got, want := ip.Identity(), "oci|auth=instance_principal|region=|endpoint=|tenancy=|method=spend_based|depth=2"; got != want {
		t.Errorf("identity %q, want %q", got, want)
	}
}

// TestDemoClose: the demo's API key lives in a directory of its own,
// which Close removes.
func TestDemoClose(t *testing.T) {
	d, err := oci.Plugin().Demo(context.Background(), time.Now(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(d.Entries[0]["config_file"].(string))
	if _, err := os.Stat(filepath.Join(dir, "demo_api_key.pem")); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's key directory is still there: %v", err)
	}
}

// TestDemoAllocation: the demo source allocates by tags its tenancy
// carries, each with a few values and cost without it, read through the
// real client and the demo's own fake.
func TestDemoAllocation(t *testing.T) {
	now := time.Now()
	d, err := oci.Plugin().Demo(context.Background(), now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	text, err := yaml.Marshal(map[string]any{"oci": d.Entries})
	if err != nil {
		t.Fatal(err)
	}
	cfg, p := newSource(t, text)
	feed, ok := p.(provider.TagFeed)
	if !ok {
		t.Fatal("the demo source is no tag feed")
	}
	latest := provider.MonthOf(now) - 1
	for _, key := range cfg.(provider.AllocatingSource).Allocation().By {
		recs, err := feed.TagCosts(context.Background(), []provider.Month{latest - 1, latest}, key)
		if err != nil {
			t.Fatal(err)
		}
		values := map[string]bool{}
		for _, r := range recs {
			values[r.Value] = true
		}
		if n := len(values) - 1; !values[""] || n < 3 || n > 6 {
			t.Errorf("%s: values %v; want 3 to 6 and cost without the tag", key, values)
		}
	}
}

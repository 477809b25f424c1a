package oci_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
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
		EmissionCalculationMethod: "power_based", CompartmentDepth: 6}

	tests := []struct {
		name, text string
		want       func(c *oci.Config)
		wantErr    string
	}{
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
					EmissionCalculationMethod: "spend_based", CompartmentDepth: 1}
			},
		},
		{
			name: "workload identity with a short region name",
			text: "oci:\n  - auth: workload_identity\n    region: iad\n",
			want: func(c *oci.Config) {
				*c = oci.Config{Name: "oci", Auth: "workload_identity", Region: "iad", EmissionCalculationMethod: "power_based", CompartmentDepth: 6}
			},
		},
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
			name:    "a key file instead of a config file",
			text:    "oci:\n  - key_file: ~/.oci/key.pem\n",
			wantErr: `c.yml:2: unknown field "key_file" in oci entry; known fields are name, auth, config_file, profile, private_key_passphrase, private_key_passphrase_file, private_key_passphrase_env, region, tenancy_id, endpoint, emission_calculation_method, compartment_depth`,
		},
	}
	for _, tt := range tests {
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
			if got := *c.Sources[0].Config.(*oci.Config); got != want {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
			if s := c.String(); strings.Contains(s, canary) {
				t.Errorf("the printed configuration holds the secret:\n%s", s)
			}
		})
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

// TestDemo runs the demo source as the exporter does: its entry parsed
// and checked like a user's, the client built from it, a fetch over HTTP
// with every signature verified.
func TestDemo(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	var logs logbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := oci.Plugin().Demo(ctx, now, logger)
	if err != nil {
		t.Fatal(err)
	}
	text, err := yaml.Marshal(map[string]any{"oci": d.Entries})
	if err != nil {
		t.Fatal(err)
	}
	c, err := parse(t.TempDir(), string(text))
	if err != nil {
		t.Fatal(err)
	}
	src := c.Sources[0]
	p, err := src.Config.New(ctx, provider.Env{Name: src.Name(), Logger: logger, Connection: d.Connections[src.Name()]})
	if err != nil {
		t.Fatal(err)
	}
	ds := ocifake.Demo(now)
	latest := ocifake.LatestPublished(now)
	if got := p.Schedule().LatestPublished(now); got != latest {
		t.Errorf("the provider expects %s as the latest month, the fake %s", got, latest)
	}
	months := provider.Range(latest.Add(-13), latest)
	res, err := p.Fetch(ctx, months)
	if err != nil {
		t.Fatal(err)
	}
	locations := map[string]bool{}
	byMonth := map[provider.Month][2]float64{}
	for _, r := range res.Records {
		locations[r.Location] = true
		s := byMonth[r.Month]
		byMonth[r.Month] = [2]float64{s[0] + r.EmissionsGrams, s[1] + r.MarketBasedGrams}
		if r.Scope != provider.ScopeUnspecified || r.Known != provider.Emissions|provider.EmissionsMarketBased {
			t.Errorf("record %+v: want both methods, scope unspecified", r)
		}
	}
	if len(locations) != 4 || len(byMonth) != len(months) {
		t.Errorf("%d locations and %d months, want 4 and %d", len(locations), len(byMonth), len(months))
	}
	for m, got := range byMonth {
		if wl, wm := ds.TotalBase(m, ocifake.PowerBased); !near(got[0], wl) || !near(got[1], wm) || got[1] >= got[0] {
			t.Errorf("%s: %g g location-based, %g g market-based; want %g and %g", m, got[0], got[1], wl, wm)
		}
	}
	if len(res.Accounts) != len(ds.Compartments()) {
		t.Errorf("%d accounts, want %d", len(res.Accounts), len(ds.Compartments()))
	}
	if n := len(ds.Months()); n != ocifake.DemoMonths {
		t.Errorf("the demo has %d months, want %d", n, ocifake.DemoMonths)
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("warnings:\n%s", logs.String())
	}
	// Close removes the key.
	configFile := d.Entries[0]["config_file"].(string)
	d.Close()
	if _, err := os.Stat(filepath.Dir(configFile)); !os.IsNotExist(err) {
		t.Errorf("the demo's key directory is still there: %v", err)
	}
}

// TestExampleSection keeps the oci section of the configuration reference
// honest: it loads, its values are the defaults, and it documents every
// key.
func TestExampleSection(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "testdata", "config", "example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The section runs from its key to the next top-level key.
	_, section, ok := strings.Cut(string(example), "\noci:\n")
	if !ok {
		t.Fatal("example.yml has no oci section")
	}
	var lines []string
	for line := range strings.SplitSeq(section, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '#' {
			break
		}
		lines = append(lines, line)
	}
	text := "oci:\n" + strings.Join(lines, "\n")
	c, err := parse(t.TempDir(), text)
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := parse(t.TempDir(), "oci:\n  - auth: instance_principal\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *c.Sources[0].Config.(*oci.Config), *minimal.Sources[0].Config.(*oci.Config); got != want {
		t.Errorf("the example's entry is\n%+v\nwhich is not the defaults\n%+v", got, want)
	}
	for _, k := range []string{"name", "auth", "config_file", "profile", "private_key_passphrase", "private_key_passphrase_file",
		"private_key_passphrase_env", "region", "tenancy_id", "endpoint", "emission_calculation_method", "compartment_depth"} {
		if !strings.Contains(text, " "+k+":") {
			t.Errorf("the example does not document %s", k)
		}
	}
}

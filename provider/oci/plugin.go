package oci

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
)

// Name is the provider label value of oci data and the key of its
// configuration section.
const Name = "oci"

// example is the oci section of the example configuration.
//
//go:embed example.yml
var example string

// Plugin describes Oracle Cloud Infrastructure to the exporter.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name:      Name,
		Schedule:  publication(),
		NewConfig: func() provider.SourceConfig { return &Config{} },
		Demo:      demo,
		Example:   example,
		Methodology: provider.Methodology{
			Source: "OCI Usage API (RequestUsageCarbonEmissions)",
			Includes: "Estimated emissions of the tenancy's usage per compartment path, service and region, not split by scope. " +
				"power_based (the default): allocated energy times the region's grid factor, location-based and market-based, for the services Oracle meters by power; " +
				"spend_based: spend before discounts times a regional factor, market-based only",
			Unit:         "metric tonnes (MTCO2e in Oracle's documentation, MTCO2 in the SDK's), converted to grams (x 1,000,000)",
			URL:          "https://docs.oracle.com/en-us/iaas/Content/General/Concepts/emissions-management.htm",
			ModelVersion: "none named by the API",
		},
	}
}

// Config is one entry of the oci section: one principal reading one
// tenancy's carbon emissions. After Check, Name, Auth,
// EmissionCalculationMethod, CompartmentDepth and AllocateTop are set, and with auth
// config_file so are ConfigFile (absolute) and Profile, and a passphrase
// given in the file is resolved into PrivateKeyPassphrase;
// PrivateKeyPassphraseFile and PrivateKeyPassphraseEnv keep what the user
// wrote, so that the printed configuration shows where it came from.
type Config struct {
	Name string `yaml:"name"`
	// Auth is config_file, instance_principal or workload_identity.
	Auth string `yaml:"auth"`
	// ConfigFile and Profile select the API key with auth config_file.
	ConfigFile string `yaml:"config_file,omitempty"`
	Profile    string `yaml:"profile,omitempty"`
	// PrivateKeyPassphrase decrypts the profile's key_file when the
	// profile has no pass_phrase of its own.
	PrivateKeyPassphrase     provider.Secret `yaml:"private_key_passphrase,omitempty"`
	PrivateKeyPassphraseFile string          `yaml:"private_key_passphrase_file,omitempty"`
	PrivateKeyPassphraseEnv  string          `yaml:"private_key_passphrase_env,omitempty"`
	// Region selects the Usage API endpoint; the principal's by default.
	Region string `yaml:"region,omitempty"`
	// TenancyID is the tenancy read; the principal's by default.
	TenancyID string `yaml:"tenancy_id,omitempty"`
	// Endpoint overrides the endpoint the region gives.
	Endpoint string `yaml:"endpoint,omitempty"`
	// EmissionCalculationMethod is power_based or spend_based.
	EmissionCalculationMethod string `yaml:"emission_calculation_method"`
	// CompartmentDepth is how deep the compartment tree is broken down.
	CompartmentDepth int `yaml:"compartment_depth"`
	// Provisional reads the tenancy's cost, so that the months Oracle has
	// not published yet are estimated from it.
	Provisional bool `yaml:"provisional"`
	// AllocateBy are the tags by whose values the emissions are
	// allocated, each compartment's, service's and region's in
	// proportion to the cost each value carries there: "Namespace.key"
	// for a defined tag, "key" for a free-form tag.
	AllocateBy []string `yaml:"allocate_by,omitempty"`
	// AllocateTop bounds the values kept per key, by cost; the others
	// are folded into one. Check sets provider.DefaultAllocationTop.
	AllocateTop int `yaml:"allocate_top,omitempty"`
}

// Shapes OCI documents, checked up front so that a typo is a
// configuration error with a line number instead of an opaque failure at
// every refresh. Region identifiers are lowercase words and digits joined
// by hyphens (us-ashburn-1), or three-letter short names (iad); OCIDs are
// ocid1.<type>.<realm>.[region].<unique id>.
var (
	regionPattern    = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	tenancyIDPattern = regexp.MustCompile(`^ocid1\.tenancy\.[a-z0-9]+\.[a-z0-9-]*\.[a-z0-9]+$`)
)

// SourceName implements provider.SourceConfig.
func (c *Config) SourceName() *string { return &c.Name }

// Check implements provider.SourceConfig. It applies the rules New
// applies, reported by key for the file's lines.
func (c *Config) Check(v provider.Checker) {
	if c.Auth == "" {
		c.Auth = AuthConfigFile
	}
	switch c.Auth {
	case AuthConfigFile:
		if c.ConfigFile == "" {
			c.ConfigFile = DefaultConfigFile
		}
		// The SDK expands "~" itself, but the file's path is checked and
		// shown here, made absolute.
		if rest, ok := strings.CutPrefix(c.ConfigFile, "~/"); ok {
			if home, err := os.UserHomeDir(); err == nil {
				c.ConfigFile = filepath.Join(home, rest)
			}
		}
		v.File("config_file", &c.ConfigFile)
		if c.Profile == "" {
			c.Profile = DefaultProfile
		}
		if strings.ContainsAny(c.Profile, "[]\r\n") || strings.TrimSpace(c.Profile) != c.Profile {
			v.Errorf("profile", "oci.profile must be a profile name as the OCI config file writes it between brackets, without the brackets")
		}
		v.Secret(provider.SecretRef{Key: "private_key_passphrase", What: "private key passphrase", Value: &c.PrivateKeyPassphrase,
			File: c.PrivateKeyPassphraseFile, Env: c.PrivateKeyPassphraseEnv}, false)
	case AuthInstancePrincipal, AuthWorkloadIdentity:
		for _, k := range []string{"config_file", "profile", "private_key_passphrase", "private_key_passphrase_file", "private_key_passphrase_env"} {
			if v.Has(k) {
				v.Errorf(k, "oci entry %q sets %s, which only auth: %s reads; auth %s needs no key", c.Name, k, AuthConfigFile, c.Auth)
			}
		}
	default:
		v.Errorf("auth", "oci.auth must be %s, %s or %s", AuthConfigFile, AuthInstancePrincipal, AuthWorkloadIdentity)
	}

	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		v.Errorf("region", "oci.region must be a region identifier such as us-ashburn-1, or its short name such as iad")
	}
	if c.TenancyID != "" && !tenancyIDPattern.MatchString(c.TenancyID) {
		v.Errorf("tenancy_id", "oci.tenancy_id must be a tenancy OCID such as ocid1.tenancy.oc1..aaaaaaaa…, as the console shows under Tenancy details")
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			v.Errorf("endpoint", "oci.endpoint %w", err)
		}
		c.Endpoint = strings.TrimSuffix(c.Endpoint, "/")
	}

	if c.EmissionCalculationMethod == "" {
		c.EmissionCalculationMethod = MethodPowerBased
	}
	if c.EmissionCalculationMethod != MethodPowerBased && c.EmissionCalculationMethod != MethodSpendBased {
		v.Errorf("emission_calculation_method", "oci.emission_calculation_method must be %s (location-based and market-based, for the services Oracle meters by power) "+
			"or %s (market-based only, for most services)", MethodPowerBased, MethodSpendBased)
	}
	// compartment_depth: 0 is an error, not a default, when the file says so.
	if !v.Has("compartment_depth") {
		c.CompartmentDepth = DefaultCompartmentDepth
	}
	if c.CompartmentDepth < 1 || c.CompartmentDepth > MaxCompartmentDepth {
		v.Errorf("compartment_depth", "oci.compartment_depth must be from 1 (compartments under the root) to %d (every compartment), not %d",
			MaxCompartmentDepth, c.CompartmentDepth)
	}
	c.checkAllocation(v)
}

// checkAllocation checks allocate_by and allocate_top, the shared rules
// first, then the OCI spelling of each key the shared rules let through.
func (c *Config) checkAllocation(v provider.Checker) {
	a := c.Allocation()
	provider.CheckAllocation(v, &a, nil)
	c.AllocateTop = a.Top
	if len(c.AllocateBy) > provider.MaxAllocationKeys {
		return
	}
	for i, k := range c.AllocateBy {
		if k == "" || strings.TrimSpace(k) != k {
			continue
		}
		if _, err := parseTagKey(k); err != nil {
			v.Errorf(fmt.Sprintf("allocate_by.%d", i), "oci.allocate_by: %w", err)
		}
	}
}

// Allocation implements provider.AllocatingSource.
func (c *Config) Allocation() provider.Allocation {
	return provider.Allocation{By: c.AllocateBy, Top: c.AllocateTop}
}

// Identity implements provider.SourceConfig. It names what decides the
// data (principal, tenancy, endpoint, method, depth), never the
// passphrase.
func (c *Config) Identity() string {
	parts := []string{Name, "auth=" + c.Auth}
	if c.Auth == AuthConfigFile {
		parts = append(parts, "config="+c.ConfigFile, "profile="+c.Profile)
	}
	return strings.Join(append(parts, "region="+c.Region, "endpoint="+c.Endpoint, "tenancy="+c.TenancyID,
		"method="+c.EmissionCalculationMethod, "depth="+strconv.Itoa(c.CompartmentDepth)), "|")
}

// Covers implements provider.SourceConfig: the tenancy, when the entry
// names it, else the principal that decides it.
func (c *Config) Covers() []provider.Coverage {
	switch {
	case c.TenancyID != "":
		return []provider.Coverage{{Key: "tenancy=" + c.TenancyID, What: "tenancy " + c.TenancyID}}
	case c.Auth == AuthConfigFile:
		return []provider.Coverage{{Key: "config=" + c.ConfigFile + "|" + c.Profile, What: "the tenancy of profile " + c.Profile + " of one configuration file"}}
	}
	return []provider.Coverage{{Key: "auth=" + c.Auth, What: "the tenancy of the " + strings.ReplaceAll(c.Auth, "_", " ")}}
}

var (
	_ provider.ProvisionalSource = (*Config)(nil)
	_ provider.AllocatingSource  = (*Config)(nil)
)

// WantsProvisional implements provider.ProvisionalSource.
func (c *Config) WantsProvisional() bool { return c.Provisional }

// New implements provider.SourceConfig.
func (c *Config) New(_ context.Context, env provider.Env) (provider.Provider, error) {
	p, err := New(Options{
		Auth:                 c.Auth,
		ConfigFile:           c.ConfigFile,
		Profile:              c.Profile,
		PrivateKeyPassphrase: c.PrivateKeyPassphrase.Value(),
		Region:               c.Region,
		TenancyID:            c.TenancyID,
		Endpoint:             c.Endpoint,
		Method:               c.EmissionCalculationMethod,
		CompartmentDepth:     c.CompartmentDepth,
		HTTPClient:           env.Connection.HTTPClient,
		Observe:              env.Observe,
		Logger:               env.Logger,
	})
	if err != nil {
		return nil, err // not a nil *Provider inside a non-nil interface
	}
	return provider.Feeds(p, c.Provisional, len(c.AllocateBy) > 0), nil
}

// demo serves ocifake's demo tenancy, its cost and tags included, to an
// API key made for the purpose: the key and an OCI config file naming it
// are written to a temporary directory, so that the demo source signs
// its requests exactly as a user's config_file source does, and the fake
// verifies every signature. The source allocates by team and by
// Kubernetes namespace, tags the demo tenancy carries.
func demo(ctx context.Context, now time.Time, logger *slog.Logger) (*provider.Demo, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oci demo: generating a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("oci demo: encoding the key: %w", err)
	}
	dir, err := os.MkdirTemp("", "cloudcarbon-oci-demo-")
	if err != nil {
		return nil, fmt.Errorf("oci demo: %w", err)
	}
	keyFile, configFile := filepath.Join(dir, "demo_api_key.pem"), filepath.Join(dir, "config")
	ds := ocifake.Demo(now)
	config := fmt.Sprintf("[%s]\nuser=%s\nfingerprint=%s\ntenancy=%s\nregion=%s\nkey_file=%s\n",
		DefaultProfile, ocifake.DemoUserID, ocifake.Fingerprint(&key.PublicKey), ds.TenancyID, ocifake.DemoRegion, keyFile)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oci demo: %w", err)
	}
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oci demo: %w", err)
	}
	fake := ocifake.NewServer(ds, ocifake.Key{ID: ocifake.KeyID(ds.TenancyID, ocifake.DemoUserID, &key.PublicKey), PublicKey: &key.PublicKey})
	url, stop, err := fakehttp.Serve(ctx, fake, nil, logger)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oci demo: %w", err)
	}
	return &provider.Demo{
		Entries: []map[string]any{{
			"name":        "oci-demo",
			"auth":        AuthConfigFile,
			"config_file": configFile,
			"endpoint":    url,
			"provisional": true,
			"allocate_by": []string{"team", "k8s-namespace"},
		}},
		Close: func() {
			stop()
			_ = os.RemoveAll(dir)
		},
	}, nil
}

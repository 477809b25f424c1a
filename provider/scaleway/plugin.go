package scaleway

import (
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

// Name is the provider label value of scaleway data and the key of its
// configuration section.
const Name = "scaleway"

// example is the scaleway section of the example configuration.
//
//go:embed example.yml
var example string

// Plugin describes Scaleway to the exporter.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name:      Name,
		Schedule:  publication(),
		NewConfig: func() provider.SourceConfig { return &Config{} },
		Demo:      demo,
		Example:   example,
		Methodology: provider.Methodology{
			Source: "Scaleway Environmental Footprint API (GetImpactData)",
			Includes: "Life-cycle footprint of the organization's resources (manufacturing and use of the hardware, per the ADEME PCR for data centres and cloud services), " +
				"per project, product category and region, not split by scope; water the data centres use for that electricity, per month",
			Unit:         "kgCO2e, converted to grams (x 1000); water in cubic metres; values served as 32-bit floats (about seven significant digits)",
			URL:          "https://www.scaleway.com/en/docs/environmental-footprint/environmental-footprint/additional-content/environmental-footprint-calculator/",
			ModelVersion: "none named by the API",
			Water:        provider.WaterUsage,
			Caveats: []provider.Caveat{{Flag: "life_cycle_assessment", Text: "Scaleway's figure is a life-cycle assessment (ADEME PCR), not a GHG Protocol inventory: " +
				"it is not split by scope and includes the manufacturing of the hardware, which GHG Protocol inventories count in scope 3."}},
		},
	}
}

// Config is one entry of the scaleway section: one organization, read
// with an API key given in the entry or found by the Scaleway SDK (its
// configuration file's profiles and the SCW_* environment variables).
// After Check, Name is set; with a key in the entry, APIURL is set too and
// the secret is resolved into SecretKey, while SecretKeyFile and
// SecretKeyEnv keep what the user wrote, so that the printed configuration
// shows where the secret came from.
type Config struct {
	Name string `yaml:"name"`
	// OrganizationID is the organization read; without it, the SDK's
	// default_organization_id or SCW_DEFAULT_ORGANIZATION_ID.
	OrganizationID string `yaml:"organization_id,omitempty"`
	// ProjectIDs limits the data to these projects; empty reads them all.
	ProjectIDs []string `yaml:"project_ids,omitempty"`
	// AccessKey identifies the API key. The API authenticates with the
	// secret key alone, but the SDK requires the access key beside it.
	AccessKey     string          `yaml:"access_key,omitempty"`
	SecretKey     provider.Secret `yaml:"secret_key,omitempty"`
	SecretKeyFile string          `yaml:"secret_key_file,omitempty"`
	SecretKeyEnv  string          `yaml:"secret_key_env,omitempty"`
	// Profile selects a profile of the Scaleway configuration file, taken
	// alone (SCW_* variables do not override it).
	Profile string `yaml:"profile,omitempty"`
	// APIURL is the API endpoint. With a key in the entry it defaults to
	// DefaultAPIURL; otherwise empty means the SDK's (the profile's
	// api_url, SCW_API_URL, else DefaultAPIURL).
	APIURL string `yaml:"api_url,omitempty"`
	// Provisional asks for provisional months: the exporter also reads the
	// organization's consumption from the Billing API (which needs the
	// BillingReadOnly permission set) to estimate the emissions of the
	// months Scaleway has not published yet.
	Provisional bool `yaml:"provisional,omitempty"`
}

// SourceName implements provider.SourceConfig.
func (c *Config) SourceName() *string { return &c.Name }

// Check implements provider.SourceConfig. It applies the rules New
// applies, reported by key for the file's lines; what the SDK's profile
// and environment supply is checked by New.
func (c *Config) Check(v provider.Checker) {
	secretKey := "secret_key"
	switch {
	case c.SecretKeyFile != "":
		secretKey = "secret_key_file"
	case c.SecretKeyEnv != "":
		secretKey = "secret_key_env"
	}
	static := c.AccessKey != "" || c.SecretKey != "" || c.SecretKeyFile != "" || c.SecretKeyEnv != "" ||
		v.Has("access_key") || v.Has("secret_key") || v.Has("secret_key_file") || v.Has("secret_key_env")
	if static {
		v.Secret(provider.SecretRef{Key: "secret_key", What: "secret key", Value: &c.SecretKey,
			File: c.SecretKeyFile, Env: c.SecretKeyEnv}, true)
		switch {
		case c.AccessKey == "":
			v.Errorf("", "scaleway entry %q sets a secret key but no access_key; set both (the SDK needs the access key beside the secret key), "+
				"or neither to use the Scaleway SDK's profile and SCW_* environment variables", c.Name)
		case !accessKeyPattern.MatchString(c.AccessKey):
			v.Errorf("access_key", "scaleway.access_key must be SCW followed by 17 capital letters and digits, such as SCWXXXXXXXXXXXXXXXXX")
		}
		if s := c.SecretKey.Value(); s != "" && !uuidPattern.MatchString(s) {
			v.Errorf(secretKey, "scaleway.%s must give the secret key as the console shows it, a UUID such as 11111111-2222-3333-4444-555555555555 (the value is not shown)", secretKey)
		}
		if c.Profile != "" {
			v.Errorf("profile", "scaleway entry %q sets both profile and an API key; set one: a key in the entry needs no profile", c.Name)
		}
		if c.OrganizationID == "" {
			v.Errorf("", "scaleway entry %q has no organization_id; with an API key in the entry, set the organization it reads", c.Name)
		}
		if c.APIURL == "" {
			// Spelled out, so that the printed configuration and the
			// source's identity name the endpoint that is read.
			c.APIURL = DefaultAPIURL
		}
	}

	if c.OrganizationID != "" && !uuidPattern.MatchString(c.OrganizationID) {
		v.Errorf("organization_id", "scaleway.organization_id must be a UUID such as 11111111-2222-3333-4444-555555555555, as the console shows it")
	}
	seen := make(map[string]int, len(c.ProjectIDs))
	for i, id := range c.ProjectIDs {
		key := "project_ids." + strconv.Itoa(i)
		switch prev, dup := seen[strings.ToLower(id)]; {
		case !uuidPattern.MatchString(id):
			v.Errorf(key, "scaleway.project_ids must be project UUIDs such as 11111111-2222-3333-4444-555555555555; entry %d is not", i+1)
		case dup:
			v.Errorf(key, "scaleway.project_ids lists %s twice (entries %d and %d)", id, prev+1, i+1)
		default:
			seen[strings.ToLower(id)] = i
		}
	}
	if c.Profile != "" && !profilePattern.MatchString(c.Profile) {
		v.Errorf("profile", "scaleway.profile must be a profile name of the Scaleway configuration file: letters, digits, '_', '.' and '-'")
	}
	if c.APIURL != "" {
		if err := provider.CheckURL(c.APIURL); err != nil {
			v.Errorf("api_url", "scaleway.api_url %w", err)
		}
	}
}

// Identity implements provider.SourceConfig. It names what decides the
// data (endpoint, organization, projects, the profile that may choose
// them), never a key; "sdk" stands for what the SDK's configuration
// supplies.
func (c *Config) Identity() string {
	projects := slices.Clone(c.ProjectIDs)
	for i := range projects {
		projects[i] = strings.ToLower(projects[i])
	}
	slices.Sort(projects)
	return strings.Join([]string{Name, cmp.Or(c.APIURL, "sdk"), "org=" + cmp.Or(strings.ToLower(c.OrganizationID), "sdk"),
		"projects=" + strings.Join(projects, ","), "profile=" + c.Profile}, "|")
}

// Covers implements provider.SourceConfig: each project listed, else the
// organization.
func (c *Config) Covers() []provider.Coverage {
	if len(c.ProjectIDs) > 0 {
		out := make([]provider.Coverage, 0, len(c.ProjectIDs))
		for _, id := range c.ProjectIDs {
			id = strings.ToLower(id)
			out = append(out, provider.Coverage{Key: "project=" + id, What: "project " + id})
		}
		return out
	}
	org := strings.ToLower(c.OrganizationID)
	if org == "" {
		return []provider.Coverage{{Key: "profile=" + c.Profile + "|" + c.AccessKey, What: "the organization of one access key"}}
	}
	return []provider.Coverage{{Key: "org=" + org, What: "organization " + org}}
}

// WantsProvisional implements provider.ProvisionalSource.
func (c *Config) WantsProvisional() bool { return c.Provisional }

// New implements provider.SourceConfig.
func (c *Config) New(_ context.Context, env provider.Env) (provider.Provider, error) {
	p, err := New(Options{
		OrganizationID: c.OrganizationID,
		ProjectIDs:     c.ProjectIDs,
		AccessKey:      c.AccessKey,
		SecretKey:      c.SecretKey.Value(),
		Profile:        c.Profile,
		APIURL:         c.APIURL,
		Provisional:    c.Provisional,
		HTTPClient:     env.Connection.HTTPClient,
		Observe:        env.Observe,
		Logger:         env.Logger,
	})
	if err != nil {
		return nil, err // not a nil *Provider inside a non-nil interface
	}
	return p, nil
}

// The only key the demo's fake accepts; it opens nothing real.
const (
	demoAccessKey = "SCWCL0UDCARB0NDEM0XX"
	demoSecretKey = "00000000-dead-4bad-8000-00000000de70"
)

// demo serves scalewayfake's demo organization.
func demo(ctx context.Context, now time.Time, logger *slog.Logger) (*provider.Demo, error) {
	ds := scalewayfake.Demo(now)
	url, stop, err := fakehttp.Serve(ctx, scalewayfake.NewServer(ds, demoSecretKey), nil, logger)
	if err != nil {
		return nil, fmt.Errorf("scaleway demo: %w", err)
	}
	return &provider.Demo{
		Entries: []map[string]any{{
			"name":            "scaleway-demo",
			"organization_id": ds.OrganizationID,
			"access_key":      demoAccessKey,
			"secret_key":      demoSecretKey,
			"api_url":         url,
			"provisional":     true,
		}},
		Close: stop,
	}, nil
}

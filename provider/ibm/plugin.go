package ibm

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// Name is the provider label value of ibm data and the key of its
// configuration section.
const Name = "ibm"

// example is the ibm section of the example configuration.
//
//go:embed example.yml
var example string

// Plugin describes IBM Cloud to the exporter.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name:      Name,
		Schedule:  publication(),
		NewConfig: func() provider.SourceConfig { return &Config{} },
		Demo:      demo,
		Example:   example,
		Methodology: provider.Methodology{
			Source: "IBM Cloud Carbon Calculator API (/v1/carbon_emissions)",
			Includes: "Emissions of the account's (or enterprise's) services from their metered or estimated electricity and the data centres' location and efficiency, " +
				"per account, service and location, not split by scope; the energy consumed; only the services IBM tracks",
			Unit:         "not stated by IBM's API reference: carbon_emission is read as grams CO2e and energy_consumption as watt-hours (x 3600 to joules)",
			URL:          "https://cloud.ibm.com/docs/account?topic=account-what-is-cloud-calc",
			ModelVersion: "none named by the API",
			Caveats: []provider.Caveat{{Flag: "unit_unconfirmed", Text: "IBM documents no unit for carbon_emission and energy_consumption, and its pages contradict each other " +
				"(\"metric tons ... (kgCO2e)\"); the exporter reads grams CO2e and watt-hours, as a third-party client does. " +
				"Confirm the unit with IBM before filing: another unit scales every IBM figure."}},
		},
	}
}

func publication() provider.Schedule {
	return provider.Schedule{PublishDelay: PublishDelay, SettleDelay: SettleDelay}
}

// Config is one entry of the ibm section: one IBM Cloud account,
// enterprise, account group or enterprise account. After Check, Name,
// APIKey, APIURL, IAMURL and PageConcurrency are always set; APIKeyFile
// and APIKeyEnv keep what the user wrote, so that the printed
// configuration shows where the key came from.
type Config struct {
	Name                string          `yaml:"name"`
	APIKey              provider.Secret `yaml:"api_key,omitempty"`
	APIKeyFile          string          `yaml:"api_key_file,omitempty"`
	APIKeyEnv           string          `yaml:"api_key_env,omitempty"`
	EnterpriseID        string          `yaml:"enterprise_id,omitempty"`
	EnterpriseGroupID   string          `yaml:"enterprise_group_id,omitempty"`
	EnterpriseAccountID string          `yaml:"enterprise_account_id,omitempty"`
	AccountName         string          `yaml:"account_name,omitempty"`
	APIURL              string          `yaml:"api_url"`
	IAMURL              string          `yaml:"iam_url"`
	// PageConcurrency bounds the pages of one query fetched at once; see
	// Options.PageConcurrency.
	PageConcurrency int `yaml:"page_concurrency"`
	// Provisional asks for provisional months: the cost of the months IBM
	// has not published emissions for yet, the current one to date, read
	// from the usage reports (see Provider.ReadCosts), from which the
	// exporter estimates their emissions.
	Provisional bool `yaml:"provisional"`
	// UsageReportsURL and EnterpriseUsageReportsURL are the base URLs of
	// the usage reports the cost of provisional months is read from;
	// empty selects IBM's (DefaultUsageReportsURL and
	// DefaultEnterpriseUsageReportsURL).
	UsageReportsURL           string `yaml:"usage_reports_url,omitempty"`
	EnterpriseUsageReportsURL string `yaml:"enterprise_usage_reports_url,omitempty"`
}

// SourceName implements provider.SourceConfig.
func (c *Config) SourceName() *string { return &c.Name }

// Check implements provider.SourceConfig.
func (c *Config) Check(v provider.Checker) {
	v.Secret(provider.SecretRef{Key: "api_key", What: "API key", Value: &c.APIKey, File: c.APIKeyFile, Env: c.APIKeyEnv}, true)

	var scope string
	for _, e := range []struct{ key, v string }{
		{"enterprise_id", c.EnterpriseID},
		{"enterprise_group_id", c.EnterpriseGroupID},
		{"enterprise_account_id", c.EnterpriseAccountID},
	} {
		if e.v == "" {
			continue
		}
		if scope != "" {
			v.Errorf(e.key, "ibm entry %q sets both %s and %s; set at most one of enterprise_id, enterprise_group_id and enterprise_account_id",
				c.Name, scope, e.key)
		}
		scope = e.key
		if !enterpriseIDPattern.MatchString(e.v) {
			v.Errorf(e.key, "ibm.%s must be 32 lowercase letters and digits, as shown by the IBM Cloud console", e.key)
		}
	}

	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.IAMURL == "" {
		c.IAMURL = DefaultIAMURL
	}
	for _, u := range []struct{ key, v string }{
		{"api_url", c.APIURL}, {"iam_url", c.IAMURL},
		{"usage_reports_url", c.UsageReportsURL}, {"enterprise_usage_reports_url", c.EnterpriseUsageReportsURL},
	} {
		if u.v == "" {
			continue // the usage reports' endpoints default in New
		}
		if err := provider.CheckURL(u.v); err != nil {
			v.Errorf(u.key, "ibm.%s %w", u.key, err)
		}
	}

	// page_concurrency: 0 is an error, not a default, when the file says so.
	if !v.Has("page_concurrency") {
		c.PageConcurrency = DefaultPageConcurrency
	}
	if c.PageConcurrency < 1 || c.PageConcurrency > MaxPageConcurrency {
		v.Errorf("page_concurrency", "ibm.page_concurrency must be from 1 (one page at a time) to %d, not %d",
			MaxPageConcurrency, c.PageConcurrency)
	}
}

// Identity implements provider.SourceConfig.
func (c *Config) Identity() string {
	return strings.Join([]string{Name, c.APIURL,
		"enterprise=" + c.EnterpriseID, "group=" + c.EnterpriseGroupID, "account=" + c.EnterpriseAccountID}, "|")
}

// Covers implements provider.SourceConfig: an enterprise, account group
// or enterprise account by its id, else the account the API key belongs
// to, which only the key tells.
func (c *Config) Covers() []provider.Coverage {
	switch {
	case c.EnterpriseID != "":
		return []provider.Coverage{{Key: "enterprise=" + c.EnterpriseID, What: "enterprise " + c.EnterpriseID}}
	case c.EnterpriseGroupID != "":
		return []provider.Coverage{{Key: "group=" + c.EnterpriseGroupID, What: "account group " + c.EnterpriseGroupID}}
	case c.EnterpriseAccountID != "":
		return []provider.Coverage{{Key: "account=" + c.EnterpriseAccountID, What: "enterprise account " + c.EnterpriseAccountID}}
	}
	return []provider.Coverage{{Key: "key=" + provider.Digest(c.APIKey.Value()), What: "the account of one API key"}}
}

// WantsProvisional implements provider.ProvisionalSource.
func (c *Config) WantsProvisional() bool { return c.Provisional }

// New implements provider.SourceConfig.
func (c *Config) New(_ context.Context, env provider.Env) (provider.Provider, error) {
	p, err := New(Options{
		APIKey:                    c.APIKey.Value(),
		APIURL:                    c.APIURL,
		IAMURL:                    c.IAMURL,
		UsageReportsURL:           c.UsageReportsURL,
		EnterpriseUsageReportsURL: c.EnterpriseUsageReportsURL,
		EnterpriseID:              c.EnterpriseID,
		EnterpriseGroupID:         c.EnterpriseGroupID,
		EnterpriseAccountID:       c.EnterpriseAccountID,
		AccountName:               c.AccountName,
		PageConcurrency:           c.PageConcurrency,
		HTTPClient:                env.Connection.HTTPClient,
		Observe:                   env.Observe,
		Logger:                    env.Logger,
	})
	if err != nil {
		return nil, err // not a nil *Provider inside a non-nil interface
	}
	if c.Provisional {
		return NewCostFeed(p), nil
	}
	return p, nil
}

// demoAPIKey is the only key the demo's fake accepts; it opens nothing real.
const demoAPIKey = "demo-ibm-api-key"

// demo serves ibmfake's demo enterprise.
func demo(ctx context.Context, now time.Time, logger *slog.Logger) (*provider.Demo, error) {
	ds := ibmfake.Demo(now)
	url, stop, err := fakehttp.Serve(ctx, ibmfake.NewServer(ds, demoAPIKey), nil, logger)
	if err != nil {
		return nil, fmt.Errorf("ibm demo: %w", err)
	}
	return &provider.Demo{
		Entries: []map[string]any{{
			"name":          "ibm-demo",
			"api_key":       demoAPIKey,
			"enterprise_id": ds.EnterpriseID,
			"api_url":       url,
			"iam_url":       url,
			// The fake serves the usage reports too.
			"usage_reports_url":            url,
			"enterprise_usage_reports_url": url,
			"provisional":                  true,
		}},
		Close: stop,
	}, nil
}

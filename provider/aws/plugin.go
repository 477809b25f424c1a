package aws

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Name is the provider label value of aws data and the key of its
// configuration section.
const Name = "aws"

// example is the aws section of the example configuration.
//
//go:embed example.yml
var example string

// Plugin describes AWS to the exporter.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name:      Name,
		Schedule:  publication(),
		NewConfig: func() provider.SourceConfig { return &Config{} },
		Demo:      demo,
		Example:   example,
		Methodology: provider.Methodology{
			Source: "AWS Sustainability API (GetEstimatedCarbonEmissions, GetEstimatedWaterAllocation)",
			Includes: "AWS's scope 1, scope 2 and scope 3 emissions allocated to the usage accounts' usage, location-based and market-based, per usage account, region and service; " +
				"water withdrawals allocated to the usage, per calendar year",
			Unit: "MTCO2e (metric tonnes), converted to grams (x 1,000,000); water in cubic metres",
			URL:  "https://docs.aws.amazon.com/sustainability/latest/userguide/methodology.html",
			ModelVersion: "ModelVersion of each result (such as v3.0.0): AWS serves every month under its latest model only, " +
				"so a month under another version is a restatement, and the stored months are fetched again",
			Water: provider.WaterWithdrawal,
		},
	}
}

// Config is one entry of the aws section: one identity reading the
// Sustainability API. After Check, Name, Partition and Endpoint are set
// and a static secret is resolved into SecretAccessKey;
// SecretAccessKeyFile and SecretAccessKeyEnv keep what the user wrote, so
// that the printed configuration shows where the secret came from.
type Config struct {
	Name string `yaml:"name"`
	// Partition is aws, aws-us-gov or aws-cn.
	Partition string `yaml:"partition"`
	// Endpoint is the Sustainability API endpoint; the partition's by
	// default.
	Endpoint string `yaml:"endpoint"`
	// Profile selects a shared configuration profile; without it and
	// without static keys, the SDK's default credential chain applies.
	Profile             string          `yaml:"profile,omitempty"`
	AccessKeyID         string          `yaml:"access_key_id,omitempty"`
	SecretAccessKey     provider.Secret `yaml:"secret_access_key,omitempty"`
	SecretAccessKeyFile string          `yaml:"secret_access_key_file,omitempty"`
	SecretAccessKeyEnv  string          `yaml:"secret_access_key_env,omitempty"`
	// RoleARN is assumed with the credentials above, presenting
	// ExternalID when set.
	RoleARN    string `yaml:"role_arn,omitempty"`
	ExternalID string `yaml:"external_id,omitempty"`
	// Organizations reads account names with Organizations ListAccounts.
	Organizations         bool   `yaml:"organizations"`
	OrganizationsEndpoint string `yaml:"organizations_endpoint,omitempty"`
	// Provisional reads cost from Cost Explorer, so that the months AWS
	// has not published yet are estimated from it.
	Provisional          bool   `yaml:"provisional"`
	CostExplorerEndpoint string `yaml:"cost_explorer_endpoint,omitempty"`
	// AllocateBy are cost allocation tag keys, spelled as Cost Explorer
	// groups by them (team, aws:eks:namespace), by whose cost shares the
	// emissions of each account and service are allocated; each is a read
	// of Cost Explorer per cost refresh.
	AllocateBy []string `yaml:"allocate_by,omitempty"`
	// AllocateTop bounds the values kept per key, by cost; the others are
	// folded into one. Check sets the default.
	AllocateTop int `yaml:"allocate_top,omitempty"`
}

// Shapes AWS documents, checked up front so that a typo is a
// configuration error with a line number instead of an opaque failure at
// every refresh.
var (
	accessKeyIDPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	roleARNPattern     = regexp.MustCompile(`^arn:(aws|aws-us-gov|aws-cn):iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// SourceName implements provider.SourceConfig.
func (c *Config) SourceName() *string { return &c.Name }

// Check implements provider.SourceConfig. It applies the rules New
// applies, reported by key for the file's lines.
func (c *Config) Check(v provider.Checker) {
	if c.Partition == "" {
		c.Partition = PartitionAWS
	}
	part, ok := partitionNamed(c.Partition)
	if !ok {
		v.Errorf("partition", "aws.partition must be %s, %s or %s", PartitionAWS, PartitionUSGov, PartitionChina)
	}
	if c.Endpoint == "" {
		// Spelled out, so that the printed configuration and the source's
		// identity name the endpoint that is read.
		c.Endpoint = part.endpoint
	}
	for _, u := range []struct{ key, v string }{{"endpoint", c.Endpoint}, {"organizations_endpoint", c.OrganizationsEndpoint},
		{"cost_explorer_endpoint", c.CostExplorerEndpoint}} {
		if u.v == "" {
			continue
		}
		if err := provider.CheckURL(u.v); err != nil {
			v.Errorf(u.key, "aws.%s %w", u.key, err)
		}
	}
	if c.OrganizationsEndpoint != "" && !c.Organizations {
		v.Errorf("organizations_endpoint", "aws entry %q sets organizations_endpoint without organizations: true, which alone calls Organizations", c.Name)
	}
	if c.CostExplorerEndpoint != "" && !c.Provisional && len(c.AllocateBy) == 0 {
		v.Errorf("cost_explorer_endpoint", "aws entry %q sets cost_explorer_endpoint without provisional: true or allocate_by, "+
			"which alone call Cost Explorer", c.Name)
	}
	a := c.Allocation()
	provider.CheckAllocation(v, &a, nil)
	c.AllocateTop = a.Top
	for i, k := range c.AllocateBy {
		// Longer keys (in bytes) CheckAllocation refuses already.
		if utf8.RuneCountInString(k) > MaxTagKeyChars && len(k) <= 4*MaxTagKeyChars {
			v.Errorf(fmt.Sprintf("allocate_by.%d", i), "aws.allocate_by has a key longer than %d characters, the longest tag key AWS allows", MaxTagKeyChars)
		}
	}

	secret := provider.SecretRef{Key: "secret_access_key", What: "secret access key",
		Value: &c.SecretAccessKey, File: c.SecretAccessKeyFile, Env: c.SecretAccessKeyEnv}
	switch {
	case c.AccessKeyID != "":
		if !accessKeyIDPattern.MatchString(c.AccessKeyID) {
			v.Errorf("access_key_id", "aws.access_key_id must be 16 to 128 capital letters and digits, such as AKIAIOSFODNN7EXAMPLE")
		}
		v.Secret(secret, true)
		if c.Profile != "" {
			v.Errorf("profile", "aws entry %q sets both profile and access_key_id; set one: static keys need no profile", c.Name)
		}
	case c.SecretAccessKey != "" || c.SecretAccessKeyFile != "" || c.SecretAccessKeyEnv != "" ||
		v.Has("secret_access_key") || v.Has("secret_access_key_file") || v.Has("secret_access_key_env"):
		v.Errorf("", "aws entry %q sets a secret access key but no access_key_id; set both, or neither for the default credential chain", c.Name)
	}
	if strings.ContainsAny(c.Profile, " \t[]") {
		v.Errorf("profile", "aws.profile must be a profile name as in ~/.aws/config, without spaces or brackets")
	}

	if c.RoleARN != "" {
		if m := roleARNPattern.FindStringSubmatch(c.RoleARN); m == nil {
			v.Errorf("role_arn", "aws.role_arn must be an IAM role ARN such as arn:%s:iam::123456789012:role/cloudcarbon", c.Partition)
		} else if ok && m[1] != c.Partition {
			v.Errorf("role_arn", "aws.role_arn is in partition %s, but the entry reads partition %s", m[1], c.Partition)
		}
	}
	switch {
	case c.ExternalID == "":
	case c.RoleARN == "":
		v.Errorf("external_id", "aws entry %q sets external_id but no role_arn; the external id is presented when assuming role_arn", c.Name)
	case len(c.ExternalID) < 2 || len(c.ExternalID) > 1224 || !externalIDPattern.MatchString(c.ExternalID):
		v.Errorf("external_id", "aws.external_id must be 2 to 1224 letters, digits and +=,.@:/-")
	}
}

// Identity implements provider.SourceConfig. It names what decides the
// data (partition, endpoint, the role or profile that selects the
// account), never a key.
func (c *Config) Identity() string {
	// The access key id (not a secret) decides which account static keys
	// read: a new key is a new source, whose data starts clean.
	return strings.Join([]string{Name, c.Partition, c.Endpoint, "role=" + c.RoleARN, "profile=" + c.Profile, "key=" + c.AccessKeyID}, "|")
}

// Covers implements provider.SourceConfig: the identity the entry reads
// as decides which accounts it reports.
func (c *Config) Covers() []provider.Coverage {
	switch {
	case c.RoleARN != "":
		return []provider.Coverage{{Key: "role=" + c.RoleARN, What: "the accounts of role " + c.RoleARN}}
	case c.AccessKeyID != "":
		return []provider.Coverage{{Key: "key=" + c.AccessKeyID, What: "the accounts of access key " + c.AccessKeyID}}
	case c.Profile != "":
		return []provider.Coverage{{Key: "profile=" + c.Profile, What: "the accounts of profile " + c.Profile}}
	}
	return []provider.Coverage{{Key: "default", What: "the accounts of the default credential chain"}}
}

// WantsProvisional implements provider.ProvisionalSource.
func (c *Config) WantsProvisional() bool { return c.Provisional }

// Allocation implements provider.AllocatingSource.
func (c *Config) Allocation() provider.Allocation {
	return provider.Allocation{By: c.AllocateBy, Top: c.AllocateTop}
}

// New implements provider.SourceConfig.
func (c *Config) New(ctx context.Context, env provider.Env) (provider.Provider, error) {
	p, err := New(ctx, Options{
		Partition:             c.Partition,
		Endpoint:              c.Endpoint,
		Profile:               c.Profile,
		AccessKeyID:           c.AccessKeyID,
		SecretAccessKey:       c.SecretAccessKey.Value(),
		RoleARN:               c.RoleARN,
		ExternalID:            c.ExternalID,
		Organizations:         c.Organizations,
		OrganizationsEndpoint: c.OrganizationsEndpoint,
		CostExplorerEndpoint:  c.CostExplorerEndpoint,
		HTTPClient:            env.Connection.HTTPClient,
		Observe:               env.Observe,
		Logger:                env.Logger,
	})
	if err != nil {
		return nil, err // not a nil *Provider inside a non-nil interface
	}
	return provider.Feeds(p, c.Provisional, len(c.AllocateBy) > 0), nil
}

// The only keys the demo's fake accepts; they open nothing real.
const (
	demoAccessKeyID     = "AKIACLOUDCARBONDEMO1"
	demoSecretAccessKey = "demo-aws-secret-access-key-opens-nothing"
)

// demo serves awsfake's demo organization, names included, and its cost
// in Cost Explorer, to static keys.
func demo(ctx context.Context, now time.Time, logger *slog.Logger) (*provider.Demo, error) {
	fake := awsfake.NewServer(awsfake.Demo(now), awsfake.Credentials{AccessKeyID: demoAccessKeyID, SecretAccessKey: demoSecretAccessKey})
	url, stop, err := fakehttp.Serve(ctx, fake, nil, logger)
	if err != nil {
		return nil, fmt.Errorf("aws demo: %w", err)
	}
	return &provider.Demo{
		Entries: []map[string]any{{
			"name":                   "aws-demo",
			"access_key_id":          demoAccessKeyID,
			"secret_access_key":      demoSecretAccessKey,
			"endpoint":               url,
			"organizations":          true,
			"organizations_endpoint": url,
			"provisional":            true,
			"cost_explorer_endpoint": url,
			// The demo organization's team tag: four teams, one of them
			// in several accounts, and an account without the tag.
			"allocate_by": []string{awsfake.TeamKey},
		}},
		Close: stop,
	}, nil
}

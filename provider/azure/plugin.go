package azure

import (
	"context"
	"crypto/tls"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Name is the provider label value of azure data and the key of its
// configuration section.
const Name = "azure"

// example is the azure section of the example configuration.
//
//go:embed example.yml
var example string

// Plugin describes Azure to the exporter.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name:      Name,
		Schedule:  publication(),
		NewConfig: func() provider.SourceConfig { return &Config{} },
		Demo:      demo,
		Example:   example,
		Methodology: provider.Methodology{
			Source: "Azure Carbon Optimization API (carbonEmissionReports, item details per resource)",
			Includes: "Microsoft's scope 1, scope 2 (location-based) and scope 3 emissions of the subscriptions' resources, per subscription, resource type and region; " +
				"no market-based figure; subscriptions the identity may not read are left out and listed as denied",
			Unit:         "kgCO2e, converted to grams (x 1000)",
			URL:          "https://learn.microsoft.com/en-us/industry/sustainability/api-calculation-method",
			ModelVersion: "none named by the API; Microsoft recalculates past months when it updates its methodology",
		},
	}
}

func publication() provider.Schedule {
	return provider.Schedule{PublishDelay: PublishDelay, SettleDelay: SettleDelay}
}

// Config is one entry of the azure section: one identity reading the
// Carbon Optimization API for a set of subscriptions. After Check, Name,
// Credential, Cloud, RequestBudget and AllocateTop are set, secrets are
// resolved into ClientSecret and CertificatePassword, CertificateFile is
// an absolute path and Subscriptions are lower-cased.
type Config struct {
	Name string `yaml:"name"`
	// Credential selects how to authenticate: "default" (environment,
	// workload identity, managed identity, Azure CLI), "client_secret" or
	// "client_certificate".
	Credential              string          `yaml:"credential"`
	TenantID                string          `yaml:"tenant_id,omitempty"`
	ClientID                string          `yaml:"client_id,omitempty"`
	ClientSecret            provider.Secret `yaml:"client_secret,omitempty"`
	ClientSecretFile        string          `yaml:"client_secret_file,omitempty"`
	ClientSecretEnv         string          `yaml:"client_secret_env,omitempty"`
	CertificateFile         string          `yaml:"certificate_file,omitempty"`
	CertificatePassword     provider.Secret `yaml:"certificate_password,omitempty"`
	CertificatePasswordFile string          `yaml:"certificate_password_file,omitempty"`
	CertificatePasswordEnv  string          `yaml:"certificate_password_env,omitempty"`
	Cloud                   string          `yaml:"cloud"`
	AuthorityHost           string          `yaml:"authority_host,omitempty"`
	ResourceManagerEndpoint string          `yaml:"resource_manager_endpoint,omitempty"`
	ResourceManagerAudience string          `yaml:"resource_manager_audience,omitempty"`
	Subscriptions           []string        `yaml:"subscriptions,omitempty"`
	ListSubscriptions       bool            `yaml:"list_subscriptions,omitempty"`
	// RequestBudget caps the ARM requests of one refresh, so that a
	// misconfiguration cannot run up thousands of calls.
	RequestBudget int `yaml:"request_budget"`
	// Provisional asks for provisional months: the exporter also reads
	// the subscriptions' cost from Cost Management (which needs the Cost
	// Management Reader role) to estimate the emissions of the months
	// Azure has not published yet.
	Provisional bool `yaml:"provisional,omitempty"`
	// AllocateBy are the tag keys by which the subscriptions' emissions
	// are allocated: each value's share of a resource type's cost in a
	// subscription and month splits its emissions. Each key is one more
	// read of the cost from Cost Management per refresh (Cost Management
	// Reader, as for provisional months).
	AllocateBy []string `yaml:"allocate_by,omitempty"`
	// AllocateTop bounds the values kept per key, the highest by cost;
	// the rest are folded into one. 0 (unset) takes
	// provider.DefaultAllocationTop, which Check writes back.
	AllocateTop int `yaml:"allocate_top,omitempty"`
}

// SourceName implements provider.SourceConfig.
func (c *Config) SourceName() *string { return &c.Name }

// Check implements provider.SourceConfig. Unlike New, it takes credential
// and cloud names only as documented, so that the file has one spelling.
func (c *Config) Check(v provider.Checker) {
	if c.Credential == "" {
		c.Credential = CredentialDefault
	}
	if c.Cloud == "" {
		c.Cloud = CloudPublic
	}
	// request_budget: 0 is an error, not a default, when the file says so.
	if !v.Has("request_budget") {
		c.RequestBudget = DefaultRequestBudget
	}
	c.checkCredential(v)

	switch c.Cloud {
	case CloudPublic, CloudChina, CloudUSGovernment:
	default:
		v.Errorf("cloud", "azure.cloud must be %s, %s or %s", CloudPublic, CloudChina, CloudUSGovernment)
	}
	for _, u := range []struct{ key, v string }{{"authority_host", c.AuthorityHost}, {"resource_manager_endpoint", c.ResourceManagerEndpoint}} {
		if u.v == "" {
			continue
		}
		if err := provider.CheckURL(u.v); err != nil {
			v.Errorf(u.key, "azure.%s %w", u.key, err)
		} else if !strings.HasPrefix(u.v, "https://") {
			v.Errorf(u.key, "azure.%s must be an https:// URL: the Azure SDK sends tokens only over TLS", u.key)
		}
	}

	seen := map[string]bool{}
	for i, sub := range c.Subscriptions {
		key := "subscriptions." + strconv.Itoa(i)
		low := strings.ToLower(sub)
		switch {
		case !subscriptionIDPattern.MatchString(low):
			v.Errorf(key, "azure.subscriptions entry %d is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)", i+1)
		case seen[low]:
			v.Errorf(key, "azure.subscriptions lists %s twice", low)
		}
		seen[low] = true
		c.Subscriptions[i] = low
	}
	if len(c.Subscriptions) == 0 && !c.ListSubscriptions {
		v.Errorf("", "azure entry %q has no subscriptions; list them in subscriptions or set list_subscriptions: true", c.Name)
	}
	if c.RequestBudget < 1 {
		v.Errorf("request_budget", "azure.request_budget must be at least 1")
	}
	a := c.Allocation()
	provider.CheckAllocation(v, &a, nil)
	c.AllocateTop = a.Top
	// Azure tag names ignore case, so that keys which differ in case only
	// would read the same tag twice (CheckAllocation compares exactly).
	for i, k := range c.AllocateBy {
		if j := slices.IndexFunc(c.AllocateBy[:i], func(e string) bool { return strings.EqualFold(e, k) }); j >= 0 && c.AllocateBy[j] != k {
			v.Errorf(fmt.Sprintf("allocate_by.%d", i), "allocate_by lists a key twice: Azure tag names ignore case")
		}
	}
}

// checkCredential checks that the entry gives what its credential needs
// and nothing it ignores: a secret that is set but unused is most likely
// meant for another credential, and would be held for nothing.
func (c *Config) checkCredential(v provider.Checker) {
	need := func(key, value, why string) {
		if value == "" {
			v.Errorf("", "azure entry %q has credential %s but no %s; %s", c.Name, c.Credential, key, why)
		}
	}
	forbid := func(keys ...string) {
		for _, k := range keys {
			if v.Has(k) {
				v.Errorf(k, "azure entry %q sets %s, which credential %s does not use", c.Name, k, c.Credential)
			}
		}
	}
	needApp := func() {
		need("tenant_id", c.TenantID, "set the directory (tenant) id of the app registration")
		need("client_id", c.ClientID, "set the application (client) id of the app registration")
	}
	clientSecret := provider.SecretRef{Key: "client_secret", What: "client secret",
		Value: &c.ClientSecret, File: c.ClientSecretFile, Env: c.ClientSecretEnv}
	password := provider.SecretRef{Key: "certificate_password", What: "certificate password",
		Value: &c.CertificatePassword, File: c.CertificatePasswordFile, Env: c.CertificatePasswordEnv}
	certKeys := []string{"certificate_file", "certificate_password", "certificate_password_file", "certificate_password_env"}
	secretKeys := []string{"client_secret", "client_secret_file", "client_secret_env"}

	switch c.Credential {
	case CredentialDefault:
		forbid(slices.Concat([]string{"client_id"}, secretKeys, certKeys)...)
	case CredentialClientSecret:
		needApp()
		v.Secret(clientSecret, true)
		forbid(certKeys...)
	case CredentialClientCertificate:
		needApp()
		need("certificate_file", c.CertificateFile, "set the PEM or PKCS#12 file holding the certificate and its key")
		v.File("certificate_file", &c.CertificateFile)
		v.Secret(password, false)
		forbid(secretKeys...)
	default:
		v.Errorf("credential", "azure.credential must be %s, %s or %s",
			CredentialDefault, CredentialClientSecret, CredentialClientCertificate)
	}
}

// Identity implements provider.SourceConfig. It is the string of earlier
// releases, so that their state files still match.
func (c *Config) Identity() string {
	subs := slices.Sorted(slices.Values(c.Subscriptions))
	return strings.Join([]string{Name, c.Cloud, c.ResourceManagerEndpoint, "tenant=" + c.TenantID,
		"subscriptions=" + strings.Join(subs, ","), "list=" + strconv.FormatBool(c.ListSubscriptions)}, "|")
}

// Covers implements provider.SourceConfig: each subscription listed, or
// every subscription the credential reads.
func (c *Config) Covers() []provider.Coverage {
	if len(c.Subscriptions) == 0 {
		who := c.Credential + " " + c.ClientID + "@" + c.TenantID
		return []provider.Coverage{{Key: "all=" + who, What: "every subscription of one credential"}}
	}
	out := make([]provider.Coverage, 0, len(c.Subscriptions))
	for _, s := range c.Subscriptions {
		id := strings.ToLower(s)
		out = append(out, provider.Coverage{Key: "subscription=" + id, What: "subscription " + id})
	}
	return out
}

// WantsProvisional implements provider.ProvisionalSource.
func (c *Config) WantsProvisional() bool { return c.Provisional }

var _ provider.AllocatingSource = (*Config)(nil)

// Allocation implements provider.AllocatingSource. Any tag key is taken:
// Azure tag names are free text, compared without case.
func (c *Config) Allocation() provider.Allocation {
	return provider.Allocation{By: c.AllocateBy, Top: c.AllocateTop}
}

// New implements provider.SourceConfig.
func (c *Config) New(_ context.Context, env provider.Env) (provider.Provider, error) {
	p, err := New(Options{
		TenantID:                c.TenantID,
		Credential:              c.Credential,
		ClientID:                c.ClientID,
		ClientSecret:            c.ClientSecret.Value(),
		CertificatePath:         c.CertificateFile,
		CertificatePassword:     c.CertificatePassword.Value(),
		Cloud:                   c.Cloud,
		AuthorityHost:           c.AuthorityHost,
		ResourceManagerEndpoint: c.ResourceManagerEndpoint,
		ResourceManagerAudience: c.ResourceManagerAudience,
		Subscriptions:           c.Subscriptions,
		ListSubscriptions:       c.ListSubscriptions,
		RequestBudget:           c.RequestBudget,
		Provisional:             c.Provisional,
		HTTPClient:              env.Connection.HTTPClient,
		Observe:                 env.Observe,
		Logger:                  env.Logger,
	})
	if err != nil {
		// A nil *Provider in a provider.Provider would not be nil.
		return nil, err
	}
	return p, nil
}

// demo serves azurefake's demo tenant. Azure's SDK sends tokens only over
// TLS, so the fake serves a certificate of its own and the demo client
// trusts just that, not the system roots.
func demo(ctx context.Context, now time.Time, logger *slog.Logger) (*provider.Demo, error) {
	serverTLS, roots, _, err := azurefake.NewTLSConfig()
	if err != nil {
		return nil, fmt.Errorf("azure demo certificate: %w", err)
	}
	fake := azurefake.NewServer(azurefake.Demo(now), azurefake.DemoClientID, azurefake.DemoClientSecret)
	url, stop, err := fakehttp.Serve(ctx, fake, serverTLS, logger)
	if err != nil {
		return nil, fmt.Errorf("azure demo: %w", err)
	}
	const name = "azure-demo"
	return &provider.Demo{
		Entries: []map[string]any{{
			"name":                      name,
			"credential":                CredentialClientSecret,
			"tenant_id":                 azurefake.DemoTenantID,
			"client_id":                 azurefake.DemoClientID,
			"client_secret":             azurefake.DemoClientSecret,
			"authority_host":            url,
			"resource_manager_endpoint": url,
			"list_subscriptions":        true,
			"provisional":               true,
			// The demo's resources carry a team tag of five values,
			// the sandboxes' none; the disks of the AKS clusters'
			// volumes carry the namespace the Azure Disk CSI driver
			// tags them with.
			"allocate_by": []string{azurefake.DemoTagKey, azurefake.PVCNamespaceTag},
		}},
		Connections: map[string]provider.Connection{name: {HTTPClient: &http.Client{
			Timeout:   time.Minute,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		}}},
		Close: stop,
	}, nil
}

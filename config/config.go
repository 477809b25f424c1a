// Package config loads the exporter's YAML configuration: strictly, so that
// a typo is an error with a file and line rather than a silently ignored
// key, and with credentials that cannot leak through printing or logging.
// It knows nothing of cloud SDKs or Prometheus; providers receive the
// resolved values.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults, stated once more with their reasons in
// testdata/config/example.yml; a test keeps the two in step.
const (
	DefaultInterval       = 6 * time.Hour
	DefaultIdleInterval   = 24 * time.Hour
	DefaultJitter         = 0.1
	DefaultTimeout        = 10 * time.Minute
	DefaultBackoffMin     = time.Minute
	DefaultBackoffMax     = time.Hour
	DefaultMaxConcurrency = 2

	DefaultAzureCloud         = "public"
	DefaultAzureCredential    = "default"
	DefaultAzureRequestBudget = 500

	DefaultGCPCarbonTable    = "carbon_footprint"
	DefaultGCPMaxBytesBilled = 10 << 30

	DefaultIBMAPIURL = "https://api.carbon-calculator.cloud.ibm.com"
	DefaultIBMIAMURL = "https://iam.cloud.ibm.com"
)

// maxKeyFileSize bounds what is read from api_key_file, so that pointing it
// at a log or a device cannot exhaust memory.
const maxKeyFileSize = 64 << 10

// Config is the whole configuration file. Each provider holds a list, so
// that one exporter covers every account an organisation has.
type Config struct {
	Refresh Refresh        `yaml:"refresh"`
	OTLP    OTLP           `yaml:"otlp"`
	GCP     []GCPExport    `yaml:"gcp,omitempty"`
	Azure   []AzureAccount `yaml:"azure,omitempty"`
	IBM     []IBMAccount   `yaml:"ibm,omitempty"`
}

// GCPExport is one Carbon Footprint export in BigQuery, with the billing
// export of the same billing account for cost. After Parse, Name,
// CarbonTable (project.dataset.table) and MaxBytesBilled are set and
// CredentialsFile is absolute.
type GCPExport struct {
	Name string `yaml:"name"`
	// Project runs (and pays for) the query jobs.
	Project string `yaml:"project"`
	// CarbonTable is project.dataset.table, or project.dataset for the
	// export's default table name carbon_footprint.
	CarbonTable string `yaml:"carbon_table"`
	// BillingTable is the standard billing export table,
	// project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX; without
	// it there is no cost metric.
	BillingTable string `yaml:"billing_table,omitempty"`
	// BillingAccount keeps only this billing account's carbon rows, for a
	// dataset that holds several.
	BillingAccount string `yaml:"billing_account,omitempty"`
	// Location is the datasets' location, e.g. US or EU.
	Location string `yaml:"location,omitempty"`
	// MaxBytesBilled fails any query that would bill more, a guard
	// against a misconfigured table scan.
	MaxBytesBilled int64 `yaml:"max_bytes_billed"`
	// CredentialsFile is a service-account key; empty selects Application
	// Default Credentials.
	CredentialsFile string `yaml:"credentials_file,omitempty"`
	// Endpoint overrides the BigQuery REST endpoint.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// AzureAccount is one identity reading the Carbon Optimization API for a
// set of subscriptions. After Parse, Name, Credential, Cloud and
// RequestBudget are set, secrets are resolved into ClientSecret and
// CertificatePassword, and CertificateFile is an absolute path.
type AzureAccount struct {
	Name string `yaml:"name"`
	// Credential selects how to authenticate: "default" (environment,
	// workload identity, managed identity, Azure CLI), "client_secret" or
	// "client_certificate".
	Credential              string   `yaml:"credential"`
	TenantID                string   `yaml:"tenant_id,omitempty"`
	ClientID                string   `yaml:"client_id,omitempty"`
	ClientSecret            Secret   `yaml:"client_secret,omitempty"`
	ClientSecretFile        string   `yaml:"client_secret_file,omitempty"`
	ClientSecretEnv         string   `yaml:"client_secret_env,omitempty"`
	CertificateFile         string   `yaml:"certificate_file,omitempty"`
	CertificatePassword     Secret   `yaml:"certificate_password,omitempty"`
	CertificatePasswordFile string   `yaml:"certificate_password_file,omitempty"`
	CertificatePasswordEnv  string   `yaml:"certificate_password_env,omitempty"`
	Cloud                   string   `yaml:"cloud"`
	AuthorityHost           string   `yaml:"authority_host,omitempty"`
	ResourceManagerEndpoint string   `yaml:"resource_manager_endpoint,omitempty"`
	ResourceManagerAudience string   `yaml:"resource_manager_audience,omitempty"`
	Subscriptions           []string `yaml:"subscriptions,omitempty"`
	ListSubscriptions       bool     `yaml:"list_subscriptions,omitempty"`
	// RequestBudget caps the ARM requests of one refresh, so that a
	// misconfiguration cannot run up thousands of calls.
	RequestBudget int `yaml:"request_budget"`
}

// OTLP configures the optional push of the same metrics over OTLP/gRPC.
// Whatever is left empty comes from the standard OTEL_EXPORTER_OTLP_*
// environment variables, so that the exporter fits existing OpenTelemetry
// deployments without a second way to say the same thing.
type OTLP struct {
	Enabled bool `yaml:"enabled"`
	// Interval and Timeout are zero unless set, which leaves them to
	// OTEL_METRIC_EXPORT_INTERVAL and OTEL_EXPORTER_OTLP_TIMEOUT.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Endpoint is host:port or a URL.
	Endpoint string        `yaml:"endpoint,omitempty"`
	Insecure bool          `yaml:"insecure,omitempty"`
	Timeout  time.Duration `yaml:"timeout,omitempty"`
	// Headers often carry credentials, so their values are secrets.
	Headers map[string]Secret `yaml:"headers,omitempty"`
}

// Refresh is shared by all providers because the schedule is driven by
// publication dates, which the providers know, not by the user.
type Refresh struct {
	// Interval applies while a month is due to be published.
	Interval time.Duration `yaml:"interval"`
	// IdleInterval applies otherwise; data rarely changes then.
	IdleInterval time.Duration `yaml:"idle_interval"`
	// Jitter is a fraction of the interval, so that several exporters
	// started together do not call the API in step.
	Jitter float64 `yaml:"jitter"`
	// Timeout bounds one refresh of one source.
	Timeout    time.Duration `yaml:"timeout"`
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxConcurrency bounds the sources of one provider refreshed at once,
	// to stay within the provider's rate limits.
	MaxConcurrency int `yaml:"max_concurrency"`
}

// IBMAccount is one IBM Cloud account, enterprise, account group or
// enterprise account to read from the Carbon Calculator API. After Parse,
// Name, APIKey, APIURL and IAMURL are always set; APIKeyFile and APIKeyEnv
// keep what the user wrote, so that Config.String shows where the key came
// from.
type IBMAccount struct {
	Name                string `yaml:"name"`
	APIKey              Secret `yaml:"api_key,omitempty"`
	APIKeyFile          string `yaml:"api_key_file,omitempty"`
	APIKeyEnv           string `yaml:"api_key_env,omitempty"`
	EnterpriseID        string `yaml:"enterprise_id,omitempty"`
	EnterpriseGroupID   string `yaml:"enterprise_group_id,omitempty"`
	EnterpriseAccountID string `yaml:"enterprise_account_id,omitempty"`
	AccountName         string `yaml:"account_name,omitempty"`
	APIURL              string `yaml:"api_url"`
	IAMURL              string `yaml:"iam_url"`
}

// Default is the configuration of an empty file: every default and no
// sources. Code that builds a configuration without a file, such as --demo,
// starts from it so that it gets the same defaults as users.
func Default() *Config {
	return &Config{Refresh: defaultRefresh()}
}

func defaultRefresh() Refresh {
	return Refresh{
		Interval:       DefaultInterval,
		IdleInterval:   DefaultIdleInterval,
		Jitter:         DefaultJitter,
		Timeout:        DefaultTimeout,
		BackoffMin:     DefaultBackoffMin,
		BackoffMax:     DefaultBackoffMax,
		MaxConcurrency: DefaultMaxConcurrency,
	}
}

// Load reads and parses the configuration file at path, taking keys named
// by api_key_env from the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return Parse(data, path, os.Getenv)
}

// Parse parses and validates a configuration and resolves its API keys.
// filename prefixes every message and anchors relative api_key_file paths;
// getenv (os.Getenv if nil) is a parameter so that tests need not touch the
// process environment. The error lists every problem found, one per line,
// each as "FILE:LINE: message"; it never contains a secret.
func Parse(data []byte, filename string, getenv func(string) string) (*Config, error) {
	if filename == "" {
		filename = "config"
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &parser{file: filename, getenv: getenv, pos: map[string]position{}}
	c := Default()
	if err := p.decode(data, c); err != nil {
		return nil, err
	}
	p.validate(c)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// String renders the configuration as YAML with secrets redacted, for
// --config.check and debugging.
func (c *Config) String() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Sprintf("<error creating config string: %s>", err)
	}
	return string(b)
}

// Hash identifies the resolved configuration, so that a reload that changes
// nothing can be skipped. Secret values take part, so a rotated key counts
// as a change; being a SHA-256, the hash does not reveal them.
func (c *Config) Hash() string {
	h := sha256.New()
	io.WriteString(h, c.String())
	for _, a := range c.IBM {
		fmt.Fprintf(h, "\x00%d:%s", len(a.APIKey), a.APIKey.Value())
	}
	for _, a := range c.Azure {
		for _, v := range []Secret{a.ClientSecret, a.CertificatePassword} {
			fmt.Fprintf(h, "\x00%d:%s", len(v), v.Value())
		}
	}
	// Credential files are read by the providers, not here; their content
	// takes part so that a reload after rotating one is not skipped.
	var files []string
	for _, g := range c.GCP {
		files = append(files, g.CredentialsFile)
	}
	for _, a := range c.Azure {
		files = append(files, a.CertificateFile)
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		b, _ := readKeyFile(f)
		fmt.Fprintf(h, "\x00%d:%s", len(b), b)
	}
	for _, k := range slices.Sorted(maps.Keys(c.OTLP.Headers)) {
		v := c.OTLP.Headers[k].Value()
		fmt.Fprintf(h, "\x00%d:%s=%d:%s", len(k), k, len(v), v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (p *parser) validate(c *Config) {
	r := &c.Refresh
	// The floors keep a typo such as "1ms" from hammering the providers'
	// APIs.
	for _, d := range []struct {
		key   string
		v     time.Duration
		floor time.Duration
	}{
		{"interval", r.Interval, time.Minute},
		{"idle_interval", r.IdleInterval, time.Minute},
		{"timeout", r.Timeout, time.Second},
		{"backoff_min", r.BackoffMin, time.Second},
		{"backoff_max", r.BackoffMax, time.Second},
	} {
		switch {
		case d.v <= 0:
			p.errorf(p.line("refresh."+d.key), "refresh.%s must be greater than 0", d.key)
		case d.v < d.floor:
			p.errorf(p.line("refresh."+d.key), "refresh.%s must be at least %s", d.key, formatDuration(d.floor))
		}
	}
	if r.Interval > 0 && r.IdleInterval > 0 && r.IdleInterval < r.Interval {
		at := "refresh.idle_interval"
		if !p.has(at) {
			at = "refresh.interval"
		}
		p.errorf(p.line(at), "refresh.idle_interval (%s) must not be shorter than refresh.interval (%s): "+
			"interval applies while a month is due to be published, idle_interval the rest of the time",
			formatDuration(r.IdleInterval), formatDuration(r.Interval))
	}
	if r.BackoffMin > 0 && r.BackoffMax > 0 && r.BackoffMin > r.BackoffMax {
		at := "refresh.backoff_min"
		if !p.has(at) {
			at = "refresh.backoff_max"
		}
		p.errorf(p.line(at), "refresh.backoff_min (%s) must not be longer than refresh.backoff_max (%s)",
			formatDuration(r.BackoffMin), formatDuration(r.BackoffMax))
	}
	if !(r.Jitter >= 0 && r.Jitter <= 0.5) {
		p.errorf(p.line("refresh.jitter"), "refresh.jitter must be between 0 and 0.5, a fraction of the interval")
	}
	if r.MaxConcurrency < 1 {
		p.errorf(p.line("refresh.max_concurrency"), "refresh.max_concurrency must be at least 1")
	}

	o := &c.OTLP
	if p.has("otlp.interval") && o.Interval <= 0 {
		p.errorf(p.line("otlp.interval"), "otlp.interval must be greater than 0")
	} else if p.has("otlp.interval") && o.Interval < time.Second {
		p.errorf(p.line("otlp.interval"), "otlp.interval must be at least 1s")
	}
	if p.has("otlp.timeout") && o.Timeout <= 0 {
		p.errorf(p.line("otlp.timeout"), "otlp.timeout must be greater than 0")
	}
	if strings.Contains(o.Endpoint, "://") {
		if err := checkURL(o.Endpoint); err != nil {
			p.errorf(p.line("otlp.endpoint"), "otlp.endpoint %w", err)
		}
	} else if o.Endpoint != "" {
		if _, port, err := net.SplitHostPort(o.Endpoint); err != nil || port == "" {
			p.errorf(p.line("otlp.endpoint"), "otlp.endpoint must be host:port or an http:// or https:// URL")
		}
	}

	names := map[string]int{} // source name to the line that gave it
	for i := range c.GCP {
		p.validateGCP(&c.GCP[i], "gcp."+strconv.Itoa(i), defaultName("gcp", i, len(c.GCP)), names)
	}
	for i := range c.Azure {
		p.validateAzure(&c.Azure[i], "azure."+strconv.Itoa(i), defaultName("azure", i, len(c.Azure)), names)
	}
	for i := range c.IBM {
		p.validateIBM(&c.IBM[i], "ibm."+strconv.Itoa(i), defaultName("ibm", i, len(c.IBM)), names)
	}
}

// sourceName assigns a default name or checks the given one, and keeps
// names unique across every provider.
func (p *parser) sourceName(section string, name *string, path, def string, names map[string]int) {
	entry := p.line(path)
	switch {
	case *name == "":
		*name = def
		if prev, ok := names[def]; ok {
			p.errorf(entry, "the default name %q of this %s entry is already used at line %d; give the entry a unique name", def, section, prev)
		}
		names[def] = entry
	case !validName(*name):
		p.errorf(p.line(path+".name"), "%s.name must contain only lowercase letters, digits, '_' and '-'", section)
	default:
		if prev, ok := names[*name]; ok {
			p.errorf(p.line(path+".name"), "name %q is already used at line %d; source names must be unique", *name, prev)
		} else {
			names[*name] = p.line(path + ".name")
		}
	}
}

var (
	gcpProject   = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	gcpDataset   = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	gcpTable     = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	billingAcct  = regexp.MustCompile(`^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$`)
	gcpTableHint = "project.dataset.table, e.g. my-project.carbon.carbon_footprint"
)

// splitTable checks a BigQuery table reference and returns its parts.
func splitTable(ref string, parts int) bool {
	fields := strings.Split(ref, ".")
	if len(fields) != parts || !gcpProject.MatchString(fields[0]) || !gcpDataset.MatchString(fields[1]) {
		return false
	}
	return parts == 2 || gcpTable.MatchString(fields[2])
}

func (p *parser) validateGCP(g *GCPExport, path, name string, names map[string]int) {
	p.sourceName("gcp", &g.Name, path, name, names)
	entry := p.line(path)
	if g.Project == "" {
		p.errorf(entry, "gcp entry %q has no project; set the project that runs the queries (it needs the BigQuery Job User role)", g.Name)
	} else if !gcpProject.MatchString(g.Project) {
		p.errorf(p.line(path+".project"), "gcp.project %q is not a project id", g.Project)
	}
	switch {
	case g.CarbonTable == "":
		p.errorf(entry, "gcp entry %q has no carbon_table; set the Carbon Footprint export's %s", g.Name, gcpTableHint)
	case splitTable(g.CarbonTable, 2):
		g.CarbonTable += "." + DefaultGCPCarbonTable
	case !splitTable(g.CarbonTable, 3):
		p.errorf(p.line(path+".carbon_table"), "gcp.carbon_table must be %s", gcpTableHint)
	}
	if g.BillingTable != "" && !splitTable(g.BillingTable, 3) {
		p.errorf(p.line(path+".billing_table"), "gcp.billing_table must be project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX")
	}
	if g.BillingAccount != "" && !billingAcct.MatchString(g.BillingAccount) {
		p.errorf(p.line(path+".billing_account"), "gcp.billing_account must look like 012345-6789AB-CDEF01")
	}
	if !p.has(path + ".max_bytes_billed") {
		g.MaxBytesBilled = DefaultGCPMaxBytesBilled
	} else if g.MaxBytesBilled < 10<<20 {
		p.errorf(p.line(path+".max_bytes_billed"), "gcp.max_bytes_billed must be at least 10485760 (10 MiB), BigQuery's minimum charge per query")
	}
	if g.CredentialsFile != "" {
		if !filepath.IsAbs(g.CredentialsFile) {
			g.CredentialsFile = filepath.Join(filepath.Dir(p.file), g.CredentialsFile)
		}
		if _, err := os.Stat(g.CredentialsFile); err != nil {
			p.errorf(p.line(path+".credentials_file"), "gcp.credentials_file cannot be read: %w", err)
		}
	}
	if g.Endpoint != "" {
		if err := checkURL(g.Endpoint); err != nil {
			p.errorf(p.line(path+".endpoint"), "gcp.endpoint %w", err)
		}
	}
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (p *parser) validateAzure(a *AzureAccount, path, name string, names map[string]int) {
	p.sourceName("azure", &a.Name, path, name, names)
	entry := p.line(path)
	if a.Credential == "" {
		a.Credential = DefaultAzureCredential
	}
	if a.Cloud == "" {
		a.Cloud = DefaultAzureCloud
	}
	if !p.has(path + ".request_budget") {
		a.RequestBudget = DefaultAzureRequestBudget
	}
	need := func(key, v, why string) {
		if v == "" {
			p.errorf(entry, "azure entry %q has credential %s but no %s; %s", a.Name, a.Credential, key, why)
		}
	}
	forbid := func(keys ...string) {
		for _, k := range keys {
			if p.has(path + "." + k) {
				p.errorf(p.line(path+"."+k), "azure entry %q sets %s, which credential %s does not use", a.Name, k, a.Credential)
			}
		}
	}
	clientSecret := secretRef{section: "azure", key: "client_secret", what: "client secret", entry: a.Name,
		value: &a.ClientSecret, file: a.ClientSecretFile, env: a.ClientSecretEnv}
	passwordRef := secretRef{section: "azure", key: "certificate_password", what: "certificate password", entry: a.Name,
		value: &a.CertificatePassword, file: a.CertificatePasswordFile, env: a.CertificatePasswordEnv}
	certKeys := []string{"certificate_file", "certificate_password", "certificate_password_file", "certificate_password_env"}
	secretKeys := []string{"client_secret", "client_secret_file", "client_secret_env"}
	switch a.Credential {
	case "default":
		forbid(append(append([]string{"client_id"}, secretKeys...), certKeys...)...)
	case "client_secret":
		need("tenant_id", a.TenantID, "set the directory (tenant) id of the app registration")
		need("client_id", a.ClientID, "set the application (client) id of the app registration")
		p.secret(clientSecret, path, true)
		forbid(certKeys...)
	case "client_certificate":
		need("tenant_id", a.TenantID, "set the directory (tenant) id of the app registration")
		need("client_id", a.ClientID, "set the application (client) id of the app registration")
		need("certificate_file", a.CertificateFile, "set the PEM or PKCS#12 file holding the certificate and its key")
		if a.CertificateFile != "" {
			if !filepath.IsAbs(a.CertificateFile) {
				a.CertificateFile = filepath.Join(filepath.Dir(p.file), a.CertificateFile)
			}
			if _, err := os.Stat(a.CertificateFile); err != nil {
				p.errorf(p.line(path+".certificate_file"), "azure.certificate_file cannot be read: %w", err)
			}
		}
		p.secret(passwordRef, path, false)
		forbid(secretKeys...)
	default:
		p.errorf(p.line(path+".credential"), "azure.credential must be default, client_secret or client_certificate")
	}
	switch a.Cloud {
	case "public", "china", "usgovernment":
	default:
		p.errorf(p.line(path+".cloud"), "azure.cloud must be public, china or usgovernment")
	}
	for _, u := range []struct{ key, v string }{{"authority_host", a.AuthorityHost}, {"resource_manager_endpoint", a.ResourceManagerEndpoint}} {
		if u.v == "" {
			continue
		}
		if err := checkURL(u.v); err != nil {
			p.errorf(p.line(path+"."+u.key), "azure.%s %w", u.key, err)
		} else if !strings.HasPrefix(u.v, "https://") {
			p.errorf(p.line(path+"."+u.key), "azure.%s must be an https:// URL: the Azure SDK sends tokens only over TLS", u.key)
		}
	}
	seen := map[string]bool{}
	for i, sub := range a.Subscriptions {
		at := p.line(path + ".subscriptions." + strconv.Itoa(i))
		low := strings.ToLower(sub)
		switch {
		case !guidPattern.MatchString(sub):
			p.errorf(at, "azure.subscriptions entry %d is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)", i+1)
		case seen[low]:
			p.errorf(at, "azure.subscriptions lists %s twice", low)
		}
		seen[low] = true
		a.Subscriptions[i] = low
	}
	if len(a.Subscriptions) == 0 && !a.ListSubscriptions {
		p.errorf(entry, "azure entry %q has no subscriptions; list them in subscriptions or set list_subscriptions: true", a.Name)
	}
	if a.RequestBudget < 1 {
		p.errorf(p.line(path+".request_budget"), "azure.request_budget must be at least 1")
	}
}

// defaultName lets the common single-account case go without a name while
// keeping names stable when more accounts are added after the first one.
func defaultName(provider string, i, n int) string {
	if n == 1 {
		return provider
	}
	return fmt.Sprintf("%s-%d", provider, i+1)
}

func (p *parser) validateIBM(a *IBMAccount, path, name string, names map[string]int) {
	p.sourceName("ibm", &a.Name, path, name, names)
	p.secret(secretRef{section: "ibm", key: "api_key", what: "API key", entry: a.Name,
		value: &a.APIKey, file: a.APIKeyFile, env: a.APIKeyEnv}, path, true)

	var enterprise string
	for _, e := range []struct{ key, v string }{
		{"enterprise_id", a.EnterpriseID},
		{"enterprise_group_id", a.EnterpriseGroupID},
		{"enterprise_account_id", a.EnterpriseAccountID},
	} {
		if e.v == "" {
			continue
		}
		line := p.line(path + "." + e.key)
		if enterprise != "" {
			p.errorf(line, "ibm entry %q sets both %s and %s; set at most one of enterprise_id, enterprise_group_id and enterprise_account_id",
				a.Name, enterprise, e.key)
		}
		enterprise = e.key
		if !validID(e.v) {
			p.errorf(line, "ibm.%s must be 32 lowercase letters and digits, as shown by the IBM Cloud console", e.key)
		}
	}

	if a.APIURL == "" {
		a.APIURL = DefaultIBMAPIURL
	}
	if a.IAMURL == "" {
		a.IAMURL = DefaultIBMIAMURL
	}
	for _, u := range []struct{ key, v string }{{"api_url", a.APIURL}, {"iam_url", a.IAMURL}} {
		if err := checkURL(u.v); err != nil {
			p.errorf(p.line(path+"."+u.key), "ibm.%s %w", u.key, err)
		}
	}
}

// secretRef is a credential that may be given inline, in a file or in an
// environment variable: KEY, KEY_file or KEY_env.
type secretRef struct {
	section, key, what, entry string
	value                     *Secret
	file, env                 string
}

// secret checks that at most one way to give the secret is used (exactly
// one when required) and moves the secret into value whichever way it was
// given, so that providers have a single place to read it from.
func (p *parser) secret(r secretRef, path string, required bool) {
	var given []string
	for _, k := range []struct {
		key string
		set bool
	}{
		{r.key, *r.value != ""},
		{r.key + "_file", r.file != ""},
		{r.key + "_env", r.env != ""},
	} {
		if k.set || p.has(path+"."+k.key) {
			given = append(given, k.key)
		}
	}
	switch {
	case len(given) == 0 && required:
		p.errorf(p.line(path), "%s entry %q has no %s; set one of %s_env, %s_file or %s",
			r.section, r.entry, r.what, r.key, r.key, r.key)
	case len(given) > 1:
		p.errorf(p.line(path+"."+given[1]), "%s entry %q sets %s; set only one of %s, %s_file and %s_env",
			r.section, r.entry, strings.Join(given, " and "), r.key, r.key, r.key)
	case len(given) == 1:
		p.resolveSecret(r, path+"."+given[0])
	}
}

func (p *parser) resolveSecret(r secretRef, path string) {
	line := p.line(path)
	switch {
	case r.file != "":
		file := r.file
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(p.file), file)
		}
		v, err := readKeyFile(file)
		if err != nil {
			p.errorf(line, "%s.%s_file cannot be read: %w", r.section, r.key, err)
			return
		}
		if v == "" {
			p.errorf(line, "%s.%s_file %q is empty; it must contain the %s", r.section, r.key, file, r.what)
			return
		}
		*r.value = Secret(v)
	case r.env != "":
		v := strings.TrimSpace(p.getenv(r.env))
		if v == "" {
			p.errorf(line, "%s.%s_env names the environment variable %q, which is unset or empty; set it or use %s_file",
				r.section, r.key, r.env, r.key)
			return
		}
		*r.value = Secret(v)
	case *r.value == "":
		p.errorf(line, "%s is empty", display(path))
	}
}

// readKeyFile trims surrounding whitespace because editors and
// `echo key > file` add a trailing newline, which no key contains.
func readKeyFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxKeyFileSize {
		return "", fmt.Errorf("%s is larger than %d bytes; it must contain only the secret", name, maxKeyFileSize)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkURL rejects user info, queries and fragments because the providers
// append paths and add credentials themselves; the URL is never quoted back,
// since user info may hold a password.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return errors.New("must be an absolute http:// or https:// URL")
	case u.User != nil:
		return errors.New("must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("must not contain a query")
	case u.Fragment != "":
		return errors.New("must not contain a fragment")
	}
	return nil
}

// validName keeps source names usable as label values and in file names.
func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

func validID(s string) bool {
	return len(s) == 32 && validName(s) && !strings.ContainsAny(s, "_-")
}

// formatDuration drops the zero units time.Duration.String adds ("6h0m0s"),
// so that messages echo durations as users write them.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

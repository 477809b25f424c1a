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
	"net/url"
	"os"
	"path/filepath"
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

	DefaultIBMAPIURL = "https://api.carbon-calculator.cloud.ibm.com"
	DefaultIBMIAMURL = "https://iam.cloud.ibm.com"
)

// maxKeyFileSize bounds what is read from api_key_file, so that pointing it
// at a log or a device cannot exhaust memory.
const maxKeyFileSize = 64 << 10

// Config is the whole configuration file. Each provider holds a list, so
// that one exporter covers every account an organisation has.
type Config struct {
	Refresh Refresh      `yaml:"refresh"`
	IBM     []IBMAccount `yaml:"ibm,omitempty"`
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
	return hex.EncodeToString(h.Sum(nil))
}

func (p *parser) validate(c *Config) {
	r := &c.Refresh
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"interval", r.Interval},
		{"idle_interval", r.IdleInterval},
		{"timeout", r.Timeout},
		{"backoff_min", r.BackoffMin},
		{"backoff_max", r.BackoffMax},
	} {
		if d.v <= 0 {
			p.errorf(p.line("refresh."+d.key), "refresh.%s must be greater than 0", d.key)
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

	names := map[string]int{} // source name to the line that gave it
	for i := range c.IBM {
		p.validateIBM(&c.IBM[i], "ibm."+strconv.Itoa(i), defaultName("ibm", i, len(c.IBM)), names)
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
	entry := p.line(path)
	if a.Name == "" {
		a.Name = name
		if prev, ok := names[name]; ok {
			p.errorf(entry, "the default name %q of this ibm entry is already used at line %d; give the entry a unique name", name, prev)
		}
		names[name] = entry
	} else if !validName(a.Name) {
		p.errorf(p.line(path+".name"), "ibm.name must contain only lowercase letters, digits, '_' and '-'")
	} else if prev, ok := names[a.Name]; ok {
		p.errorf(p.line(path+".name"), "name %q is already used at line %d; source names must be unique", a.Name, prev)
	} else {
		names[a.Name] = p.line(path + ".name")
	}

	var given []string
	for _, k := range []struct {
		key string
		set bool
	}{
		{"api_key", a.APIKey != ""},
		{"api_key_file", a.APIKeyFile != ""},
		{"api_key_env", a.APIKeyEnv != ""},
	} {
		if k.set || p.has(path+"."+k.key) {
			given = append(given, k.key)
		}
	}
	switch len(given) {
	case 0:
		p.errorf(entry, "ibm entry %q has no API key; set one of api_key_env, api_key_file or api_key", a.Name)
	case 1:
		p.resolveKey(a, path+"."+given[0])
	default:
		p.errorf(p.line(path+"."+given[1]), "ibm entry %q sets %s; set only one of api_key, api_key_file and api_key_env",
			a.Name, strings.Join(given, " and "))
	}

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

// resolveKey moves the key into APIKey whichever way it was given, so that
// providers have a single place to read it from.
func (p *parser) resolveKey(a *IBMAccount, path string) {
	line := p.line(path)
	switch {
	case a.APIKeyFile != "":
		file := a.APIKeyFile
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(p.file), file)
		}
		key, err := readKeyFile(file)
		if err != nil {
			p.errorf(line, "ibm.api_key_file cannot be read: %w", err)
			return
		}
		if key == "" {
			p.errorf(line, "ibm.api_key_file %q is empty; it must contain the API key", file)
			return
		}
		a.APIKey = Secret(key)
	case a.APIKeyEnv != "":
		key := strings.TrimSpace(p.getenv(a.APIKeyEnv))
		if key == "" {
			p.errorf(line, "ibm.api_key_env names the environment variable %q, which is unset or empty; set it or use api_key_file", a.APIKeyEnv)
			return
		}
		a.APIKey = Secret(key)
	case a.APIKey == "":
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
		return "", fmt.Errorf("%s is larger than %d bytes; it must contain only the API key", name, maxKeyFileSize)
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

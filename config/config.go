// Package config loads the exporter's YAML configuration: strictly, so that
// a typo is an error with a file and line rather than a silently ignored
// key, and with credentials that cannot leak through printing or logging.
// It owns the file-level parts (refresh, otlp, source names, secrets, YAML
// strictness) and hands each cloud's section to that cloud's plug-in, which
// declares its keys, defaults and checks. It knows nothing of cloud SDKs or
// Prometheus.
package config

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Defaults, stated once more with their reasons in config/example.yml; a
// test keeps the two in step.
const (
	DefaultInterval       = 6 * time.Hour
	DefaultIdleInterval   = 24 * time.Hour
	DefaultJitter         = 0.1
	DefaultTimeout        = 10 * time.Minute
	DefaultBackoffMin     = time.Minute
	DefaultBackoffMax     = time.Hour
	DefaultMaxConcurrency = 2
)

// MaxConcurrency bounds refresh.max_concurrency: each source refreshing
// at once holds a connection and a response in memory, and no provider's
// rate limits allow more than a few dozen concurrent calls.
const MaxConcurrency = 64

// maxFileSize bounds the configuration file: a real one is a few kilobytes,
// and the parser's work grows with the size.
const maxFileSize = 1 << 20

// maxKeyFileSize bounds what is read from api_key_file, so that pointing it
// at a log or a device cannot exhaust memory.
const maxKeyFileSize = 64 << 10

// Secret is a credential that redacts itself wherever it could be printed.
type Secret = provider.Secret

// Config is the whole configuration file. Each cloud's section holds a
// list, so that one exporter covers every account an organisation has.
type Config struct {
	Refresh Refresh
	OTLP    OTLP
	// Sources are the entries of every cloud's section, in the order of
	// the plug-in list, then of the file.
	Sources []Source

	layout *layout
	// credentials digests what the hash covers beyond the text: the
	// resolved secrets and the content of the credential files the
	// providers read. A digest, so that printing a Config with %#v, which
	// bypasses Secret's redaction for unexported fields, reveals nothing.
	credentials [sha256.Size]byte
}

// Source is one entry of a cloud's section.
type Source struct {
	// Provider is the plug-in's name.
	Provider string
	Config   provider.SourceConfig
}

// Name returns the source's name, unique across every cloud.
func (s Source) Name() string { return *s.Config.SourceName() }

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

// Default is the configuration of an empty file: every default and no
// sources.
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

// Load reads and parses the configuration file at path, with a section for
// each of plugins, taking secrets named by *_env keys from the process
// environment.
func Load(path string, plugins []provider.Plugin) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return Parse(data, path, os.Getenv, plugins)
}

// Parse parses and validates a configuration and resolves its secrets.
// filename prefixes every message and anchors relative *_file paths;
// getenv (os.Getenv if nil) is a parameter so that tests need not touch the
// process environment. The error lists every problem found, one per line,
// each as "FILE:LINE: message"; it never contains a secret.
func Parse(data []byte, filename string, getenv func(string) string, plugins []provider.Plugin) (*Config, error) {
	if filename == "" {
		filename = "config"
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: the configuration is larger than %d bytes; a real one is a few kilobytes", filename, maxFileSize)
	}
	l, err := newLayout(plugins)
	if err != nil {
		return nil, err
	}
	p := &parser{file: filename, getenv: getenv, pos: map[string]position{}, layout: l, credentials: sha256.New()}
	c := Default()
	c.layout = l
	if err := p.decode(data, c); err != nil {
		return nil, err
	}
	p.validate(c)
	if err := p.err(); err != nil {
		return nil, err
	}
	copy(c.credentials[:], p.credentials.Sum(nil))
	return c, nil
}

// String renders the configuration as YAML with secrets redacted, for
// --config.check and debugging.
func (c *Config) String() string {
	b, err := yaml.Marshal(c.layout.value(c).Interface())
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
	h.Write(c.credentials[:])
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
	if r.MaxConcurrency < 1 || r.MaxConcurrency > MaxConcurrency {
		p.errorf(p.line("refresh.max_concurrency"), "refresh.max_concurrency must be from 1 to %d", MaxConcurrency)
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
		if err := provider.CheckURL(o.Endpoint); err != nil {
			p.errorf(p.line("otlp.endpoint"), "otlp.endpoint %w", err)
		}
	} else if o.Endpoint != "" {
		if _, port, err := net.SplitHostPort(o.Endpoint); err != nil || port == "" {
			p.errorf(p.line("otlp.endpoint"), "otlp.endpoint must be host:port or an http:// or https:// URL")
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.errorf(p.line("otlp.endpoint"), "otlp.endpoint must have a port from 1 to 65535")
		}
	}

	names := map[string]int{} // source name to the line that gave it
	counts := map[string]int{}
	for _, src := range c.Sources {
		counts[src.Provider]++
	}
	seen := map[string]int{}
	for _, src := range c.Sources {
		i := seen[src.Provider]
		seen[src.Provider]++
		path := src.Provider + "." + strconv.Itoa(i)
		p.sourceName(src.Provider, src.Config.SourceName(), path, defaultName(src.Provider, i, counts[src.Provider]), names)
		src.Config.Check(&checker{p: p, path: path, section: src.Provider, entry: src.Name()})
	}
	// Overlaps are told only of entries that are right otherwise.
	if len(p.errs) == 0 {
		p.overlaps(c)
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
		// Later messages name the entry; an invalid name might be
		// anything, a secret included, so they get the default instead.
		*name = def
	default:
		if prev, ok := names[*name]; ok {
			p.errorf(p.line(path+".name"), "name %q is already used at line %d; source names must be unique", *name, prev)
		} else {
			names[*name] = p.line(path + ".name")
		}
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

// errNotRegular refuses devices, pipes and directories as credential
// files: reading a pipe or a terminal would block the load for good.
var errNotRegular = errors.New("not a regular file")

// errKeyFileSize is the error of a credential file past maxKeyFileSize.
var errKeyFileSize = fmt.Errorf("larger than %d bytes; it must hold only the credential", maxKeyFileSize)

// readKeyFile trims surrounding whitespace because editors and
// `echo key > file` add a trailing newline, which no key contains. Its
// errors never name the file: callers say which key gave it.
func readKeyFile(name string) (string, error) {
	// Checked before opening: opening a pipe blocks until a writer comes.
	if st, err := os.Stat(name); err != nil {
		return "", err
	} else if !st.Mode().IsRegular() {
		return "", errNotRegular
	}
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
		return "", errKeyFileSize
	}
	return strings.TrimSpace(string(b)), nil
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

// exampleHead is the example configuration's part that is the exporter's
// own: how the file works, refresh and otlp.
//
//go:embed example.yml
var exampleHead string

// Example returns the example configuration file: the exporter's own
// sections, then each plug-in's, in the order of plugins. Every key is
// shown, set to its default where it has one.
func Example(plugins []provider.Plugin) string {
	var b strings.Builder
	b.WriteString(exampleHead)
	for _, pl := range plugins {
		if pl.Example != "" {
			b.WriteString("\n")
			b.WriteString(pl.Example)
		}
	}
	return b.String()
}

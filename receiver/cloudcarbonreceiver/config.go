package cloudcarbonreceiver

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/receiver/cloudcarbonreceiver/internal/metadata"
)

const (
	// DefaultHistoryMonths is the exporter's --history.months default.
	DefaultHistoryMonths = 13
	maxHistoryMonths     = 120

	// refreshSection is the exporter's refresh section, which the
	// receiver takes as it is.
	refreshSection = "refresh"
	// configName stands for the configuration file in the plug-ins'
	// messages; relative *_file paths are relative to the Collector's
	// working directory.
	configName = "cloudcarbon"
)

// Config is the receiver's configuration: the Collector's collection
// settings, the receiver's own keys, and the exporter's configuration
// sections (refresh and one per cloud) written as in the exporter's file.
// The sections are decoded, defaulted and checked by config.Parse and the
// clouds' plug-ins, so that every key, default and message is the
// exporter's.
type Config struct {
	scraperhelper.ControllerConfig `mapstructure:",squash"`
	metadata.MetricsBuilderConfig  `mapstructure:",squash"`

	// StorageID names a storage extension (such as file_storage) that keeps
	// the fetched months across restarts; without one they are kept in
	// memory and fetched again after a restart.
	StorageID *component.ID `mapstructure:"storage"`
	// HistoryMonths is how many months the history families show, the
	// latest included (the exporter's --history.months).
	HistoryMonths int `mapstructure:"history_months"`
	// Demo serves every cloud's built-in dataset from in-process fakes
	// through the real provider clients, as the exporter's --demo does.
	Demo bool `mapstructure:"demo"`

	// Sections are the exporter's sections, which Unmarshal takes from
	// the Collector's configuration; Validate and the receiver's start
	// parse them.
	Sections Sections `mapstructure:"-"`
}

// Sections are the exporter's configuration sections as the Collector's
// configuration gave them (environment variables expanded), with the
// clouds' plug-ins that read them. The values of secret keys are held as
// configopaque.String, and printing Sections in any way redacts them.
type Sections struct {
	values  map[string]any
	plugins []provider.Plugin
}

// Format prints the sections' keys and values, secrets redacted, and not
// the plug-ins.
func (s Sections) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", fmt.Sprint(redacted(s.values)))
		return
	}
	fmt.Fprint(f, redacted(s.values))
}

var (
	_ component.Config    = (*Config)(nil)
	_ confmap.Unmarshaler = (*Config)(nil)
	_ confmap.Marshaler   = (*Config)(nil)
)

// Unmarshal takes the exporter's sections out before the Collector decodes
// the rest strictly: their keys are the plug-ins' to check.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	sections := map[string]any{}
	for _, key := range c.sectionKeys() {
		if v, ok := raw[key]; ok {
			sections[key] = v
		}
	}
	sections = withOriginalStrings(conf, sections, c.Sections.plugins)
	for key := range sections {
		conf.Delete(key)
	}
	if err := conf.Unmarshal(c); err != nil {
		return err
	}
	for _, pl := range c.Sections.plugins {
		if s, ok := sections[pl.Name]; ok {
			sections[pl.Name] = opaque(s, secretKeys(pl))
		}
	}
	c.Sections.values = sections
	return nil
}

// Marshal writes the sections back next to the receiver's own keys, with
// secrets redacted as configopaque.String marshals them. The Collector
// marshals component configurations by value.
func (c Config) Marshal(conf *confmap.Conf) error {
	type plain Config // without Marshal, which would recurse
	if err := conf.Marshal(plain(c)); err != nil {
		return err
	}
	if len(c.Sections.values) == 0 {
		return nil
	}
	return conf.Merge(confmap.NewFromStringMap(redacted(c.Sections.values).(map[string]any)))
}

// Validate checks the receiver's keys and has the exporter's parser and
// the plug-ins check the sections. Each problem is reported at its path
// in the receiver's configuration ("ibm::0::api_url"); no message quotes
// a value that may be a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.HistoryMonths < 1 || c.HistoryMonths > maxHistoryMonths {
		errs = append(errs, fmt.Errorf("history_months must be between 1 and %d", maxHistoryMonths))
	}
	if c.Demo {
		if clouds := c.cloudSections(); len(clouds) > 0 {
			errs = append(errs, fmt.Errorf("demo configures every cloud itself; remove the %s section%s or demo",
				strings.Join(clouds, ", "), plural(len(clouds))))
		}
	}
	if _, err := c.parse(os.Getenv); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parse turns the sections into the exporter's configuration, secrets
// resolved: *_env keys through getenv, *_file keys from the files.
func (c *Config) parse(getenv func(string) string) (*config.Config, error) {
	text, paths := render(c.Sections.values, c.sectionKeys())
	cfg, err := config.Parse(text, configName, getenv, c.Sections.plugins)
	if err != nil {
		return nil, paths.rewrite(err, configName)
	}
	return cfg, nil
}

// sectionKeys are the keys of the exporter's sections.
func (c *Config) sectionKeys() []string {
	return append([]string{refreshSection}, pluginNames(c.Sections.plugins)...)
}

// cloudSections names the clouds the configuration has a section for.
func (c *Config) cloudSections() []string {
	var out []string
	for _, name := range pluginNames(c.Sections.plugins) {
		if _, ok := c.Sections.values[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

func pluginNames(plugins []provider.Plugin) []string {
	names := make([]string, len(plugins))
	for i, pl := range plugins {
		names[i] = pl.Name
	}
	return names
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// secretKeys are the keys of a cloud's entry that hold a secret: the
// fields of type provider.Secret, by their yaml tag.
func secretKeys(pl provider.Plugin) map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(pl.NewConfig()).Elem()
	for f := range t.Fields() {
		if f.Type == reflect.TypeFor[provider.Secret]() {
			keys[yamlKey(f)] = true
		}
	}
	return keys
}

// stringKeys are the keys of a cloud's entry whose values are strings.
func stringKeys(pl provider.Plugin) map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(pl.NewConfig()).Elem()
	for f := range t.Fields() {
		if k := yamlKey(f); k != "" && f.Type.Kind() == reflect.String {
			keys[k] = true
		}
	}
	return keys
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// opaque wraps the values of the secret keys of a cloud section's
// entries as configopaque.String.
func opaque(section any, secrets map[string]bool) any {
	entries, ok := section.([]any)
	if !ok {
		return section
	}
	out := make([]any, len(entries))
	for i, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			out[i] = e
			continue
		}
		m = maps.Clone(m)
		for k, v := range m {
			if s, ok := v.(string); ok && secrets[k] {
				m[k] = configopaque.String(s)
			}
		}
		out[i] = m
	}
	return out
}

// redacted copies v with every configopaque.String replaced by its
// redacted text, for Marshal.
func redacted(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = redacted(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = redacted(e)
		}
		return out
	case configopaque.String:
		return v.String()
	}
	return v
}

// withOriginalStrings returns sections with the values of the clouds'
// string keys as the configuration wrote them. The Collector hands
// untyped values over as YAML reads them, so that ${env:KEY} holding
// "0123" or "1e5" would arrive as a number; decoding the same keys into
// strings recovers the text, as the Collector does for its own string
// fields. Should that decoding fail (a list where a string belongs), the
// values stay as they are, for the plug-in to report.
func withOriginalStrings(conf *confmap.Conf, sections map[string]any, plugins []provider.Plugin) map[string]any {
	var fields []reflect.StructField
	var used []provider.Plugin
	for _, pl := range plugins {
		if _, ok := sections[pl.Name].([]any); !ok {
			continue
		}
		var entry []reflect.StructField
		for i, k := range slices.Sorted(maps.Keys(stringKeys(pl))) {
			entry = append(entry, reflect.StructField{
				Name: fmt.Sprintf("F%d", i),
				Type: reflect.TypeFor[*string](),
				Tag:  reflect.StructTag(`mapstructure:"` + k + `"`),
			})
		}
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("C%d", len(fields)),
			Type: reflect.SliceOf(reflect.StructOf(entry)),
			Tag:  reflect.StructTag(`mapstructure:"` + pl.Name + `"`),
		})
		used = append(used, pl)
	}
	if len(fields) == 0 {
		return sections
	}
	v := reflect.New(reflect.StructOf(fields))
	if err := conf.Unmarshal(v.Interface(), confmap.WithIgnoreUnused()); err != nil {
		return sections
	}
	out := maps.Clone(sections)
	for i, pl := range used {
		list := v.Elem().Field(i)
		entries := slices.Clone(sections[pl.Name].([]any))
		keys := slices.Sorted(maps.Keys(stringKeys(pl)))
		for j := range min(list.Len(), len(entries)) {
			m, ok := entries[j].(map[string]any)
			if !ok {
				continue
			}
			m = maps.Clone(m)
			for k, key := range keys {
				if _, set := m[key]; set {
					if p := list.Index(j).Field(k); !p.IsNil() {
						m[key] = p.Elem().String()
					}
				}
			}
			entries[j] = m
		}
		out[pl.Name] = entries
	}
	return out
}

// Package configschema derives a JSON schema of the configuration file from
// the types the file decodes into: the refresh and otlp sections and each
// cloud plug-in's entry type, by their yaml tags. The Helm chart embeds it
// in values.schema.json, so that `helm lint` and `helm install` reject a
// misspelt key of `config` with its path, as the exporter itself would
// (config decodes with KnownFields), instead of a pod that fails at start.
//
// The schema checks keys and value types only. The exporter's own checks
// (enums, URLs, secrets given once, values that depend on each other) stay
// in the plug-ins, and `cloudcarbon_exporter --config.check` runs them.
package configschema

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Schema is a JSON schema as JSON values; encoding/json writes its keys
// sorted, so the same types give the same bytes.
type Schema = map[string]any

// durationPattern is what time.ParseDuration accepts, which yaml.v3 uses
// for time.Duration fields: "6h", "1h30m", "90s", "0".
const durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// namePattern is the rule the configuration applies to source names.
const namePattern = `^[a-z0-9_-]+$`

// Generate returns the schema of a configuration file with a section for
// each of plugins.
func Generate(plugins []provider.Plugin) (Schema, error) {
	props := Schema{
		"refresh": object(reflect.TypeFor[config.Refresh](), "Refresh schedule shared by every source."),
		"otlp":    object(reflect.TypeFor[config.OTLP](), "Optional push of the same metrics over OTLP/gRPC."),
	}
	for _, pl := range plugins {
		t := reflect.TypeOf(pl.NewConfig())
		if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			return nil, fmt.Errorf("plug-in %q: NewConfig must return a pointer to a struct", pl.Name)
		}
		if _, taken := props[pl.Name]; taken {
			return nil, fmt.Errorf("plug-in %q: the section name is taken", pl.Name)
		}
		entry := object(t.Elem(), "")
		if name, ok := entry["properties"].(Schema)["name"].(Schema); ok {
			name["pattern"] = namePattern
		}
		props[pl.Name] = Schema{
			"type":        "array",
			"description": fmt.Sprintf("Sources of the %s section, one entry per account scope.", pl.Name),
			"items":       entry,
		}
	}
	return Schema{
		"type":                 "object",
		"description":          "The exporter's configuration file (cloudcarbon_exporter.yml) as YAML, checked key by key against the exporter's own types. No secret values: use *_env keys with secretEnv or *_file keys with secretFiles.",
		"additionalProperties": false,
		"properties":           props,
	}, nil
}

// object is the schema of a struct, by its yaml tags: every key the struct
// decodes, and no other.
func object(t reflect.Type, description string) Schema {
	props := Schema{}
	fields(t, props)
	s := Schema{"type": "object", "additionalProperties": false, "properties": props}
	if description != "" {
		s["description"] = description
	}
	return s
}

func fields(t reflect.Type, props Schema) {
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			fields(f.Type, props)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		props[name] = value(f.Type)
	}
}

// value is the schema of a value of type t.
func value(t reflect.Type) Schema {
	if t == reflect.TypeFor[time.Duration]() {
		return Schema{"type": "string", "pattern": durationPattern, "description": `A duration such as "6h", "30m" or "90s".`}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return value(t.Elem())
	case reflect.String:
		return Schema{"type": "string"}
	case reflect.Bool:
		return Schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return Schema{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return Schema{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return Schema{"type": "number"}
	case reflect.Slice, reflect.Array:
		return Schema{"type": "array", "items": value(t.Elem())}
	case reflect.Map:
		return Schema{"type": "object", "additionalProperties": value(t.Elem())}
	case reflect.Struct:
		return object(t, "")
	}
	// A kind the configuration does not use (interfaces, channels):
	// accept anything rather than reject a valid file.
	return Schema{}
}

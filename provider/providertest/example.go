package providertest

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// checkExample keeps the cloud's section of the example configuration
// honest: it is the section of the cloud, it loads, every key the
// section's type has is documented in it, and every key it sets is set
// to its default (or is one the entry cannot go without).
func checkExample(t *testing.T, c Cloud) {
	var doc map[string][]map[string]any
	if err := yaml.Unmarshal([]byte(c.Plugin.Example), &doc); err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	entries := doc[c.Plugin.Name]
	if len(doc) != 1 || len(entries) == 0 {
		t.Fatalf("the example is not one %s section with entries", c.Plugin.Name)
	}
	for _, key := range yamlKeys(reflect.TypeOf(c.Plugin.NewConfig()).Elem()) {
		if !strings.Contains(c.Plugin.Example, " "+key+":") {
			t.Errorf("the example does not document %s.%s", c.Plugin.Name, key)
		}
	}
	getenv := func(string) string { return "example-value" }
	parse := func(entry map[string]any) (provider.SourceConfig, error) {
		text, err := yaml.Marshal(map[string]any{c.Plugin.Name: []map[string]any{entry}})
		if err != nil {
			return nil, err
		}
		cfg, err := config.Parse(text, "example.yml", getenv, []provider.Plugin{c.Plugin})
		if err != nil {
			return nil, err
		}
		return cfg.Sources[0].Config, nil
	}
	for i, entry := range entries {
		full, err := parse(entry)
		if err != nil {
			t.Errorf("entry %d does not load: %v", i, err)
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(entry)) {
			if key == "name" {
				continue
			}
			less := map[string]any{}
			for k, v := range entry {
				if k != key {
					less[k] = v
				}
			}
			if def, err := parse(less); err == nil && !reflect.DeepEqual(def, full) {
				t.Errorf("entry %d sets %s to a value that is not its default", i, key)
			}
		}
	}
}

// yamlKeys returns the yaml keys of struct type typ.
func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" && f.IsExported() {
			keys = append(keys, tag)
		}
	}
	return keys
}

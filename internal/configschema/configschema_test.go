package configschema

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
)

var update = flag.Bool("update", false, "write the schema into the Helm chart's values.schema.json")

const (
	chartSchema = "../../deploy/helm/cloudcarbon-exporter/values.schema.json"
	// definitions opens the generated part of the chart's schema, which
	// runs to the end of the file; values.config refers to it.
	definitions = "\n  \"definitions\": "
)

// TestChartSchema keeps the chart's schema of `config` equal to what the
// plug-ins' types give. Run with -update after changing a configuration
// type.
func TestChartSchema(t *testing.T) {
	s, err := Generate(clouds.All())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(map[string]any{"config": s}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(chartSchema)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(raw, []byte(definitions))
	if i < 0 {
		t.Fatalf("%s has no %q: the generated definitions end the file", chartSchema, strings.TrimSpace(definitions))
	}
	want := append(append(append([]byte{}, raw[:i]...), definitions...), bytes.TrimRight(buf.Bytes(), "\n")...)
	want = append(want, "\n}\n"...)
	if *update && !bytes.Equal(raw, want) {
		if err := os.WriteFile(chartSchema, want, 0o644); err != nil {
			t.Fatal(err)
		}
		raw = want
	}
	if !bytes.Equal(raw, want) {
		t.Errorf("%s is stale: run go test ./internal/configschema -update", chartSchema)
	}
	var doc struct {
		Properties map[string]map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", chartSchema, err)
	}
	if ref := doc.Properties["config"]["$ref"]; ref != "#/definitions/config" {
		t.Errorf("values.config is %v, want {$ref: #/definitions/config}", doc.Properties["config"])
	}
}

// TestSchemaAgreesWithTheParser: the example configuration, which sets
// every section, passes both the schema and the exporter's parser; a
// misspelt key or a value of the wrong type fails both, and the schema
// names the key's path; every key the schema knows, the parser knows.
func TestSchemaAgreesWithTheParser(t *testing.T) {
	s, err := Generate(clouds.All())
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(config.Example(clouds.All()))
	parse := func(doc any) error {
		b, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = config.Parse(b, "config.yml", func(string) string { return "value" }, clouds.All())
		return err
	}
	base := func() map[string]any {
		var v map[string]any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if errs := validate(s, jsonValue(t, base()), "config"); len(errs) > 0 {
		t.Errorf("the example fails the schema: %v", errs)
	}
	if err := parse(base()); err != nil {
		t.Fatalf("the example fails the parser: %v", err)
	}

	for _, c := range []struct {
		name   string
		change func(v map[string]any)
		path   string
	}{
		{"entry key", func(v map[string]any) { entry(v, "ibm")["api_kye"] = "x" }, "config.ibm[0].api_kye"},
		{"section key", func(v map[string]any) { v["refresh"].(map[string]any)["intervall"] = "6h" }, "config.refresh.intervall"},
		{"section", func(v map[string]any) { v["ibmcloud"] = []any{} }, "config.ibmcloud"},
		{"duration", func(v map[string]any) { v["refresh"].(map[string]any)["interval"] = "six hours" }, "config.refresh.interval"},
		{"integer", func(v map[string]any) { entry(v, "ibm")["page_concurrency"] = "eight" }, "config.ibm[0].page_concurrency"},
		{"list", func(v map[string]any) { entry(v, "azure")["subscriptions"] = "00000000-0000-0000-0000-000000000000" }, "config.azure[0].subscriptions"},
		{"boolean", func(v map[string]any) { entry(v, "aws")["organizations"] = "maybe" }, "config.aws[0].organizations"},
		{"entries", func(v map[string]any) { v["gcp"] = entry(v, "gcp") }, "config.gcp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := base()
			c.change(v)
			errs := validate(s, jsonValue(t, v), "config")
			if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), c.path) {
				t.Errorf("schema: %v, want an error at %s", errs, c.path)
			}
			if err := parse(v); err == nil {
				t.Errorf("the parser accepts what the schema rejects at %s", c.path)
			}
		})
	}

	// Every key of the schema is a key of the parser: each set alone to a
	// value of its type is never an unknown field.
	props := s["properties"].(Schema)
	for _, section := range slices.Sorted(maps.Keys(props)) {
		sec := props[section].(Schema)
		keys := sec
		if items, ok := sec["items"].(Schema); ok {
			keys = items
		}
		for _, key := range slices.Sorted(maps.Keys(keys["properties"].(Schema))) {
			doc := map[string]any{}
			value := map[string]any{key: sample(keys["properties"].(Schema)[key].(Schema))}
			if _, ok := sec["items"]; ok {
				doc[section] = []any{value}
			} else {
				doc[section] = value
			}
			if err := parse(doc); err != nil && strings.Contains(err.Error(), "unknown field") {
				t.Errorf("%s.%s: in the schema, unknown to the parser: %v", section, key, err)
			}
		}
	}
}

func entry(v map[string]any, section string) map[string]any {
	return v[section].([]any)[0].(map[string]any)
}

// sample is a value of a schema's type.
func sample(s Schema) any {
	switch s["type"] {
	case "string":
		if s["pattern"] == durationPattern {
			return "1h"
		}
		return "x"
	case "integer", "number":
		return 1
	case "boolean":
		return true
	case "array":
		return []any{}
	}
	return map[string]any{}
}

func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// validate checks v against the subset of JSON schema that Generate
// writes, and returns each problem with its path.
func validate(s Schema, v any, path string) []string {
	var errs []string
	switch s["type"] {
	case nil:
		return nil
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{path + ": not an object"}
		}
		props, _ := s["properties"].(Schema)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p, ok := props[k].(Schema); ok {
				errs = append(errs, validate(p, m[k], path+"."+k)...)
				continue
			}
			switch extra := s["additionalProperties"].(type) {
			case bool:
				if !extra {
					errs = append(errs, path+"."+k+": not allowed")
				}
			case Schema:
				errs = append(errs, validate(extra, m[k], path+"."+k)...)
			}
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return []string{path + ": not an array"}
		}
		for i, x := range l {
			errs = append(errs, validate(s["items"].(Schema), x, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return []string{path + ": not a string"}
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			errs = append(errs, path+": does not match "+p)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			errs = append(errs, path+": not an integer")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, path+": not a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, path+": not a boolean")
		}
	}
	return errs
}

func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(durationPattern)
	for _, ok := range []string{"6h", "30m", "90s", "1h30m", "0", "1.5h", "500ms", "10us"} {
		if !re.MatchString(ok) {
			t.Errorf("%q is a duration", ok)
		}
	}
	for _, bad := range []string{"", "6", "6 h", "1d", "six hours", "-1h", "h"} {
		if re.MatchString(bad) {
			t.Errorf("%q is not a duration", bad)
		}
	}
}

package cloudcarbonreceiver

import (
	"errors"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.yaml.in/yaml/v3"
)

// TestRenderReadsBack: what render writes, YAML reads back as the same
// values, whatever the strings hold, and every line has the path of what
// it holds.
func TestRenderReadsBack(t *testing.T) {
	sections := map[string]any{
		"refresh": map[string]any{"interval": "6h", "jitter": 0.25, "max_concurrency": 3},
		"ibm": []any{
			map[string]any{"name": "a", "api_key": configopaque.String("yes"), "enterprise_id": "0123", "nested": map[string]any{"deep": []any{"x", 1e300}}},
			map[string]any{"name": "line\nbreak \"quoted\" # not a comment", "on": true, "off": nil, "empty": map[string]any{}, "none": []any{}},
			"scalar",
			[]any{"a", -5},
		},
	}
	text, paths := render(sections, []string{"refresh", "ibm", "absent"})
	var got map[string]any
	if err := yaml.Unmarshal(text, &got); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	want := redacted(sections)
	want.(map[string]any)["ibm"].([]any)[0].(map[string]any)["api_key"] = "yes"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%v\nwant\n%v\nfrom\n%s", got, want, text)
	}
	for line, want := range map[int]string{
		1: "refresh", 2: "refresh::interval", 5: "ibm",
		6: "ibm::0", // the entry's first key shares its line
		7: "ibm::0::enterprise_id", 8: "ibm::0::name", 9: "ibm::0::nested", 10: "ibm::0::nested::deep", 11: "ibm::0::nested::deep::0",
	} {
		if paths[line] != want {
			t.Errorf("line %d has the path %q, want %q\n%s", line, paths[line], want, text)
		}
	}
}

func TestRewrite(t *testing.T) {
	p := paths{3: "ibm::0", 4: "ibm::0::api_url"}
	err := errors.Join(
		errors.New("cloudcarbon:4: ibm.api_url must be an absolute URL"),
		errors.New("cloudcarbon:3: ibm entry \"ibm\" has no API key"),
		errors.New("cloudcarbon:99: beyond the rendered lines"),
		errors.New("cloudcarbon: the configuration is too large"),
	)
	want := "ibm::0::api_url: ibm.api_url must be an absolute URL\nibm::0: ibm entry \"ibm\" has no API key\nbeyond the rendered lines\nthe configuration is too large"
	if got := p.rewrite(err, "cloudcarbon").Error(); got != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, want)
	}
}

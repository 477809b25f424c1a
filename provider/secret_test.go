package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// canary stands for a credential; it must never show up in any output.
const canary = "CANARY-7f3a9c-SECRET"

func TestSecret(t *testing.T) {
	s := Secret(canary)
	if s.Value() != canary {
		t.Fatalf("Value() = %q, want %q", s.Value(), canary)
	}

	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%10s", "%-v"} {
		if got := fmt.Sprintf(verb, s); strings.TrimSpace(got) != "<secret>" {
			t.Errorf("fmt %s gives %q, want <secret>", verb, got)
		}
	}
	for _, verb := range []string{"%x", "%X", "%d", "%T %v"} {
		if got := fmt.Sprintf(verb, s, s); strings.Contains(got, canary) || strings.Contains(got, fmt.Sprintf("%x", canary)) {
			t.Errorf("fmt %s reveals the secret: %q", verb, got)
		}
	}
	if got := fmt.Sprintf("%q", s); got != `"<secret>"` {
		t.Errorf(`fmt %%q gives %s, want "<secret>"`, got)
	}
	if got := fmt.Sprint(s) + fmt.Sprintln(s) + s.String() + s.GoString(); strings.Contains(got, canary) {
		t.Errorf("fmt reveals the secret: %q", got)
	}

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", s, "wrapped", struct{ Key Secret }{s})
	if got, want := buf.String(), `"key":"<secret>","wrapped":{"Key":"<secret>"}}`; !strings.HasSuffix(strings.TrimSpace(got), want) {
		t.Errorf("slog JSON gives %s, want it to end in %s", got, want)
	}

	y, err := yaml.Marshal(map[string]Secret{"api_key": s})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(y), "api_key: <secret>\n"; got != want {
		t.Errorf("yaml gives %q, want %q", got, want)
	}

	j, err := json.Marshal(map[string]Secret{"api_key": s})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(j), `{"api_key":"\u003csecret\u003e"}`; got != want {
		t.Errorf("json gives %s, want %s", got, want)
	}
}

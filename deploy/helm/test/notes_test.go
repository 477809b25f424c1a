package helmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestChartNotes renders NOTES.txt, which `helm template` skips but
// `helm install` prints (a template error in it fails the install), for
// every ci values file.
func TestChartNotes(t *testing.T) {
	helmBinary(t)
	// A copy of the chart where NOTES.txt is a named template that an
	// ordinary template renders into a YAML string.
	dir := filepath.Join(t.TempDir(), "cloudcarbon-exporter")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "templates", "NOTES.txt")); err != nil {
		t.Fatal(err)
	}
	wrapped := "{{- define \"notes-check\" -}}\n" + string(notes) + "\n{{- end }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "_notes_check.tpl"), []byte(wrapped), 0o644); err != nil {
		t.Fatal(err)
	}
	check := "notes: {{ include \"notes-check\" . | toJson }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "notes-check.yaml"), []byte(check), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		file    string
		set     []string
		want    []string
		notWant []string
	}{
		{file: "default-values.yaml", want: []string{"running (Deployment cc-cloudcarbon-exporter)", "port-forward service/cc-cloudcarbon-exporter", "`config` is empty"}},
		{file: "sharded-values.yaml", want: []string{"running as 3 shards", "pods -0 to -2", "scrape every pod"}, notWant: []string{"WARNING"}},
		{file: "monitoring-values.yaml", want: []string{"DEMO dataset"}, notWant: []string{"serviceMonitor.enabled=true", "WARNING"}},
		{file: "secrets-values.yaml", want: []string{"running (Deployment"}},
		{file: "monitoring-values.yaml", set: []string{"serviceMonitor.honorLabels=false"}, want: []string{"WARNING: serviceMonitor.honorLabels is false", "exported_service"}},
		{file: "sharded-values.yaml", want: []string{"covers its sources only", "see reportCronJob"}},
		{file: "operator-values.yaml", want: []string{"running as 3 shards", "(the PodMonitor does)", "cc-cloudcarbon-exporter-report writes whole-estate"}, notWant: []string{"WARNING"}},
		{file: "default-values.yaml", want: []string{"honor_labels: true"}},
	} {
		out, err := templateChart(t, dir, []string{filepath.Join(chartDir, "ci", c.file)}, c.set, "--show-only", "templates/notes-check.yaml")
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		var doc struct {
			Notes string `json:"notes"`
		}
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%s: %v\n%s", c.file, err, out)
		}
		if strings.Contains(doc.Notes, "<no value>") || strings.TrimSpace(doc.Notes) == "" {
			t.Errorf("%s: notes:\n%s", c.file, doc.Notes)
		}
		for _, w := range c.want {
			if !strings.Contains(doc.Notes, w) {
				t.Errorf("%s %v: notes lack %q:\n%s", c.file, c.set, w, doc.Notes)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(doc.Notes, w) {
				t.Errorf("%s %v: notes say %q:\n%s", c.file, c.set, w, doc.Notes)
			}
		}
	}
}

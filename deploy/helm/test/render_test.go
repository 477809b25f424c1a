package helmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// chartDir is the chart, relative to this package.
	chartDir = "../cloudcarbon-exporter"
	// repoRoot is the repository's root, relative to this package.
	repoRoot = "../../.."
	// releaseName and namespace of every rendering.
	releaseName = "cc"
	namespace   = "carbon"
	// kubeVersion is the chart's minimum Kubernetes version (Chart.yaml
	// kubeVersion): lint and templates are checked against it, whatever
	// Kubernetes version the helm binary assumes by default.
	kubeVersion = "v1.25.0"
)

// helmBinary returns the helm binary from $HELM, skipping the test when it
// is unset (failing it when $CLOUDCARBON_E2E is set).
func helmBinary(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		msg := "HELM is not set: build helm once with tools/helm/build.sh and run " +
			"`HELM=$(../../../tools/helm/build.sh) go test ./...` in deploy/helm/test (or `make helm-test`)"
		if os.Getenv("CLOUDCARBON_E2E") != "" {
			t.Fatal(msg + " (CLOUDCARBON_E2E is set, so the chart tests must run)")
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(h); err != nil {
		if _, lerr := exec.LookPath(h); lerr != nil {
			t.Fatalf("HELM=%s: %v", h, err)
		}
	}
	return h
}

// runHelm runs helm with args in this package's directory and returns its
// standard output; a failure returns an error holding standard error.
func runHelm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No user configuration, repositories or plugins: lint and template
	// work offline.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &helmError{args: args, err: err, stdout: stdout.String(), stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

// helmError is a failed helm run; stderr is what helm itself printed.
type helmError struct {
	args           []string
	err            error
	stdout, stderr string
}

func (e *helmError) Error() string {
	return fmt.Sprintf("helm %s: %v\n%s%s", strings.Join(e.args, " "), e.err, e.stdout, e.stderr)
}

func (e *helmError) Unwrap() error { return e.err }

// valuesArgs turns values files and --set assignments into helm flags.
func valuesArgs(files []string, set []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "--values", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

// lint runs helm lint --strict.
func lint(t *testing.T, files []string, set []string) {
	t.Helper()
	args := append([]string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}, valuesArgs(files, set)...)
	if out, err := runHelm(t, args...); err != nil {
		t.Fatalf("lint: %v", err)
	} else if !bytes.Contains(out, []byte("0 chart(s) failed")) {
		t.Fatalf("lint did not report success:\n%s", out)
	}
}

// template runs helm template and returns its output.
func template(t *testing.T, files []string, set []string, more ...string) ([]byte, error) {
	t.Helper()
	return templateChart(t, chartDir, files, set, more...)
}

// templateChart runs helm template on a chart directory.
func templateChart(t *testing.T, dir string, files []string, set []string, more ...string) ([]byte, error) {
	t.Helper()
	args := append([]string{"template", releaseName, dir, "--namespace", namespace, "--kube-version", kubeVersion}, valuesArgs(files, set)...)
	return runHelm(t, append(args, more...)...)
}

// object is one rendered manifest, decoded.
type object struct {
	kind, name, namespace string
	source                string         // the template it came from
	raw                   []byte         // the YAML document
	generic               map[string]any // the document as JSON values
	typed                 any            // *appsv1.Deployment, ...
}

func (o object) String() string { return o.kind + "/" + o.name + " (" + o.source + ")" }

// rendering is the output of one helm template run.
type rendering struct {
	objects []object
}

// ofKind returns the objects of a kind.
func (r rendering) ofKind(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// newObject returns an empty typed object for a rendered apiVersion and
// kind, or an error for anything the chart should not render.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &monitoringv1.PrometheusRule{}, nil
	case "monitoring.coreos.com/v1 PodMonitor":
		return &monitoringv1.PodMonitor{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "batch/v1 CronJob":
		return &batchv1.CronJob{}, nil
	case "v1 Secret":
		return nil, errors.New("the chart renders a Secret: it must take secrets only from existing Secrets")
	}
	return nil, fmt.Errorf("unexpected object %s %s", apiVersion, kind)
}

// decode splits helm template output into documents and decodes each one
// strictly: unknown or duplicate fields are errors.
func decode(t *testing.T, out []byte) rendering {
	t.Helper()
	var r rendering
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("splitting the rendered documents: %v", err)
		}
		source := ""
		for _, line := range strings.Split(string(doc), "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
				break
			}
		}
		var generic map[string]any
		if err := yaml.UnmarshalStrict(doc, &generic); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", source, err, doc)
		}
		if len(generic) == 0 {
			continue // only comments
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		typed, err := newObject(tm.APIVersion, tm.Kind)
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if err := yaml.UnmarshalStrict(doc, typed); err != nil {
			t.Fatalf("%s: strict decoding into %T: %v\n%s", source, typed, err, doc)
		}
		meta := typed.(metav1.Object)
		o := object{kind: tm.Kind, name: meta.GetName(), namespace: meta.GetNamespace(),
			source: source, raw: doc, generic: generic, typed: typed}
		checkMeta(t, o, meta)
		r.objects = append(r.objects, o)
	}
	if len(r.objects) == 0 {
		t.Fatal("helm template rendered no object")
	}
	seen := map[string]bool{}
	for _, o := range r.objects {
		key := o.kind + " " + o.namespace + "/" + o.name
		if seen[key] {
			t.Errorf("%s rendered twice", key)
		}
		seen[key] = true
	}
	return r
}

// checkMeta checks names, namespaces and labels as the API server would.
func checkMeta(t *testing.T, o object, meta metav1.Object) {
	t.Helper()
	nameCheck := validation.IsDNS1123Subdomain
	if o.kind == "Service" || o.kind == "StatefulSet" {
		nameCheck = validation.IsDNS1123Label
	}
	if errs := nameCheck(meta.GetName()); len(errs) > 0 {
		t.Errorf("%s: invalid name: %v", o, errs)
	}
	if meta.GetNamespace() == "" {
		t.Errorf("%s: no namespace", o)
	}
	for k, v := range meta.GetLabels() {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("%s: invalid label key %q: %v", o, k, errs)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("%s: invalid value of label %s: %v", o, k, errs)
		}
	}
	for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "helm.sh/chart", "app.kubernetes.io/managed-by"} {
		if meta.GetLabels()[l] == "" {
			t.Errorf("%s: no %s label", o, l)
		}
	}
}

// readValues parses values files (later files win, maps merged) for
// comparing the rendering with its input.
func readValues(t *testing.T, files ...string) map[string]any {
	t.Helper()
	merged := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		mergeValues(merged, v)
	}
	return merged
}

func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// jsonValue normalises a value to what encoding/json makes of it, so that
// YAML-decoded values compare with DeepEqual.
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

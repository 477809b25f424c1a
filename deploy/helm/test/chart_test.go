package helmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "copy the rules and dashboards from dashboards/ into the chart's files/")

const (
	configFile   = "/etc/cloudcarbon_exporter/config/cloudcarbon_exporter.yml"
	configKey    = "cloudcarbon_exporter.yml"
	stateDir     = "/var/lib/cloudcarbon_exporter"
	stateFile    = stateDir + "/state.json"
	webConfigDir = "/etc/cloudcarbon_exporter/web"
	rulesFile    = "dashboards/rules/cloudcarbon.rules.yml"
	// canary marks Secret names and keys in the ci values: they may appear
	// only where a Secret is referenced.
	canary = "canary"
)

// expect is what a values file must render.
type expect struct {
	shards         int // 1: a Deployment; more: a StatefulSet
	persistence    bool
	demo           bool
	serviceMonitor bool
	prometheusRule bool
	dashboards     bool
	networkPolicy  bool
	webConfig      bool
	probeScheme    corev1.URIScheme // "" for tcpSocket probes
	scrapeScheme   string
	podMonitor     bool
	pdb            bool
	sharedClaim    bool   // one claim for every shard
	reportCronJob  int    // reports the CronJob writes; 0: no CronJob
	namespace      string // namespaceOverride; "": the release's
}

// ciCases lists every values file under the chart's ci/ directory; a test
// fails when a file is missing here, so that each one states what it must
// render.
var ciCases = map[string]expect{
	"default-values.yaml": {shards: 1, probeScheme: corev1.URISchemeHTTP},
	"sharded-values.yaml": {shards: 3, persistence: true, probeScheme: corev1.URISchemeHTTP},
	"monitoring-values.yaml": {shards: 1, demo: true, serviceMonitor: true, prometheusRule: true, dashboards: true,
		probeScheme: corev1.URISchemeHTTP, scrapeScheme: "http"},
	"secrets-values.yaml": {shards: 1, networkPolicy: true, webConfig: true, serviceMonitor: true,
		probeScheme: corev1.URISchemeHTTPS, scrapeScheme: "https"},
	"operator-values.yaml": {shards: 3, persistence: true, sharedClaim: true, podMonitor: true, prometheusRule: true,
		pdb: true, reportCronJob: 2, namespace: "carbon-accounting", probeScheme: corev1.URISchemeHTTP, scrapeScheme: "http"},
}

// moreCases are renderings beyond the ci files: inline values added to a
// ci file.
var moreCases = []struct {
	name   string
	base   string
	values string
	want   expect
}{
	{
		name: "persistent-deployment",
		base: "default-values.yaml",
		values: `
persistence:
  enabled: true
  storageClassName: "-"
config:
  ibm:
    - name: ibm
      api_key_file: /etc/cloudcarbon/ibm/api-key
secretFiles:
  - secretName: canary-ibm
    mountPath: /etc/cloudcarbon/ibm
`,
		want: expect{shards: 1, persistence: true, probeScheme: corev1.URISchemeHTTP},
	},
	{
		// Basic auth on every path: the kubelet cannot authenticate, so the
		// probes check the port.
		name: "web-basic-auth",
		base: "secrets-values.yaml",
		values: `
startupProbe:
  httpGet: null
  tcpSocket:
    port: http
livenessProbe:
  httpGet: null
  tcpSocket:
    port: http
readinessProbe:
  httpGet: null
  tcpSocket:
    port: http
serviceMonitor:
  basicAuth:
    username:
      name: canary-scrape-auth
      key: canary-username
    password:
      name: canary-scrape-auth
      key: canary-password
`,
		want: expect{shards: 1, networkPolicy: true, webConfig: true, serviceMonitor: true, scrapeScheme: "https"},
	},
	{
		name:   "sharded-emptydir-monitoring",
		base:   "monitoring-values.yaml",
		values: "demo: false\nshards: 2\n",
		want: expect{shards: 2, serviceMonitor: true, prometheusRule: true, dashboards: true,
			probeScheme: corev1.URISchemeHTTP, scrapeScheme: "http"},
	},
	{
		// One shared claim and the report CronJob without sharding: the
		// job reads state.json.
		name: "unsharded-report",
		base: "default-values.yaml",
		values: `
persistence:
  enabled: true
  shared: true
  accessModes: [ReadWriteMany]
reportCronJob:
  enabled: true
config:
  scaleway:
    - name: scaleway
podDisruptionBudget:
  maxUnavailable: 1
serviceMonitor:
  enabled: true
  honorLabels: false
  jobLabel: ""
`,
		want: expect{shards: 1, persistence: true, sharedClaim: true, reportCronJob: 2, pdb: true, serviceMonitor: true,
			probeScheme: corev1.URISchemeHTTP, scrapeScheme: "http"},
	},
	{
		// The Operator objects in another namespace than the exporter's.
		name:   "monitoring-namespaces",
		base:   "monitoring-values.yaml",
		values: "namespaceOverride: cloudcarbon\nconfigCheck:\n  enabled: false\nrollOnSecretChange: false\n",
		want: expect{shards: 1, demo: true, serviceMonitor: true, prometheusRule: true, dashboards: true, namespace: "cloudcarbon",
			probeScheme: corev1.URISchemeHTTP, scrapeScheme: "http"},
	},
}

func TestChartCIValues(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci: %v", chartDir, err)
	}
	helmBinary(t)
	t.Run("chart-defaults", func(t *testing.T) { lint(t, nil, nil) })
	for _, f := range files {
		name := filepath.Base(f)
		want, ok := ciCases[name]
		if !ok {
			t.Errorf("%s: add it to ciCases with what it must render", f)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runCase(t, []string{f}, want)
		})
	}
	for name := range ciCases {
		if !slices.Contains(files, filepath.Join(chartDir, "ci", name)) {
			t.Errorf("ciCases lists %s, which is not in %s/ci", name, chartDir)
		}
	}
}

func TestChartMoreValues(t *testing.T) {
	helmBinary(t)
	for _, c := range moreCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			extra := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(extra, []byte(c.values), 0o644); err != nil {
				t.Fatal(err)
			}
			runCase(t, []string{filepath.Join(chartDir, "ci", c.base), extra}, c.want)
		})
	}
}

// runCase lints and renders the chart with values files and checks the
// rendering.
func runCase(t *testing.T, files []string, want expect) {
	lint(t, files, nil)
	out, err := template(t, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := decode(t, out)
	values := readValues(t, append([]string{filepath.Join(chartDir, "values.yaml")}, files...)...)

	pod, podMeta := checkWorkload(t, r, want)
	checkPod(t, r, pod, podMeta, want, values)
	checkConfigMap(t, r, pod, want, values)
	checkServices(t, r, podMeta, want)
	checkMonitors(t, r, want, values)
	checkInitContainer(t, pod, want, values)
	checkPDB(t, r, podMeta, want, values)
	checkReportCronJob(t, r, pod, podMeta, want, values)
	checkNamespaces(t, r, want, values)
	checkPrometheusRule(t, r, want)
	checkDashboards(t, r, want)
	checkNetworkPolicy(t, r, want, values)
	checkNoSecretValues(t, r, files)
}

// checkWorkload checks the Deployment or StatefulSet and returns its pod
// template.
func checkWorkload(t *testing.T, r rendering, want expect) (corev1.PodSpec, metav1.ObjectMeta) {
	deployments, statefulSets := r.ofKind("Deployment"), r.ofKind("StatefulSet")
	claims := r.ofKind("PersistentVolumeClaim")
	if want.shards > 1 {
		if len(statefulSets) != 1 || len(deployments) != 0 {
			t.Fatalf("shards: %d: want one StatefulSet and no Deployment, got %d and %d", want.shards, len(statefulSets), len(deployments))
		}
		s := statefulSets[0].typed.(*appsv1.StatefulSet)
		if s.Spec.Replicas == nil || int(*s.Spec.Replicas) != want.shards {
			t.Errorf("StatefulSet replicas = %v, want %d", s.Spec.Replicas, want.shards)
		}
		if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("podManagementPolicy = %q, want Parallel: shards are independent", s.Spec.PodManagementPolicy)
		}
		checkSelector(t, statefulSets[0].String(), s.Spec.Selector, s.Spec.Template.Labels)
		c := exporterContainer(t, s.Spec.Template.Spec)
		for _, flag := range []string{"--shard.total=" + itoa(want.shards), "--shard.index=-1"} {
			if !slices.Contains(c.Args, flag) {
				t.Errorf("StatefulSet args %q lack %s", c.Args, flag)
			}
		}
		podName := false
		for _, e := range c.Env {
			if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
				podName = true
			}
		}
		if !podName {
			t.Error("StatefulSet: no POD_NAME from the downward API (metadata.name), which --shard.index=-1 reads")
		}
		// The governing Service is headless and selects the pods.
		var governing *corev1.Service
		for _, o := range r.ofKind("Service") {
			if o.name == s.Spec.ServiceName {
				governing = o.typed.(*corev1.Service)
			}
		}
		if governing == nil {
			t.Errorf("StatefulSet serviceName %q: no such Service rendered", s.Spec.ServiceName)
		} else {
			if governing.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service %s governs the StatefulSet but is not headless (clusterIP %q)", governing.Name, governing.Spec.ClusterIP)
			}
			if !labels.SelectorFromSet(governing.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)) {
				t.Errorf("headless Service %s does not select the StatefulSet's pods", governing.Name)
			}
		}
		if want.sharedClaim {
			if len(claims) != 1 || len(s.Spec.VolumeClaimTemplates) != 0 {
				t.Fatalf("shared claim: %d claims and %d volumeClaimTemplates, want one claim and no template", len(claims), len(s.Spec.VolumeClaimTemplates))
			}
			if !slices.Contains(claims[0].typed.(*corev1.PersistentVolumeClaim).Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("the shared claim is not ReadWriteMany")
			}
			found := false
			for _, v := range s.Spec.Template.Spec.Volumes {
				if v.Name == "state" && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claims[0].name {
					found = true
				}
			}
			if !found {
				t.Errorf("the shards do not mount the shared claim %s as volume state", claims[0].name)
			}
			return s.Spec.Template.Spec, s.Spec.Template.ObjectMeta
		}
		if len(claims) != 0 {
			t.Errorf("sharded: a PersistentVolumeClaim is rendered; every shard needs its own (volumeClaimTemplates)")
		}
		if want.persistence {
			if len(s.Spec.VolumeClaimTemplates) != 1 || s.Spec.VolumeClaimTemplates[0].Name != "state" {
				t.Fatalf("sharded with persistence: want one volumeClaimTemplate named state, got %+v", s.Spec.VolumeClaimTemplates)
			}
			if _, ok := s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
				t.Error("volumeClaimTemplate state requests no storage")
			}
			for _, v := range s.Spec.Template.Spec.Volumes {
				if v.Name == "state" {
					t.Error("a pod volume named state hides the volumeClaimTemplate")
				}
			}
		} else if len(s.Spec.VolumeClaimTemplates) != 0 {
			t.Errorf("volumeClaimTemplates without persistence: %+v", s.Spec.VolumeClaimTemplates)
		}
		return s.Spec.Template.Spec, s.Spec.Template.ObjectMeta
	}

	if len(deployments) != 1 || len(statefulSets) != 0 {
		t.Fatalf("want one Deployment and no StatefulSet, got %d and %d", len(deployments), len(statefulSets))
	}
	d := deployments[0].typed.(*appsv1.Deployment)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment replicas = %v, want 1 (two replicas call the APIs twice)", d.Spec.Replicas)
	}
	checkSelector(t, deployments[0].String(), d.Spec.Selector, d.Spec.Template.Labels)
	c := exporterContainer(t, d.Spec.Template.Spec)
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--shard.") {
			t.Errorf("unsharded Deployment passes %s", a)
		}
	}
	var state *corev1.Volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "state" {
			state = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if state == nil {
		t.Fatal("Deployment: no state volume")
	}
	if want.persistence {
		if state.PersistentVolumeClaim == nil {
			t.Fatalf("persistence: state volume is %+v, want a PersistentVolumeClaim", state.VolumeSource)
		}
		found := false
		for _, o := range claims {
			if o.name == state.PersistentVolumeClaim.ClaimName {
				found = true
			}
		}
		if !found {
			t.Errorf("state volume claims %q, which is not rendered", state.PersistentVolumeClaim.ClaimName)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType && !want.sharedClaim {
			t.Errorf("strategy %q with a ReadWriteOnce claim: want Recreate", d.Spec.Strategy.Type)
		}
	} else {
		if state.EmptyDir == nil {
			t.Errorf("no persistence: state volume is %+v, want an emptyDir", state.VolumeSource)
		}
		if len(claims) != 0 {
			t.Errorf("no persistence, but %d PersistentVolumeClaims", len(claims))
		}
	}
	return d.Spec.Template.Spec, d.Spec.Template.ObjectMeta
}

func itoa(i int) string { return strconv.Itoa(i) }

func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		t.Fatalf("%s: selector %v: %v", what, sel, err)
	}
	if !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not match the pod labels %v", what, sel, podLabels)
	}
}

func exporterContainer(t *testing.T, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "exporter" {
		t.Fatalf("want one container named exporter, got %d", len(pod.Containers))
	}
	return pod.Containers[0]
}

// checkPod checks the exporter's pod: security, probes, flags, volumes,
// identity and secrets.
func checkPod(t *testing.T, r rendering, pod corev1.PodSpec, meta metav1.ObjectMeta, want expect, values map[string]any) {
	c := exporterContainer(t, pod)

	// Security: non-root, read-only root filesystem, no privilege
	// escalation, every capability dropped, the runtime's seccomp profile.
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the exporter container has no securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("securityContext.runAsNonRoot is not true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Errorf("securityContext.runAsUser = %v, want 65532 (the image's nonroot user)", sc.RunAsUser)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("securityContext.readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("securityContext.allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container is privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && pod.SecurityContext != nil {
		seccomp = pod.SecurityContext.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", seccomp)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the pod shares a host namespace")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the ServiceAccount token is mounted; the exporter does not call the Kubernetes API")
	}

	// Port and probes.
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 9874 {
		t.Errorf("ports = %+v, want http 9874", c.Ports)
	}
	if !slices.Contains(c.Args, "--web.listen-address=:9874") {
		t.Errorf("args %q lack --web.listen-address=:9874", c.Args)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/-/healthy"}, {"liveness", c.LivenessProbe, "/-/healthy"}, {"readiness", c.ReadinessProbe, "/-/ready"}} {
		switch {
		case p.probe == nil:
			t.Errorf("no %s probe", p.name)
		case want.probeScheme == "":
			if p.probe.HTTPGet != nil || p.probe.TCPSocket == nil || p.probe.TCPSocket.Port.String() != "http" {
				t.Errorf("%s probe = %+v, want tcpSocket on port http only", p.name, p.probe.ProbeHandler)
			}
		default:
			g := p.probe.HTTPGet
			if g == nil || p.probe.TCPSocket != nil || p.probe.Exec != nil {
				t.Errorf("%s probe = %+v, want httpGet only", p.name, p.probe.ProbeHandler)
				continue
			}
			if g.Path != p.path || g.Port.String() != "http" || g.Scheme != want.probeScheme {
				t.Errorf("%s probe: %s %s on port %s, want %s %s on port http", p.name, g.Scheme, g.Path, g.Port.String(), want.probeScheme, p.path)
			}
		}
	}
	if c.Resources.Requests.Memory().IsZero() {
		t.Error("no memory request")
	}

	// Flags, and the volumes they point into.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	claimTemplates := map[string]bool{}
	for _, o := range r.ofKind("StatefulSet") {
		for _, c := range o.typed.(*appsv1.StatefulSet).Spec.VolumeClaimTemplates {
			claimTemplates[c.Name] = true
		}
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok && !claimTemplates[m.Name] {
			t.Errorf("mount %s: no volume %s", m.MountPath, m.Name)
		}
	}
	if want.demo {
		if !slices.Contains(c.Args, "--demo") {
			t.Errorf("demo: args %q lack --demo", c.Args)
		}
	} else {
		for _, f := range []string{"--config.file=" + configFile, "--state.file=" + stateFile} {
			if !slices.Contains(c.Args, f) {
				t.Errorf("args %q lack %s", c.Args, f)
			}
		}
		if m, ok := mounts[filepath.Dir(configFile)]; !ok || !m.ReadOnly || volumes[m.Name].ConfigMap == nil {
			t.Errorf("%s: want a read-only ConfigMap volume, got mount %+v", filepath.Dir(configFile), m)
		}
		if m, ok := mounts[stateDir]; !ok || m.ReadOnly {
			t.Errorf("%s: want a writable volume for the state file, got %+v", stateDir, m)
		}
	}
	webFlag := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--web.config.file="); ok {
			webFlag = v
		}
	}
	if want.webConfig {
		m, ok := mounts[filepath.Dir(webFlag)]
		if webFlag == "" || filepath.Dir(webFlag) != webConfigDir || !ok || !m.ReadOnly || volumes[m.Name].Secret == nil {
			t.Errorf("web config: flag %q, mount %+v: want --web.config.file in %s, a read-only Secret volume", webFlag, m, webConfigDir)
		}
	} else if webFlag != "" {
		t.Errorf("unexpected --web.config.file=%s", webFlag)
	}

	// Secrets: every secretEnv entry is a secretKeyRef, every secretFiles
	// entry a read-only Secret volume; nothing else holds a secret.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, s := range list(values["secretEnv"]) {
		e, ok := env[str(s["name"])]
		ref := (*corev1.SecretKeySelector)(nil)
		if ok && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
		if ref == nil || e.Value != "" || ref.Name != str(s["secretName"]) || ref.Key != str(s["key"]) {
			t.Errorf("secretEnv %v: rendered as %+v, want a secretKeyRef to %s/%s", s, e, s["secretName"], s["key"])
		}
	}
	for _, s := range list(values["secretFiles"]) {
		m, ok := mounts[str(s["mountPath"])]
		if !ok || !m.ReadOnly || volumes[m.Name].Secret == nil || volumes[m.Name].Secret.SecretName != str(s["secretName"]) {
			t.Errorf("secretFiles %v: mount %+v, want Secret %s mounted read-only at %s", s, m, s["secretName"], s["mountPath"])
		}
	}
	for _, e := range c.EnvFrom {
		t.Errorf("envFrom %+v: variables are set one by one", e)
	}

	// Identity: the ServiceAccount and its workload identity annotations.
	sa := values["serviceAccount"].(map[string]any)
	accounts := r.ofKind("ServiceAccount")
	if sa["create"] == true {
		if len(accounts) != 1 || accounts[0].name != pod.ServiceAccountName {
			t.Fatalf("pod runs as %q, rendered ServiceAccounts %v", pod.ServiceAccountName, accounts)
		}
		got := accounts[0].typed.(*corev1.ServiceAccount).Annotations
		if want := stringMap(sa["annotations"]); !reflect.DeepEqual(nilIfEmpty(got), nilIfEmpty(want)) {
			t.Errorf("ServiceAccount annotations = %v, want %v", got, want)
		}
	}
	for k, v := range stringMap(values["podLabels"]) {
		if meta.Labels[k] != v {
			t.Errorf("pod label %s = %q, want %q", k, meta.Labels[k], v)
		}
	}
	if !want.demo && meta.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a config change would not roll the pods")
	}
	secrets := len(list(values["secretEnv"]))+len(list(values["secretFiles"])) > 0 || str(values["webConfig"].(map[string]any)["existingSecret"]) != ""
	if roll, _ := values["rollOnSecretChange"].(bool); (meta.Annotations["checksum/secrets"] != "") != (roll && secrets) {
		t.Errorf("checksum/secrets annotation %q; rollOnSecretChange %v, Secrets used: %v", meta.Annotations["checksum/secrets"], roll, secrets)
	}
}

// checkConfigMap checks the exporter's configuration: one ConfigMap whose
// file parses as YAML and equals the values' config.
func checkConfigMap(t *testing.T, r rendering, pod corev1.PodSpec, want expect, values map[string]any) {
	var configs []*corev1.ConfigMap
	for _, o := range r.ofKind("ConfigMap") {
		if cm := o.typed.(*corev1.ConfigMap); cm.Labels["grafana_dashboard"] == "" {
			configs = append(configs, cm)
		}
	}
	if want.demo {
		if len(configs) != 0 {
			t.Errorf("demo: %d configuration ConfigMaps, want none", len(configs))
		}
		return
	}
	if len(configs) != 1 {
		t.Fatalf("want one configuration ConfigMap, got %d", len(configs))
	}
	cm := configs[0]
	mounted := false
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("ConfigMap %s is not mounted", cm.Name)
	}
	if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		t.Errorf("ConfigMap %s: keys %v, want only %s", cm.Name, keys(cm.Data), configKey)
	}
	text, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, configKey)
	}
	var got map[string]any
	if err := yaml.UnmarshalStrict([]byte(text), &got); err != nil {
		t.Fatalf("%s does not parse as YAML: %v\n%s", configKey, err, text)
	}
	wantConfig, _ := values["config"].(map[string]any)
	if !reflect.DeepEqual(jsonValue(t, nilIfEmptyAny(got)), jsonValue(t, nilIfEmptyAny(wantConfig))) {
		t.Errorf("%s differs from the values' config:\n%s", configKey, text)
	}
}

// checkServices checks the Service that Prometheus scrapes.
func checkServices(t *testing.T, r rendering, podMeta metav1.ObjectMeta, want expect) {
	services := r.ofKind("Service")
	wantServices := 1
	if want.shards > 1 {
		wantServices = 2
	}
	if len(services) != wantServices {
		t.Errorf("%d Services, want %d", len(services), wantServices)
	}
	for _, o := range services {
		s := o.typed.(*corev1.Service)
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(podMeta.Labels)) || len(s.Spec.Selector) == 0 {
			t.Errorf("%s does not select the exporter's pods", o)
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Name != "http" || s.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("%s: ports %+v, want one named http to the http port", o, s.Spec.Ports)
		}
	}
}

// rulesFileGroups parses the rules file strictly into the Prometheus
// Operator's types.
func rulesFileGroups(t *testing.T, path string) []monitoringv1.RuleGroup {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Groups) == 0 {
		t.Fatalf("%s: no groups", path)
	}
	return f.Groups
}

func checkPrometheusRule(t *testing.T, r rendering, want expect) {
	rules := r.ofKind("PrometheusRule")
	if !want.prometheusRule {
		if len(rules) != 0 {
			t.Error("unexpected PrometheusRule")
		}
		return
	}
	if len(rules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(rules))
	}
	got := rules[0].typed.(*monitoringv1.PrometheusRule).Spec.Groups
	wantGroups := rulesFileGroups(t, filepath.Join(repoRoot, rulesFile))
	if !reflect.DeepEqual(got, wantGroups) {
		gb, _ := yaml.Marshal(got)
		t.Errorf("PrometheusRule groups differ from %s:\n%s", rulesFile, gb)
	}
	// The same, as untyped values: nothing lost to the typed decoding.
	var file map[string]any
	b, _ := os.ReadFile(filepath.Join(repoRoot, rulesFile))
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	spec := rules[0].generic["spec"].(map[string]any)
	if !reflect.DeepEqual(jsonValue(t, spec["groups"]), jsonValue(t, file["groups"])) {
		t.Errorf("PrometheusRule groups differ from %s (untyped)", rulesFile)
	}
}

func checkDashboards(t *testing.T, r rendering, want expect) {
	var got []*corev1.ConfigMap
	for _, o := range r.ofKind("ConfigMap") {
		if cm := o.typed.(*corev1.ConfigMap); cm.Labels["grafana_dashboard"] != "" {
			got = append(got, cm)
		}
	}
	if !want.dashboards {
		if len(got) != 0 {
			t.Errorf("unexpected dashboard ConfigMaps")
		}
		return
	}
	originals, err := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if err != nil || len(originals) == 0 {
		t.Fatalf("no dashboards in %s/dashboards: %v", repoRoot, err)
	}
	if len(got) != len(originals) {
		t.Errorf("%d dashboard ConfigMaps, want one per dashboard (%d)", len(got), len(originals))
	}
	byFile := map[string]string{}
	for _, cm := range got {
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("%s: grafana_dashboard=%q, want \"1\"", cm.Name, cm.Labels["grafana_dashboard"])
		}
		if len(cm.Data) != 1 {
			t.Errorf("%s: keys %v, want one dashboard", cm.Name, keys(cm.Data))
		}
		for k, v := range cm.Data {
			byFile[k] = v
			if !json.Valid([]byte(v)) {
				t.Errorf("%s/%s is not JSON", cm.Name, k)
			}
		}
	}
	for _, f := range originals {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := byFile[filepath.Base(f)]; !ok {
			t.Errorf("no ConfigMap holds %s", filepath.Base(f))
		} else if v != string(b) {
			t.Errorf("the ConfigMap's %s differs from dashboards/%s", filepath.Base(f), filepath.Base(f))
		}
	}
}

func checkNetworkPolicy(t *testing.T, r rendering, want expect, values map[string]any) {
	policies := r.ofKind("NetworkPolicy")
	if !want.networkPolicy {
		if len(policies) != 0 {
			t.Error("unexpected NetworkPolicy")
		}
		return
	}
	if len(policies) != 1 {
		t.Fatalf("want one NetworkPolicy, got %d", len(policies))
	}
	np := policies[0].typed.(*networkingv1.NetworkPolicy)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("policyTypes %v lack Ingress", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "http" {
		t.Fatalf("ingress %+v, want one rule to port http", np.Spec.Ingress)
	}
	nv := values["networkPolicy"].(map[string]any)
	if !reflect.DeepEqual(jsonValue(t, nilIfEmptyAny(np.Spec.Ingress[0].From)), jsonValue(t, nilIfEmptyAny(nv["ingressFrom"]))) {
		t.Errorf("ingress from %+v, want the values' ingressFrom %v", np.Spec.Ingress[0].From, nv["ingressFrom"])
	}
	// Egress to the clouds' APIs is open by default: [{}].
	if !reflect.DeepEqual(jsonValue(t, np.Spec.Egress), jsonValue(t, nv["egress"])) {
		t.Errorf("egress %+v, want the values' %v", np.Spec.Egress, nv["egress"])
	}
	if list(nv["egress"]) != nil && len(list(nv["egress"])) == 1 && len(list(nv["egress"])[0]) == 0 {
		if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].To) != 0 || len(np.Spec.Egress[0].Ports) != 0 {
			t.Errorf("egress %+v, want one empty rule (every destination)", np.Spec.Egress)
		}
	}
	pods := labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels)
	for _, kind := range []string{"Deployment", "StatefulSet"} {
		for _, o := range r.ofKind(kind) {
			var l map[string]string
			switch w := o.typed.(type) {
			case *appsv1.Deployment:
				l = w.Spec.Template.Labels
			case *appsv1.StatefulSet:
				l = w.Spec.Template.Labels
			}
			if !pods.Matches(labels.Set(l)) {
				t.Errorf("NetworkPolicy does not select %s's pods", o)
			}
		}
	}
}

// checkNoSecretValues checks that no secret can be in the rendering: no
// Secret object (decode rejects it), and the canary Secret names and keys of
// the values appear only where a Secret is referenced, never in a
// ConfigMap.
func checkNoSecretValues(t *testing.T, r rendering, files []string) {
	var canaries []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		walkStrings(v, func(s string) {
			if strings.Contains(s, canary) && !slices.Contains(canaries, s) {
				canaries = append(canaries, s)
			}
		})
	}
	all := ""
	for _, o := range r.objects {
		all += string(o.raw)
		if o.kind == "ConfigMap" && strings.Contains(strings.ToLower(string(o.raw)), canary) {
			t.Errorf("%s holds a canary secret reference:\n%s", o, o.raw)
		}
		stripped, err := json.Marshal(stripSecretRefs(jsonValue(t, o.generic)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(stripped)), canary) {
			t.Errorf("%s: a canary Secret name or key outside a Secret reference:\n%s", o, stripped)
		}
	}
	// The check is not vacuous: every canary is rendered (as a reference).
	for _, c := range canaries {
		if !strings.Contains(all, c) {
			t.Errorf("canary %q from the values is not rendered", c)
		}
	}
}

// stripSecretRefs removes the fields that reference a Secret by name and
// key: env secretKeyRef, secret volumes, and the Prometheus Operator's
// SecretKeySelectors.
func stripSecretRefs(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			switch k {
			case "secretKeyRef", "secret", "keySecret", "bearerTokenSecret", "credentials", "clientSecret":
				if _, ok := x.(map[string]any); ok {
					continue
				}
			case "basicAuth":
				continue // username and password SecretKeySelectors only
			}
			out[k] = stripSecretRefs(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = stripSecretRefs(x)
		}
		return out
	}
	return v
}

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			walkStrings(x, f)
		}
	case []any:
		for _, x := range v {
			walkStrings(x, f)
		}
	case string:
		f(v)
	}
}

// TestChartRejectsSecretValues: the chart takes no secret value. A secret
// in the exporter's config fails the rendering (and the value is not
// printed); secretEnv and secretFiles accept Secret references only.
func TestChartRejectsSecretValues(t *testing.T) {
	helmBinary(t)
	const value = "s3cr3t-canary-value"
	for _, set := range [][]string{
		{"config.ibm[0].name=ibm", "config.ibm[0].api_key=" + value},
		{"config.azure[0].credential=client_secret", "config.azure[0].client_secret=" + value},
		{"config.azure[0].certificate_password=" + value},
		{"config.otlp.headers.authorization=Bearer " + value},
		{"config.scaleway[0].secret_key=" + value},
		{"config.aws[0].secret_access_key=" + value},
		{"config.oci[0].private_key_passphrase=" + value},
	} {
		t.Run(strings.SplitN(set[len(set)-1], "=", 2)[0], func(t *testing.T) {
			t.Parallel()
			out, err := template(t, nil, set)
			if err == nil {
				t.Fatalf("rendered a secret value into the chart:\n%s", out)
			}
			var he *helmError
			if !errors.As(err, &he) {
				t.Fatal(err)
			}
			if !strings.Contains(he.stderr, "the chart takes no secret values") {
				t.Errorf("error does not say why: %v", err)
			}
			if strings.Contains(he.stderr+he.stdout, value) {
				t.Errorf("helm prints the secret: %s%s", he.stdout, he.stderr)
			}
		})
	}
	// References (*_env, *_file) and empty keys are fine.
	out, err := template(t, nil, []string{
		"config.ibm[0].api_key_env=IBM_CLOUD_API_KEY",
		"config.azure[0].client_secret_file=/etc/cloudcarbon/azure/secret",
		"config.azure[0].certificate_password_env=AZURE_CERTIFICATE_PASSWORD",
	})
	if err != nil {
		t.Fatalf("references to secrets are rejected: %v", err)
	}
	decode(t, out)

	// secretEnv and secretFiles take Secret names and keys, never values.
	for _, set := range [][]string{
		{"secretEnv[0].name=X", "secretEnv[0].secretName=s", "secretEnv[0].key=k", "secretEnv[0].value=" + value},
		{"secretFiles[0].secretName=s", "secretFiles[0].mountPath=/x", "secretFiles[0].data=" + value},
		{"webConfig.password=" + value},
		{"secretEnv[0].name=X"},
	} {
		if out, err := template(t, nil, set); err == nil {
			t.Errorf("--set %v: rendered:\n%s", set, out)
		}
	}
}

// TestChartCopies: the chart's copies of the rules and the dashboards equal
// the originals byte for byte. Run with -update to copy them.
func TestChartCopies(t *testing.T) {
	pairs := map[string]string{
		filepath.Join(repoRoot, rulesFile): filepath.Join(chartDir, "files", "cloudcarbon.rules.yml"),
	}
	originals, err := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if err != nil || len(originals) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range originals {
		pairs[f] = filepath.Join(chartDir, "files", "dashboards", filepath.Base(f))
	}
	for orig, cp := range pairs {
		want, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(cp)
		if *update && (err != nil || !bytes.Equal(got, want)) {
			if err := os.WriteFile(cp, want, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("updated %s", cp)
			continue
		}
		if err != nil {
			t.Errorf("%v: copy %s into the chart (go test -run TestChartCopies -update)", err, orig)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: the chart must ship the same file (go test -run TestChartCopies -update)", cp, orig)
		}
	}
	// No dashboard in the chart that is not in dashboards/.
	copies, _ := filepath.Glob(filepath.Join(chartDir, "files", "dashboards", "*"))
	for _, c := range copies {
		if _, err := os.Stat(filepath.Join(repoRoot, "dashboards", filepath.Base(c))); err != nil {
			if *update {
				_ = os.Remove(c)
				continue
			}
			t.Errorf("%s has no original in dashboards/", c)
		}
	}
	// The rules copy decodes into the Prometheus Operator's types.
	rulesFileGroups(t, filepath.Join(chartDir, "files", "cloudcarbon.rules.yml"))
}

// TestChartVersion: the chart's appVersion (the default image tag) is the
// exporter's version.
func TestChartVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		APIVersion  string `json:"apiVersion"`
		AppVersion  string `json:"appVersion"`
		KubeVersion string `json:"kubeVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	v, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion != strings.TrimSpace(string(v)) {
		t.Errorf("Chart.yaml appVersion %q, VERSION %q: bump the chart with the exporter", chart.AppVersion, strings.TrimSpace(string(v)))
	}
	if chart.APIVersion != "v2" {
		t.Errorf("apiVersion %q, want v2 (Helm 3)", chart.APIVersion)
	}
	if chart.KubeVersion != ">="+strings.TrimPrefix(kubeVersion, "v")+"-0" {
		t.Errorf("kubeVersion %q: the tests render for %s, the chart's minimum", chart.KubeVersion, kubeVersion)
	}
}

func list(v any) []map[string]any {
	l, _ := v.([]any)
	var out []map[string]any
	for _, x := range l {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, x := range m {
		out[k] = str(x)
	}
	return out
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfEmptyAny(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case []networkingv1.NetworkPolicyPeer:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

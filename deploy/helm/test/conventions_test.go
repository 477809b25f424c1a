package helmtest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// monitorSettings are the values of serviceMonitor, which the PodMonitor
// shares.
type monitorSettings struct {
	honorLabels bool
	jobLabel    string
	jobName     string
	sampleLimit int
}

func readMonitorSettings(values map[string]any) monitorSettings {
	sm := values["serviceMonitor"].(map[string]any)
	var m monitorSettings
	m.honorLabels, _ = sm["honorLabels"].(bool)
	m.jobLabel, m.jobName = str(sm["jobLabel"]), str(sm["jobName"])
	if f, ok := sm["sampleLimit"].(float64); ok {
		m.sampleLimit = int(f)
	}
	return m
}

// checkMonitors checks the ServiceMonitor or PodMonitor: it scrapes every
// exporter pod once, keeps the exporter's labels (honorLabels) unless told
// otherwise, takes the job from jobLabel or jobName and never forces one.
func checkMonitors(t *testing.T, r rendering, want expect, values map[string]any) {
	services, pods := r.ofKind("ServiceMonitor"), r.ofKind("PodMonitor")
	if (len(services) == 1) != want.serviceMonitor || (len(pods) == 1) != want.podMonitor || len(services)+len(pods) > 1 {
		t.Fatalf("%d ServiceMonitors and %d PodMonitors, want ServiceMonitor %v, PodMonitor %v", len(services), len(pods), want.serviceMonitor, want.podMonitor)
	}
	settings := readMonitorSettings(values)
	var (
		jobLabel    string
		sampleLimit *int64
		endpoint    struct {
			port, path, scheme string
			honorLabels        bool
			relabelings        []monitoringv1.RelabelConfig
		}
		labelsOfJobSource map[string]string
	)
	switch {
	case want.serviceMonitor:
		sm := services[0].typed.(*monitoringv1.ServiceMonitor)
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		// It selects exactly one Service (not the headless one, which
		// would scrape every shard twice), in the exporter's namespace.
		var selected []*corev1.Service
		for _, o := range r.ofKind("Service") {
			s := o.typed.(*corev1.Service)
			nsOK := sm.Spec.NamespaceSelector.Any || slices.Contains(sm.Spec.NamespaceSelector.MatchNames, s.Namespace) ||
				(len(sm.Spec.NamespaceSelector.MatchNames) == 0 && s.Namespace == sm.Namespace)
			if nsOK && sel.Matches(labels.Set(s.Labels)) {
				selected = append(selected, s)
			}
		}
		if len(selected) != 1 || selected[0].Spec.ClusterIP == corev1.ClusterIPNone {
			t.Fatalf("ServiceMonitor selects %d Services, want the one non-headless Service", len(selected))
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("want one endpoint, got %d", len(sm.Spec.Endpoints))
		}
		ep := sm.Spec.Endpoints[0]
		endpoint.port, endpoint.path, endpoint.honorLabels, endpoint.relabelings = ep.Port, ep.Path, ep.HonorLabels, ep.RelabelConfigs
		if ep.Scheme != nil {
			endpoint.scheme = strings.ToLower(string(*ep.Scheme))
		}
		if ep.Port != selected[0].Spec.Ports[0].Name {
			t.Errorf("endpoint port %q, want the Service's %q", ep.Port, selected[0].Spec.Ports[0].Name)
		}
		jobLabel, sampleLimit, labelsOfJobSource = sm.Spec.JobLabel, sm.Spec.SampleLimit, selected[0].Labels
	case want.podMonitor:
		pm := pods[0].typed.(*monitoringv1.PodMonitor)
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		podLabels := exporterPodLabels(t, r)
		if !sel.Matches(labels.Set(podLabels)) || !slices.Contains(pm.Spec.NamespaceSelector.MatchNames, exporterNamespace(want)) {
			t.Errorf("PodMonitor selector %v in %v does not select the exporter's pods %v", pm.Spec.Selector, pm.Spec.NamespaceSelector, podLabels)
		}
		// Not the report CronJob's pods, which serve nothing.
		for _, o := range r.ofKind("CronJob") {
			if sel.Matches(labels.Set(o.typed.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Labels)) {
				t.Errorf("the PodMonitor selects the pods of %s", o)
			}
		}
		if len(pm.Spec.PodMetricsEndpoints) != 1 {
			t.Fatalf("want one endpoint, got %d", len(pm.Spec.PodMetricsEndpoints))
		}
		ep := pm.Spec.PodMetricsEndpoints[0]
		if ep.Port != nil {
			endpoint.port = *ep.Port
		}
		endpoint.path, endpoint.honorLabels, endpoint.relabelings = ep.Path, ep.HonorLabels, ep.RelabelConfigs
		if ep.Scheme != nil {
			endpoint.scheme = strings.ToLower(string(*ep.Scheme))
		}
		jobLabel, sampleLimit, labelsOfJobSource = pm.Spec.JobLabel, pm.Spec.SampleLimit, podLabels
	default:
		return
	}
	if endpoint.port != "http" || endpoint.path != "/metrics" || endpoint.scheme != want.scrapeScheme {
		t.Errorf("endpoint %s %s on port %s, want %s /metrics on port http", endpoint.scheme, endpoint.path, endpoint.port, want.scrapeScheme)
	}
	if endpoint.honorLabels != settings.honorLabels {
		t.Errorf("honorLabels %v, want the values' %v", endpoint.honorLabels, settings.honorLabels)
	}
	if jobLabel != settings.jobLabel {
		t.Errorf("jobLabel %q, want %q", jobLabel, settings.jobLabel)
	}
	if jobLabel != "" && labelsOfJobSource[jobLabel] == "" {
		t.Errorf("jobLabel %q: the scraped object has no such label (%v)", jobLabel, labelsOfJobSource)
	}
	gotLimit := 0
	if sampleLimit != nil {
		gotLimit = int(*sampleLimit)
	}
	if gotLimit != settings.sampleLimit {
		t.Errorf("sampleLimit %d, want %d", gotLimit, settings.sampleLimit)
	}
	var jobs []string
	for _, rc := range endpoint.relabelings {
		if rc.TargetLabel == "job" && rc.Replacement != nil {
			jobs = append(jobs, *rc.Replacement)
		}
	}
	switch {
	case settings.jobName == "" && len(jobs) > 0:
		t.Errorf("the chart sets job=%v though jobName is empty", jobs)
	case settings.jobName != "" && !slices.Equal(jobs, []string{settings.jobName}):
		t.Errorf("relabelings set job %v, want %q", jobs, settings.jobName)
	}
}

func exporterPodLabels(t *testing.T, r rendering) map[string]string {
	t.Helper()
	_, meta := podOf(t, r)
	return meta.Labels
}

// podOf returns the exporter's pod template.
func podOf(t *testing.T, r rendering) (corev1.PodSpec, metav1.ObjectMeta) {
	t.Helper()
	for _, o := range r.ofKind("Deployment") {
		d := o.typed.(*appsv1.Deployment)
		return d.Spec.Template.Spec, d.Spec.Template.ObjectMeta
	}
	for _, o := range r.ofKind("StatefulSet") {
		s := o.typed.(*appsv1.StatefulSet)
		return s.Spec.Template.Spec, s.Spec.Template.ObjectMeta
	}
	t.Fatal("no Deployment or StatefulSet")
	return corev1.PodSpec{}, metav1.ObjectMeta{}
}

func exporterNamespace(want expect) string {
	if want.namespace != "" {
		return want.namespace
	}
	return namespace
}

// checkInitContainer checks the configuration check: the exporter's image
// with --config.check, its environment and its read-only mounts, so that
// it refuses what the exporter would.
func checkInitContainer(t *testing.T, pod corev1.PodSpec, want expect, values map[string]any) {
	enabled, _ := values["configCheck"].(map[string]any)["enabled"].(bool)
	if want.demo || !enabled {
		if len(pod.InitContainers) != 0 {
			t.Errorf("init containers %v, want none (demo or configCheck off)", pod.InitContainers)
		}
		return
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Name != "config-check" {
		t.Fatalf("want one init container config-check, got %d", len(pod.InitContainers))
	}
	ic, c := pod.InitContainers[0], exporterContainer(t, pod)
	if ic.Image != c.Image || ic.ImagePullPolicy != c.ImagePullPolicy {
		t.Errorf("config-check runs %s, the exporter %s", ic.Image, c.Image)
	}
	for _, a := range []string{"--config.check", "--config.file=" + configFile} {
		if !slices.Contains(ic.Args, a) {
			t.Errorf("config-check args %q lack %s", ic.Args, a)
		}
	}
	if !reflect.DeepEqual(ic.Env, c.Env) || len(ic.EnvFrom) != 0 {
		t.Errorf("config-check environment %+v differs from the exporter's %+v", ic.Env, c.Env)
	}
	if !reflect.DeepEqual(ic.SecurityContext, c.SecurityContext) {
		t.Errorf("config-check securityContext %+v, the exporter's %+v", ic.SecurityContext, c.SecurityContext)
	}
	var want2 []corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		if m.Name != "state" && m.Name != "tmp" {
			want2 = append(want2, m)
		}
	}
	if !reflect.DeepEqual(ic.VolumeMounts, want2) {
		t.Errorf("config-check mounts %+v, want the exporter's configuration and Secret mounts %+v", ic.VolumeMounts, want2)
	}
	for _, m := range ic.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("config-check mounts %s writable", m.MountPath)
		}
	}
	if ic.Resources.Limits.Memory().IsZero() {
		t.Error("config-check has no memory limit")
	}
}

func checkPDB(t *testing.T, r rendering, podMeta metav1.ObjectMeta, want expect, values map[string]any) {
	pdbs := r.ofKind("PodDisruptionBudget")
	if !want.pdb {
		if len(pdbs) != 0 {
			t.Error("unexpected PodDisruptionBudget")
		}
		return
	}
	if len(pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(pdbs))
	}
	pdb := pdbs[0].typed.(*policyv1.PodDisruptionBudget)
	checkSelector(t, pdbs[0].String(), pdb.Spec.Selector, podMeta.Labels)
	v := values["podDisruptionBudget"].(map[string]any)
	if mu, ok := v["maxUnavailable"]; ok {
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != strings.TrimSuffix(jsonString(mu), ".0") {
			t.Errorf("maxUnavailable %v, want %v", pdb.Spec.MaxUnavailable, mu)
		}
	}
	for _, o := range r.ofKind("CronJob") {
		sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if sel.Matches(labels.Set(o.typed.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Labels)) {
			t.Errorf("the PodDisruptionBudget selects the pods of %s", o)
		}
	}
}

func jsonString(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return ""
}

// checkReportCronJob checks the CronJob that merges the shards' state
// files into reports: it mounts the claim the exporter writes and reads
// every shard's state file, and takes no Secret.
func checkReportCronJob(t *testing.T, r rendering, pod corev1.PodSpec, podMeta metav1.ObjectMeta, want expect, values map[string]any) {
	jobs := r.ofKind("CronJob")
	if want.reportCronJob == 0 {
		if len(jobs) != 0 {
			t.Error("unexpected CronJob")
		}
		return
	}
	if len(jobs) != 1 {
		t.Fatalf("want one CronJob, got %d", len(jobs))
	}
	cj := jobs[0].typed.(*batchv1.CronJob)
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
	}
	jp := cj.Spec.JobTemplate.Spec.Template
	if l := jp.Labels; labels.SelectorFromSet(podMeta.Labels).Matches(labels.Set(l)) {
		t.Errorf("the report pods %v carry the exporter's pod labels: its Service and monitors would select them", l)
	}
	var claim string
	for _, v := range pod.Volumes {
		if v.Name == "state" && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim == "" || len(jp.Spec.Volumes) != 1 || jp.Spec.Volumes[0].PersistentVolumeClaim == nil || jp.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != claim {
		t.Errorf("the report job mounts %+v, want the exporter's claim %q", jp.Spec.Volumes, claim)
	}
	states := stateDir + "/state.json"
	if want.shards > 1 {
		states = stateDir + "/state.shard-*-of-" + strconv.Itoa(want.shards) + ".json"
	}
	if len(jp.Spec.Containers) != want.reportCronJob {
		t.Fatalf("%d report containers, want %d", len(jp.Spec.Containers), want.reportCronJob)
	}
	reports := list(values["reportCronJob"].(map[string]any)["reports"])
	files := map[string]bool{}
	for i, c := range jp.Spec.Containers {
		if c.Image != exporterContainer(t, pod).Image || len(c.Args) < 3 || c.Args[0] != "report" {
			t.Errorf("report container %s: %s %q, want the exporter's image running report", c.Name, c.Image, c.Args)
			continue
		}
		if !slices.Contains(c.Args, "--state.merge="+states) {
			t.Errorf("report container %s: args %q lack --state.merge=%s", c.Name, c.Args, states)
		}
		out := stateDir + "/reports/" + str(reports[i]["file"])
		if !slices.Contains(c.Args, "--output="+out) || files[out] {
			t.Errorf("report container %s: args %q, want --output=%s once", c.Name, c.Args, out)
		}
		files[out] = true
		if len(c.Env) != 0 || len(c.EnvFrom) != 0 {
			t.Errorf("report container %s has an environment: the report reads state files only", c.Name)
		}
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != stateDir {
			t.Errorf("report container %s mounts %+v, want the claim at %s", c.Name, c.VolumeMounts, stateDir)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("report container %s: securityContext %+v, want the exporter's", c.Name, sc)
		}
	}
	if jp.Spec.RestartPolicy != corev1.RestartPolicyOnFailure && jp.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", jp.Spec.RestartPolicy)
	}
}

// checkNamespaces: every object is in namespaceOverride (or the release's
// namespace), but the Operator and Grafana objects that have a namespace
// value of their own.
func checkNamespaces(t *testing.T, r rendering, want expect, values map[string]any) {
	own := map[string]string{
		"ServiceMonitor": str(values["serviceMonitor"].(map[string]any)["namespace"]),
		"PodMonitor":     str(values["podMonitor"].(map[string]any)["namespace"]),
		"PrometheusRule": str(values["prometheusRule"].(map[string]any)["namespace"]),
	}
	for _, o := range r.objects {
		wantNS := exporterNamespace(want)
		if ns := own[o.kind]; ns != "" {
			wantNS = ns
		}
		if cm, ok := o.typed.(*corev1.ConfigMap); ok && cm.Labels["grafana_dashboard"] != "" {
			if ns := str(values["dashboards"].(map[string]any)["namespace"]); ns != "" {
				wantNS = ns
			}
		}
		if o.namespace != wantNS {
			t.Errorf("%s in namespace %q, want %q", o, o.namespace, wantNS)
		}
	}
	for _, o := range append(r.ofKind("ServiceMonitor"), r.ofKind("PodMonitor")...) {
		var matchNames []string
		switch m := o.typed.(type) {
		case *monitoringv1.ServiceMonitor:
			matchNames = m.Spec.NamespaceSelector.MatchNames
		case *monitoringv1.PodMonitor:
			matchNames = m.Spec.NamespaceSelector.MatchNames
		}
		if !slices.Equal(matchNames, []string{exporterNamespace(want)}) {
			t.Errorf("%s looks in %v, want the exporter's namespace %s", o, matchNames, exporterNamespace(want))
		}
	}
}

// TestChartRejectsConfigTypos: the schema of `config`, generated from the
// exporter's types, makes `helm lint` and `helm template` reject a
// misspelt key or a value of the wrong type, naming its path, before
// anything is installed.
func TestChartRejectsConfigTypos(t *testing.T) {
	helmBinary(t)
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"config.ibm[0].name=ibm", "config.ibm[0].api_kye=x"}, "at '/config/ibm/0': additional properties 'api_kye' not allowed"},
		{[]string{"config.refresh.intervall=6h"}, "at '/config/refresh': additional properties 'intervall' not allowed"},
		{[]string{"config.gcp[0].name=gcp", "config.gcp[0].projet=p"}, "at '/config/gcp/0': additional properties 'projet' not allowed"},
		{[]string{"config.azure[0].name=Azure Prod"}, "/config/azure/0/name"},
		{[]string{"config.refresh.interval=six hours"}, "/config/refresh/interval"},
		{[]string{"config.ibm[0].page_concurrency=eight"}, "/config/ibm/0/page_concurrency"},
		{[]string{"config.ibmcloud[0].name=x"}, "additional properties 'ibmcloud' not allowed"},
	} {
		t.Run(c.want, func(t *testing.T) {
			t.Parallel()
			for _, cmd := range []string{"lint", "template"} {
				var err error
				if cmd == "lint" {
					_, err = runHelm(t, append([]string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}, valuesArgs(nil, c.set)...)...)
				} else {
					_, err = template(t, nil, c.set)
				}
				var he *helmError
				if !errors.As(err, &he) {
					t.Fatalf("helm %s accepts %v: %v", cmd, c.set, err)
				}
				if !strings.Contains(he.stdout+he.stderr, c.want) {
					t.Errorf("helm %s: the error does not say %q:\n%s%s", cmd, c.want, he.stdout, he.stderr)
				}
			}
		})
	}
}

// TestChartTakesTheExampleConfig: the example configuration
// (cloudcarbon_exporter example-config: config/example.yml and each cloud's
// section), which sets every section, is valid `config`.
func TestChartTakesTheExampleConfig(t *testing.T) {
	helmBinary(t)
	parts, err := filepath.Glob(filepath.Join(repoRoot, "provider", "*", "example.yml"))
	if err != nil || len(parts) < 6 {
		t.Fatalf("the clouds' example sections: %v %v", parts, err)
	}
	cfg := map[string]any{}
	for _, f := range append([]string{filepath.Join(repoRoot, "config", "example.yml")}, parts...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var part map[string]any
		if err := yaml.Unmarshal(b, &part); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for k, v := range part {
			cfg[k] = v
		}
	}
	if len(cfg) < 8 {
		t.Fatalf("the example has sections %v", keys(cfg))
	}
	out, err := yaml.Marshal(map[string]any{"config": cfg})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	lint(t, []string{f}, nil)
	rendered, err := template(t, []string{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, rendered)
}

// TestChartRejectsImpossibleSettings: combinations that cannot work fail
// the rendering with a message that says what to set.
func TestChartRejectsImpossibleSettings(t *testing.T) {
	helmBinary(t)
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"reportCronJob.enabled=true"}, "set persistence.enabled and persistence.shared"},
		{[]string{"reportCronJob.enabled=true", "shards=3", "persistence.enabled=true"}, "set persistence.enabled and persistence.shared"},
		{[]string{"persistence.enabled=true", "persistence.shared=true"}, "accessModes to [ReadWriteMany]"},
		{[]string{"persistence.shared=true"}, "persistence.shared needs persistence.enabled"},
		{[]string{"shards=2", "persistence.enabled=true", "persistence.existingClaim=mine"}, "cannot be shared by shards"},
		{[]string{"serviceMonitor.enabled=true", "podMonitor.enabled=true"}, "scrape every pod twice"},
		{[]string{"podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1"}, "not both"},
		{[]string{"serviceMonitor.honorLabel=true"}, "additional properties 'honorLabel' not allowed"},
		{[]string{"reportCronJob.reports[0].file=../x", "reportCronJob.reports[0].args[0]=--period=year"}, "/reportCronJob/reports/0/file"},
		{[]string{"reportCronJob.reports[0].file=x.csv", "reportCronJob.reports[0].args[0]=--state.merge=/etc/*"}, "/reportCronJob/reports/0/args/0"},
	} {
		t.Run(c.want, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, nil, c.set)
			var he *helmError
			if !errors.As(err, &he) {
				t.Fatalf("--set %v renders:\n%s", c.set, out)
			}
			if !strings.Contains(he.stderr, c.want) {
				t.Errorf("--set %v: the error does not say %q:\n%s", c.set, c.want, he.stderr)
			}
		})
	}
	// An existing claim is fine for shards that share it.
	out, err := template(t, nil, []string{"shards=2", "persistence.enabled=true", "persistence.shared=true", "persistence.existingClaim=mine"})
	if err != nil {
		t.Fatal(err)
	}
	decode(t, out)
}

// TestChartDefaultsFitTheOperator: installed as it comes with the
// Prometheus Operator, the chart keeps the exporter's service label
// (honorLabels), sets no job of its own and checks the configuration
// before the exporter starts.
func TestChartDefaultsFitTheOperator(t *testing.T) {
	values := readValues(t, filepath.Join(chartDir, "values.yaml"))
	s := readMonitorSettings(values)
	if !s.honorLabels {
		t.Error("serviceMonitor.honorLabels is not true by default: the Operator's service target label would replace the exporter's")
	}
	if s.jobName != "" {
		t.Errorf("serviceMonitor.jobName = %q by default: the chart forces a job", s.jobName)
	}
	if s.jobLabel != "app.kubernetes.io/name" {
		t.Errorf("serviceMonitor.jobLabel = %q, want app.kubernetes.io/name, which the Service and the pods carry", s.jobLabel)
	}
	if enabled, _ := values["configCheck"].(map[string]any)["enabled"].(bool); !enabled {
		t.Error("configCheck.enabled is not true by default")
	}
	if roll, _ := values["rollOnSecretChange"].(bool); !roll {
		t.Error("rollOnSecretChange is not true by default")
	}
}

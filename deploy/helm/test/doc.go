// Package helmtest tests the Helm chart in deploy/helm/cloudcarbon-exporter.
//
// It is a Go module of its own, so that the exporter's module does not
// depend on the Kubernetes API types. The tests run the helm binary named by
// $HELM (build it once per machine with tools/helm/build.sh):
//
//	cd deploy/helm/test && HELM=$(../../../tools/helm/build.sh) go test -count=1 ./...
//
// Without $HELM the tests that need helm are skipped, unless
// $CLOUDCARBON_E2E is set, in which case they fail.
//
// For every values file under the chart's ci/ directory (and a few more
// cases defined in the tests) they run `helm lint --strict` and
// `helm template`, decode every rendered object strictly (an unknown field
// fails) into the k8s.io/api types and the Prometheus Operator's
// monitoring/v1 types, and check the security context, the probes, the
// sharding flags, the configuration check, the ServiceMonitor or
// PodMonitor (honorLabels, jobLabel, no forced job), the
// PodDisruptionBudget, the report CronJob, namespaceOverride, that no
// Secret is rendered and no secret reaches a ConfigMap, that the
// configuration's schema rejects a misspelt key with its path, and that the
// chart's copies of the rules and dashboards equal the originals under
// dashboards/.
package helmtest

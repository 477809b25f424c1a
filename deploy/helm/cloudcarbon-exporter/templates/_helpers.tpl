{{/*
Name of the chart, or nameOverride.
*/}}
{{- define "cloudcarbon-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, at most 63 characters (DNS label). The headless
Service adds "-headless" and StatefulSet pods add "-N", so names stay short.
*/}}
{{- define "cloudcarbon-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Namespace of every object: namespaceOverride, or the release's.
*/}}
{{- define "cloudcarbon-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "cloudcarbon-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "cloudcarbon-exporter.labels" -}}
helm.sh/chart: {{ include "cloudcarbon-exporter.chart" . }}
{{ include "cloudcarbon-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "cloudcarbon-exporter.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "cloudcarbon-exporter.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels that select the exporter's pods.
*/}}
{{- define "cloudcarbon-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cloudcarbon-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "cloudcarbon-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cloudcarbon-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, or the chart's appVersion.
*/}}
{{- define "cloudcarbon-exporter.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Image reference: repository:tag, or repository@digest when a digest is set.
*/}}
{{- define "cloudcarbon-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "cloudcarbon-exporter.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Whether the exporter runs sharded, as a StatefulSet.
*/}}
{{- define "cloudcarbon-exporter.sharded" -}}
{{- if gt (int .Values.shards) 1 }}true{{ end }}
{{- end }}

{{/*
Paths inside the container.
*/}}
{{- define "cloudcarbon-exporter.configDir" -}}/etc/cloudcarbon_exporter/config{{- end }}
{{- define "cloudcarbon-exporter.configFile" -}}/etc/cloudcarbon_exporter/config/cloudcarbon_exporter.yml{{- end }}
{{- define "cloudcarbon-exporter.webConfigDir" -}}/etc/cloudcarbon_exporter/web{{- end }}
{{- define "cloudcarbon-exporter.stateDir" -}}/var/lib/cloudcarbon_exporter{{- end }}

{{/*
Fails when the exporter configuration holds a secret value. Secrets come only
from existing Secrets: the config names an environment variable (*_env, set by
secretEnv) or a file (*_file, mounted by secretFiles). Called with a list:
(path, value). Keys are checked at every depth; empty values pass.
*/}}
{{- define "cloudcarbon-exporter.rejectSecrets" -}}
{{- $path := index . 0 }}
{{- $value := index . 1 }}
{{- if kindIs "map" $value }}
{{- range $k, $v := $value }}
{{- $p := printf "%s.%s" $path $k }}
{{- if and $v (regexMatch "(?i)(^|_)(api_key|apikey|secret|secret_key|secret_access_key|private_key|password|passphrase|token|headers)$" $k) }}
{{- if eq (lower $k) "headers" }}
{{- fail (printf "%s: the chart takes no secret values. Put the headers in a Secret and set OTEL_EXPORTER_OTLP_HEADERS from it with secretEnv" $p) }}
{{- end }}
{{- fail (printf "%s: the chart takes no secret values. Keep the secret in a Secret and reference it: %s_env with secretEnv, or %s_file with secretFiles" $p $k $k) }}
{{- end }}
{{- include "cloudcarbon-exporter.rejectSecrets" (list $p $v) }}
{{- end }}
{{- else if kindIs "slice" $value }}
{{- range $i, $v := $value }}
{{- include "cloudcarbon-exporter.rejectSecrets" (list (printf "%s[%d]" $path $i) $v) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The exporter's command-line flags.
*/}}
{{- define "cloudcarbon-exporter.args" -}}
{{- if .Values.demo }}
- --demo
{{- else }}
- --config.file={{ include "cloudcarbon-exporter.configFile" . }}
- --state.file={{ include "cloudcarbon-exporter.stateDir" . }}/state.json
{{- end }}
- --web.listen-address=:9874
{{- if .Values.webConfig.existingSecret }}
- --web.config.file={{ include "cloudcarbon-exporter.webConfigDir" . }}/{{ .Values.webConfig.key }}
{{- end }}
- --log.level={{ .Values.log.level }}
- --log.format={{ .Values.log.format }}
{{- if include "cloudcarbon-exporter.sharded" . }}
- --shard.total={{ int .Values.shards }}
- --shard.index=-1
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Environment of the exporter and of its configuration check.
*/}}
{{- define "cloudcarbon-exporter.env" -}}
# The pod's name; a shard (--shard.index=-1) takes its index from the
# name's ordinal suffix.
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Read-only mounts of the exporter and of its configuration check: the
configuration, the web configuration, the Secrets and the extra mounts.
*/}}
{{- define "cloudcarbon-exporter.configMounts" -}}
{{- if not .Values.demo }}
- name: config
  mountPath: {{ include "cloudcarbon-exporter.configDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.webConfig.existingSecret }}
- name: web-config
  mountPath: {{ include "cloudcarbon-exporter.webConfigDir" . }}
  readOnly: true
{{- end }}
{{- range $i, $f := .Values.secretFiles }}
- name: secret-{{ $i }}
  mountPath: {{ $f.mountPath }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Names of the existing Secrets the pods use, sorted, once each.
*/}}
{{- define "cloudcarbon-exporter.secretNames" -}}
{{- $names := list }}
{{- range .Values.secretEnv }}{{ $names = append $names .secretName }}{{ end }}
{{- range .Values.secretFiles }}{{ $names = append $names .secretName }}{{ end }}
{{- with .Values.webConfig.existingSecret }}{{ $names = append $names . }}{{ end }}
{{- $names | uniq | sortAlpha | join "," }}
{{- end }}

{{/*
Hash of the resource versions of the Secrets the pods use, looked up in the
cluster (empty under helm template): a changed Secret changes it and rolls
the pods. The Secrets' data never takes part.
*/}}
{{- define "cloudcarbon-exporter.secretsChecksum" -}}
{{- $ns := include "cloudcarbon-exporter.namespace" . }}
{{- $versions := list }}
{{- range (include "cloudcarbon-exporter.secretNames" . | splitList ",") }}
{{- $s := lookup "v1" "Secret" $ns . }}
{{- $versions = append $versions (printf "%s=%s/%s" . (dig "metadata" "uid" "" $s) (dig "metadata" "resourceVersion" "" $s)) }}
{{- end }}
{{- $versions | join "," | sha256sum }}
{{- end }}

{{/*
Pod template of the Deployment and of the StatefulSet.
*/}}
{{- define "cloudcarbon-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "cloudcarbon-exporter.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- if and .Values.rollOnSecretChange (include "cloudcarbon-exporter.secretNames" .) }}
    checksum/secrets: {{ include "cloudcarbon-exporter.secretsChecksum" . }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "cloudcarbon-exporter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and .Values.configCheck.enabled (not .Values.demo) }}
  initContainers:
    # Refuses a configuration the exporter would refuse, before it starts:
    # the error, with its line, is in this container's log.
    - name: config-check
      image: {{ include "cloudcarbon-exporter.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --config.check
        - --config.file={{ include "cloudcarbon-exporter.configFile" . }}
        - --log.level={{ .Values.log.level }}
        - --log.format={{ .Values.log.format }}
      env:
        {{- include "cloudcarbon-exporter.env" . | nindent 8 }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.configCheck.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        {{- include "cloudcarbon-exporter.configMounts" . | trim | nindent 8 }}
  {{- end }}
  containers:
    - name: exporter
      image: {{ include "cloudcarbon-exporter.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- include "cloudcarbon-exporter.args" . | trim | nindent 8 }}
      env:
        {{- include "cloudcarbon-exporter.env" . | nindent 8 }}
      ports:
        - name: http
          containerPort: 9874
          protocol: TCP
      {{- with .Values.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: state
          mountPath: {{ include "cloudcarbon-exporter.stateDir" . }}
        - name: tmp
          mountPath: /tmp
        {{- with include "cloudcarbon-exporter.configMounts" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    {{- if not .Values.demo }}
    - name: config
      configMap:
        name: {{ include "cloudcarbon-exporter.fullname" . }}
    {{- end }}
    {{- if not (include "cloudcarbon-exporter.claimPerShard" .) }}
    - name: state
      {{- if .Values.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ include "cloudcarbon-exporter.claimName" . }}
      {{- else }}
      emptyDir: {{- toYaml .Values.persistence.emptyDir | nindent 8 }}
      {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if .Values.webConfig.existingSecret }}
    - name: web-config
      secret:
        secretName: {{ .Values.webConfig.existingSecret }}
    {{- end }}
    {{- range $i, $f := .Values.secretFiles }}
    - name: secret-{{ $i }}
      secret:
        secretName: {{ $f.secretName }}
        {{- with $f.items }}
        items:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- if hasKey $f "defaultMode" }}
        defaultMode: {{ $f.defaultMode }}
        {{- end }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
Whether each shard gets a claim of its own (volumeClaimTemplates).
*/}}
{{- define "cloudcarbon-exporter.claimPerShard" -}}
{{- if and .Values.persistence.enabled (include "cloudcarbon-exporter.sharded" .) (not .Values.persistence.shared) }}true{{ end }}
{{- end }}

{{/*
Name of the one state claim (not per shard).
*/}}
{{- define "cloudcarbon-exporter.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-state" (include "cloudcarbon-exporter.fullname" .)) }}
{{- end }}

{{/*
Fails on persistence settings that cannot work.
*/}}
{{- define "cloudcarbon-exporter.checkPersistence" -}}
{{- $p := .Values.persistence }}
{{- if and $p.existingClaim (include "cloudcarbon-exporter.sharded" .) (not $p.shared) }}
{{- fail "persistence.existingClaim cannot be shared by shards: with shards > 1 every shard gets its own claim, or set persistence.shared (a ReadWriteMany claim)" }}
{{- end }}
{{- if and $p.shared (not $p.enabled) }}
{{- fail "persistence.shared needs persistence.enabled" }}
{{- end }}
{{- if and $p.shared (not $p.existingClaim) (not (has "ReadWriteMany" $p.accessModes)) }}
{{- fail "persistence.shared mounts one claim in several pods: set persistence.accessModes to [ReadWriteMany] (a storage class that supports it), or give persistence.existingClaim" }}
{{- end }}
{{- end }}

{{/*
Spec of the state file's claim (PVC or volumeClaimTemplate).
*/}}
{{- define "cloudcarbon-exporter.pvcSpec" -}}
accessModes:
  {{- toYaml .Values.persistence.accessModes | nindent 2 }}
{{- if .Values.persistence.storageClassName }}
{{- if eq "-" .Values.persistence.storageClassName }}
storageClassName: ""
{{- else }}
storageClassName: {{ .Values.persistence.storageClassName }}
{{- end }}
{{- end }}
resources:
  requests:
    storage: {{ .Values.persistence.size }}
{{- end }}

{{/*
Name of the StatefulSet's headless Service.
*/}}
{{- define "cloudcarbon-exporter.headlessName" -}}
{{- printf "%s-headless" (include "cloudcarbon-exporter.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
The scrape endpoint of the ServiceMonitor and of the PodMonitor.
*/}}
{{- define "cloudcarbon-exporter.scrapeEndpoint" -}}
port: http
path: /metrics
scheme: {{ .Values.serviceMonitor.scheme }}
# The exporter's service label (the cloud service) wins over the
# Operator's (the Kubernetes Service's name).
honorLabels: {{ .Values.serviceMonitor.honorLabels }}
{{- with .Values.serviceMonitor.interval }}
interval: {{ . }}
{{- end }}
{{- with .Values.serviceMonitor.scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
{{- with .Values.serviceMonitor.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceMonitor.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if or .Values.serviceMonitor.jobName .Values.serviceMonitor.relabelings }}
relabelings:
  {{- with .Values.serviceMonitor.jobName }}
  - action: replace
    targetLabel: job
    replacement: {{ . | quote }}
  {{- end }}
  {{- with .Values.serviceMonitor.relabelings }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- with .Values.serviceMonitor.metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

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
  containers:
    - name: exporter
      image: {{ include "cloudcarbon-exporter.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- include "cloudcarbon-exporter.args" . | trim | nindent 8 }}
      env:
        # The pod's name; a shard (--shard.index=-1) takes its index from
        # the name's ordinal suffix.
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
      ports:
        - name: http
          containerPort: 9874
          protocol: TCP
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
        {{- if not .Values.demo }}
        - name: config
          mountPath: {{ include "cloudcarbon-exporter.configDir" . }}
          readOnly: true
        {{- end }}
        - name: state
          mountPath: {{ include "cloudcarbon-exporter.stateDir" . }}
        - name: tmp
          mountPath: /tmp
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
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- if not .Values.demo }}
    - name: config
      configMap:
        name: {{ include "cloudcarbon-exporter.fullname" . }}
    {{- end }}
    {{- if not (and .Values.persistence.enabled (include "cloudcarbon-exporter.sharded" .)) }}
    - name: state
      {{- if .Values.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim | default (printf "%s-state" (include "cloudcarbon-exporter.fullname" .)) }}
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

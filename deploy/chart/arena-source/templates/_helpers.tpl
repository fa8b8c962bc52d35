{{/* Chart name, as used in labels. */}}
{{- define "arena-source.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name: the release name, plus the chart name unless the release name
already contains it (release "arena-source" gives arena-source-worker, as deploy/base names it).
*/}}
{{- define "arena-source.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "worker"). */}}
{{- define "arena-source.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arena-source.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* All labels of an object: (dict "root" $ "component" "worker"); component may be empty. */}}
{{- define "arena-source.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "arena-source.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* A number or string value as text ("" when unset); whole numbers without an exponent (1e+06). */}}
{{- define "arena-source.scalar" -}}
{{- if kindIs "float64" . }}{{ int64 . }}{{ else if not (kindIs "invalid" .) }}{{ . }}{{ end }}
{{- end }}

{{- define "arena-source.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "arena-source.configName" -}}
{{ include "arena-source.fullname" . }}-config
{{- end }}

{{- define "arena-source.artifactsClaim" -}}
{{- default (printf "%s-artifacts" (include "arena-source.fullname" .)) .Values.storage.fs.existingClaim }}
{{- end }}

{{/* The artifact Service's name (and, by default, host of the artifact base URL). */}}
{{- define "arena-source.artifactsService" -}}
{{ include "arena-source.fullname" . }}-artifacts
{{- end }}

{{/* artifactBaseURL, else the artifact Service's in-cluster URL. */}}
{{- define "arena-source.artifactBaseURL" -}}
{{- $port := int .Values.artifactServer.service.port }}
{{- default (printf "http://%s.%s.svc.cluster.local%s" (include "arena-source.artifactsService" .) .Release.Namespace (ternary "" (printf ":%d" $port) (eq $port 80))) .Values.artifactBaseURL }}
{{- end }}

{{/* Mount points of the Temporal TLS and API key Secrets. */}}
{{- define "arena-source.temporalTlsDir" -}}
/etc/arena-source/temporal-tls
{{- end }}
{{- define "arena-source.temporalApiKeyDir" -}}
/etc/arena-source/temporal-api-key
{{- end }}

{{/*
Temporal client environment configuration (TLS, API key) for the controller and the workers:
Temporal's envconfig variable names (read by arena-source through @temporalio/envconfig), and the
API key as a mounted file (ARENA_SOURCE_TEMPORAL_API_KEY_FILE), so a rotated key is picked up
without a restart, as are rotated certificates.
*/}}
{{- define "arena-source.temporalEnv" -}}
{{- $t := .Values.temporal }}
{{- if $t.tls.enabled }}
- {name: TEMPORAL_TLS, value: "true"}
{{- if $t.tls.secretName }}
- {name: TEMPORAL_TLS_CLIENT_CERT_PATH, value: {{ include "arena-source.temporalTlsDir" . }}/tls.crt}
- {name: TEMPORAL_TLS_CLIENT_KEY_PATH, value: {{ include "arena-source.temporalTlsDir" . }}/tls.key}
{{- if $t.tls.serverCA }}
- {name: TEMPORAL_TLS_SERVER_CA_CERT_PATH, value: {{ include "arena-source.temporalTlsDir" . }}/ca.crt}
{{- end }}
{{- end }}
{{- if $t.tls.serverName }}
- {name: TEMPORAL_TLS_SERVER_NAME, value: {{ $t.tls.serverName | quote }}}
{{- end }}
{{- end }}
{{- if $t.apiKey.secretName }}
- {name: ARENA_SOURCE_TEMPORAL_API_KEY_FILE, value: {{ include "arena-source.temporalApiKeyDir" . }}/{{ $t.apiKey.key }}}
{{- end }}
{{- end }}

{{/* The Temporal TLS and API key Secrets' volumeMounts / volumes, when there are any. */}}
{{- define "arena-source.temporalTlsMount" -}}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.secretName }}
- {name: temporal-tls, mountPath: {{ include "arena-source.temporalTlsDir" . }}, readOnly: true}
{{- end }}
{{- if .Values.temporal.apiKey.secretName }}
- {name: temporal-api-key, mountPath: {{ include "arena-source.temporalApiKeyDir" . }}, readOnly: true}
{{- end }}
{{- end }}
{{- define "arena-source.temporalTlsVolume" -}}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.secretName }}
- name: temporal-tls
  secret: {secretName: {{ .Values.temporal.tls.secretName | quote }}}
{{- end }}
{{- if .Values.temporal.apiKey.secretName }}
- name: temporal-api-key
  secret: {secretName: {{ .Values.temporal.apiKey.secretName | quote }}, items: [{key: {{ .Values.temporal.apiKey.key | quote }}, path: {{ .Values.temporal.apiKey.key | quote }}}]}
{{- end }}
{{- end }}

{{/* The S3 credentials Secret as an envFrom entry, and the SDK's env, for workers and the artifact server. */}}
{{- define "arena-source.s3EnvFrom" -}}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.credentialsSecret }}
- secretRef: {name: {{ .Values.storage.s3.credentialsSecret | quote }}}
{{- end }}
{{- end }}
{{- define "arena-source.s3Env" -}}
{{- if eq .Values.storage.type "s3" }}
- {name: AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED, value: "true"}
{{- end }}
{{- end }}

{{/*
Pod-level settings shared by the components: (dict "root" $ "c" .Values.worker "component" "worker").
Renders from `securityContext:` on, at the pod spec's indentation (4 spaces under template.spec).
*/}}
{{- define "arena-source.podCommon" -}}
{{- $root := .root }}
{{- $c := .c -}}
securityContext:
  {{- toYaml (merge (deepCopy $c.podSecurityContext) $root.Values.podSecurityContext) | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if not (kindIs "invalid" $c.terminationGracePeriodSeconds) }}
terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $c.topologySpreadConstraints }}
{{- $selector := dict "labelSelector" (dict "matchLabels" (include "arena-source.selectorLabels" (dict "root" $root "component" .component) | fromYaml)) }}
{{- $constraints := list }}
{{- range $c.topologySpreadConstraints }}
{{- $constraints = append $constraints (merge (deepCopy .) $selector) }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template metadata: (dict "root" $ "c" .Values.worker "component" "worker"). */}}
{{- define "arena-source.podMetadata" -}}
labels:
  {{- include "arena-source.selectorLabels" (dict "root" .root "component" .component) | nindent 2 }}
  {{- with .c.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  # Roll the pods when the configuration changes.
  checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
  {{- with .c.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Values that cannot work together fail the render with a message rather than a broken install. */}}
{{- define "arena-source.validate" -}}
{{- if not (has .Values.storage.type (list "fs" "s3")) }}
{{- fail (printf "storage.type must be fs or s3 (got %q)" .Values.storage.type) }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") (not .Values.storage.s3.bucket) }}
{{- fail "storage.type s3 needs storage.s3.bucket" }}
{{- end }}
{{- if .Values.contentVolume.enabled }}
{{- $nfs := and .Values.contentVolume.nfs.server .Values.contentVolume.nfs.path }}
{{- if and .Values.contentVolume.existingClaim $nfs }}
{{- fail "contentVolume: set either existingClaim or nfs.server and nfs.path, not both" }}
{{- end }}
{{- if not (or .Values.contentVolume.existingClaim $nfs) }}
{{- fail "contentVolume.enabled needs contentVolume.existingClaim, or contentVolume.nfs.server and contentVolume.nfs.path" }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled" }}
{{- end }}
{{- end }}

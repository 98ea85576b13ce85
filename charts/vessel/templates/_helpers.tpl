{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "vessel.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: the release name, with the chart name appended unless the
release name already contains it. Truncated so "-provisioner" still fits a DNS label.
*/}}
{{- define "vessel.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "vessel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels every object carries.
*/}}
{{- define "vessel.labels" -}}
helm.sh/chart: {{ include "vessel.chart" . }}
{{ include "vessel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vessel
{{- end -}}

{{/*
Labels that select the release's pods.
*/}}
{{- define "vessel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vessel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of one component's objects. Call with (dict "root" $ "component" "gateway").
*/}}
{{- define "vessel.componentLabels" -}}
{{ include "vessel.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Labels that select one component's pods. Call with (dict "root" $ "component" "gateway").
*/}}
{{- define "vessel.componentSelector" -}}
{{ include "vessel.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Name of a component's objects (Deployment, ServiceAccount, ...). Call with the same dict.
*/}}
{{- define "vessel.componentName" -}}
{{- printf "%s-%s" (include "vessel.fullname" .root) .component -}}
{{- end -}}

{{/*
The image, defaulting the tag to the chart's appVersion.
*/}}
{{- define "vessel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The port the gateway listens on inside its pod (gRPC, with the standard health service).
*/}}
{{- define "vessel.gatewayPort" -}}
50051
{{- end -}}

{{/*
Where the configuration and the in-cluster kubeconfig are mounted.
*/}}
{{- define "vessel.configDir" -}}
/etc/vessel/config
{{- end -}}
{{- define "vessel.kubeconfigDir" -}}
/etc/vessel/kube
{{- end -}}
{{- define "vessel.natsCredentialsDir" -}}
/etc/vessel/nats
{{- end -}}

{{/*
The NATS port, from nats.url (the first server of a comma-separated list); 4222 if none.
*/}}
{{- define "vessel.natsPort" -}}
{{- $server := first (splitList "," .Values.nats.url) | trim -}}
{{- $hostport := regexReplaceAll "^[a-z]+://([^@/]*@)?([^/]*).*$" $server "${2}" -}}
{{- $port := regexFind ":[0-9]+$" $hostport | trimPrefix ":" -}}
{{- default "4222" $port -}}
{{- end -}}

{{/*
The OTLP collector's port, from otlpEndpoint (the schema requires one).
*/}}
{{- define "vessel.otlpPort" -}}
{{- regexFind ":[0-9]+/?$" .Values.otlpEndpoint | trimPrefix ":" | trimSuffix "/" -}}
{{- end -}}

{{/*
The S3 port, from s3.endpoint; 443 or 80 by s3.secure if it names none.
*/}}
{{- define "vessel.s3Port" -}}
{{- $port := regexFind ":[0-9]+$" .Values.s3.endpoint | trimPrefix ":" -}}
{{- default (ternary "443" "80" .Values.s3.secure) $port -}}
{{- end -}}

{{/*
Whether the ServiceMonitor (and the metrics Service and ports) are rendered.
*/}}
{{- define "vessel.serviceMonitorOn" -}}
{{- if and .Values.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}
true
{{- end -}}
{{- end -}}

{{/*
Pod security context of the unprivileged services (Pod Security Standard "restricted").
*/}}
{{- define "vessel.restrictedPodSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container security context of the unprivileged services.
*/}}
{{- define "vessel.restrictedContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
Environment of a service container. Call with (dict "root" $ "component" NAME "s3" BOOL
"sealing" BOOL): the configuration file, the OTLP collector if set, the bucket keys if the
service opens buckets, the repository password if it also seals or opens what is in them
(mover, protection; the gateway only lists), the NATS credentials path if a Secret is set.
*/}}
{{- define "vessel.env" -}}
{{- $v := .root.Values -}}
- name: VESSEL_CONFIG
  value: {{ include "vessel.configDir" .root }}/vessel.yaml
{{- with $v.otlpEndpoint }}
- name: VESSEL_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if include "vessel.serviceMonitorOn" .root }}
- name: VESSEL_METRICS_LISTEN
  value: "0.0.0.0:{{ $v.serviceMonitor.port }}"
{{- end }}
{{- if and .s3 $v.s3.existingSecret }}
- name: VESSEL_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.s3.existingSecret }}
      key: {{ $v.s3.accessKeyKey }}
- name: VESSEL_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.s3.existingSecret }}
      key: {{ $v.s3.secretKeyKey }}
{{- if and .sealing (eq $v.s3.keyProvider "password") }}
- name: VESSEL_REPOSITORY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.s3.existingSecret }}
      key: {{ $v.s3.repositoryPasswordKey }}
{{- end }}
{{- end }}
{{- if and .sealing (eq $v.s3.keyProvider "awsKms") $v.s3.awsKms.credentialsSecret }}
{{- range list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $v.s3.awsKms.credentialsSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- if get $v.nats.credentialsSecret .component }}
- name: VESSEL_NATS_CREDENTIALS
  value: {{ include "vessel.natsCredentialsDir" .root }}/{{ $v.nats.credentialsKey }}
{{- end }}
{{- end -}}

{{/*
Volume mounts of a service container: configuration, kubeconfig (if "kube"), NATS
credentials (if set for the component), /tmp.
*/}}
{{- define "vessel.volumeMounts" -}}
- name: config
  mountPath: {{ include "vessel.configDir" .root }}
  readOnly: true
{{- if .kube }}
- name: kubeconfig
  mountPath: {{ include "vessel.kubeconfigDir" .root }}
  readOnly: true
{{- end }}
{{- if get .root.Values.nats.credentialsSecret .component }}
- name: nats-credentials
  mountPath: {{ include "vessel.natsCredentialsDir" .root }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
The volumes behind vessel.volumeMounts.
*/}}
{{- define "vessel.volumes" -}}
- name: config
  configMap:
    name: {{ include "vessel.fullname" .root }}-config
{{- if .kube }}
- name: kubeconfig
  configMap:
    name: {{ include "vessel.fullname" .root }}-kubeconfig
{{- end }}
{{- with get .root.Values.nats.credentialsSecret .component }}
- name: nats-credentials
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/*
Metrics container port, when the ServiceMonitor is rendered.
*/}}
{{- define "vessel.metricsPort" -}}
{{- if include "vessel.serviceMonitorOn" . }}
- name: metrics
  containerPort: {{ .Values.serviceMonitor.port }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/*
Pod annotations every Vessel pod carries: a restart when the configuration changes.
*/}}
{{- define "vessel.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/*
Scheduling fields shared by the pods. Call with (dict "root" $ "values" COMPONENT_VALUES).
*/}}
{{- define "vessel.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The services this release runs, by mode: all-in-one (this cluster, managed by a hub in
the same release), hub (gateway, protection and the hub's discovery; no cluster of its
own) or agent (this cluster's own agent and node agents, reporting to a hub over NATS).
*/}}
{{- define "vessel.components" -}}
{{- if eq .Values.mode "hub" -}}
gateway discovery protection
{{- else if eq .Values.mode "agent" -}}
discovery provisioner mover
{{- else -}}
gateway discovery protection provisioner mover
{{- end -}}
{{- end -}}

{{/* "true" when the release runs `.component` (call with dict "root" $ "component" NAME). */}}
{{- define "vessel.runs" -}}
{{- if has .component (splitList " " (include "vessel.components" .root)) -}}true{{- end -}}
{{- end -}}

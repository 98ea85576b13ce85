{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "vessel.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: the release name, with the chart name appended unless the
release name already contains it.
*/}}
{{- define "vessel.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
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
{{- end -}}

{{/*
Labels that select the release's pods.
*/}}
{{- define "vessel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vessel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
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

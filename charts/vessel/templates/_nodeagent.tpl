{{/*
Host paths of the volume backends, mounted at the same path (the provisioner writes that
path into each PV). Call with (dict "root" $ "propagation" MODE).
*/}}
{{- define "vessel.backendMounts" -}}
{{- range $i, $b := .root.Values.nodeAgents.backends }}
- name: backend-{{ $i }}
  mountPath: {{ $b.path }}
  mountPropagation: {{ $.propagation }}
{{- end }}
{{- end -}}

{{- define "vessel.backendVolumes" -}}
{{- range $i, $b := .Values.nodeAgents.backends }}
- name: backend-{{ $i }}
  hostPath:
    path: {{ $b.path }}
    # btrfs: the filesystem must already be mounted there; dir: created if missing.
    type: {{ ternary "Directory" "DirectoryOrCreate" (eq $b.type "btrfs") }}
{{- end }}
{{- end -}}

{{/*
Pod spec fields both node agents share: placement on the storage nodes.
*/}}
{{- define "vessel.nodeAgentScheduling" -}}
{{- $values := deepCopy .Values.nodeAgents -}}
{{- with .Values.nodeAgents.storageNodeLabel -}}
{{- $_ := set $values "nodeSelector" (merge (dict . "true") $values.nodeSelector) -}}
{{- end -}}
{{- include "vessel.scheduling" (dict "root" . "values" $values) }}
{{- with .Values.nodeAgents.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

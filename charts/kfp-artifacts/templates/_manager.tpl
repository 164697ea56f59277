{{/* The namespaces of `dedicated.namespaces`, comma-separated: the manager leaves them to the chart. */}}
{{- define "kfp-artifacts.staticDedicatedNamespaces" -}}
{{- $names := list -}}
{{- range .Values.dedicated.namespaces -}}
{{- $names = append $names (kindIs "string" . | ternary . (and (kindIs "map" .) .name)) -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/*
The shared server's environment for the filesystem-storage config endpoint: the chart's dedicated servers as
`namespace=endpoint` pairs, and the manager's status ConfigMap when the manager runs.
*/}}
{{- define "kfp-artifacts.filesystemStorageEnv" -}}
{{- $fullname := include "kfp-artifacts.fullname" . -}}
{{- $pairs := list -}}
{{- range splitList "," (include "kfp-artifacts.staticDedicatedNamespaces" .) -}}
{{- if . -}}
{{- $pairs = append $pairs (printf "%s=http://%s-%s.%s.svc:%d" . $fullname . . (int $.Values.service.port)) -}}
{{- end -}}
{{- end -}}
- name: DEDICATED_SERVERS
  value: {{ join "," $pairs | quote }}
- name: DEDICATED_STATUS_CONFIGMAP
  value: {{ ternary (printf "%s/%s-manager-status" (include "kfp-artifacts.namespace" .) $fullname) "" (and .Values.manager.enabled true) | quote }}
{{- end -}}

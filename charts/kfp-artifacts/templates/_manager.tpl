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

{{/*
`manager.namespaceSelector` in the string form of a label selector, what the manager hands the API server:
a string as it is, `matchLabels` and `matchExpressions` written out (the schema has checked them).
*/}}
{{- define "kfp-artifacts.managerNamespaceSelector" -}}
{{- $selector := .Values.manager.namespaceSelector -}}
{{- if kindIs "string" $selector -}}
{{- $selector -}}
{{- else -}}
{{- $requirements := list -}}
{{- range $key, $value := $selector.matchLabels -}}
{{- $requirements = append $requirements (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- range $selector.matchExpressions -}}
{{- if eq .operator "In" -}}
{{- $requirements = append $requirements (printf "%s in (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "NotIn" -}}
{{- $requirements = append $requirements (printf "%s notin (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "Exists" -}}
{{- $requirements = append $requirements .key -}}
{{- else -}}
{{- $requirements = append $requirements (printf "!%s" .key) -}}
{{- end -}}
{{- end -}}
{{- join "," $requirements -}}
{{- end -}}
{{- end -}}

{{/*
Pieces of a server's pod that every server workload shares (the shared Deployment, the node-local
DaemonSet, the chart's and the manager's dedicated Deployments all render "kfp-artifacts.workload").
*/}}

{{/* Whether the server pods mount their ServiceAccount token: by default exactly when authentication needs it. */}}
{{- define "kfp-artifacts.automountServiceAccountToken" -}}
{{- if kindIs "invalid" .Values.automountServiceAccountToken -}}
{{- eq .Values.auth.mode "kubernetes" -}}
{{- else -}}
{{- .Values.automountServiceAccountToken -}}
{{- end -}}
{{- end -}}

{{/* `imagePullSecrets:` of a pod, global ones first, each name once; nothing when there are none. */}}
{{- define "kfp-artifacts.imagePullSecrets" -}}
{{- $secrets := uniq (concat (default (list) .Values.global.imagePullSecrets) (default (list) .Values.imagePullSecrets)) -}}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The environment the chart gives a server's container. `.` is the server merged with Values, Release and Chart. */}}
{{- define "kfp-artifacts.chartEnv" -}}
- name: PORT
  value: "8080"
- name: ARTIFACTS_ROOT
  value: /artifacts
- name: AUTH_MODE
  value: {{ .Values.auth.mode | quote }}
- name: AUTH_AUDIENCES
  value: {{ join "," .Values.auth.audiences | quote }}
- name: AUTH_TRUSTED_USER_HEADER
  value: {{ .Values.auth.trustedUserHeader | quote }}
- name: AUTH_TRUSTED_USER_PREFIX
  value: {{ .Values.auth.trustedUserPrefix | quote }}
- name: AUTH_CACHE_TTL_SECONDS
  value: {{ int .Values.auth.cacheTtlSeconds | toString | quote }}
- name: AUTH_CACHE_MAX_ENTRIES
  value: {{ int .Values.auth.cacheMaxEntries | toString | quote }}
- name: AUTH_READY_WINDOW_SECONDS
  value: {{ int .Values.auth.readyWindowSeconds | toString | quote }}
{{- /* A dedicated server serves only the namespace it runs in. */}}
- name: SCOPE_NAMESPACE
  {{- if .scoped }}
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
  {{- else }}
  value: ""
  {{- end }}
- name: MAX_UPLOAD_BYTES
  value: {{ include "kfp-artifacts.byteSize" .Values.limits.maxUploadBytes | quote }}
- name: MAX_ARCHIVE_EXPANDED_BYTES
  value: {{ include "kfp-artifacts.byteSize" .Values.limits.maxArchiveExpandedBytes | quote }}
- name: MIN_FREE_BYTES
  value: {{ include "kfp-artifacts.byteSize" .Values.limits.minFreeBytes | quote }}
- name: NAMESPACE_QUOTA_BYTES
  value: {{ include "kfp-artifacts.byteSize" .Values.limits.namespaceQuotaBytes | quote }}
- name: IDLE_TIMEOUT_SECONDS
  value: {{ int .Values.limits.idleTimeoutSeconds | toString | quote }}
- name: FSYNC
  value: {{ .Values.persistence.fsync | toString | quote }}
- name: SERVER_PROCESSES
  value: {{ int .Values.processes | toString | quote }}
{{ include "kfp-artifacts.retentionEnv" (dict "root" . "server" .) }}
- name: SHUTDOWN_DELAY_SECONDS
  value: {{ .Values.shutdownDelaySeconds | toString | quote }}
- name: SHUTDOWN_GRACE_SECONDS
  value: {{ .Values.shutdownGraceSeconds | toString | quote }}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{ include "kfp-artifacts.s3Env" (dict "root" . "server" .) }}
{{- if not .scoped }}
{{ include "kfp-artifacts.filesystemStorageEnv" . }}
{{- end }}
{{- end -}}

{{/*
The server container's `env`: the chart's entries, each replaced by the `extraEnv` entry of the same name
(Kubernetes would keep the last of two silently, and `kubectl apply` warns), then the other `extraEnv`
entries in their order (the last of two with one name wins).
*/}}
{{- define "kfp-artifacts.containerEnv" -}}
{{- $chartEnv := include "kfp-artifacts.chartEnv" . | fromYamlArray -}}
{{- $extra := dict -}}
{{- $extraNames := list -}}
{{- range .Values.extraEnv -}}
{{- $extraNames = append $extraNames .name -}}
{{- $_ := set $extra .name . -}}
{{- end -}}
{{- $chartNames := dict -}}
{{- $env := list -}}
{{- range $chartEnv -}}
{{- $_ := set $chartNames .name true -}}
{{- $env = append $env (ternary (get $extra .name) . (hasKey $extra .name)) -}}
{{- end -}}
{{- range uniq $extraNames -}}
{{- if not (hasKey $chartNames .) -}}
{{- $env = append $env (get $extra .) -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

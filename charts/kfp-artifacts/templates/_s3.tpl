{{/*
The S3-compatible endpoint. Every name derives from the chart's full name, except the Secret, bucket
and Service names Kubeflow Pipelines itself looks for (values, or the alias list below).
*/}}

{{/* The Kubernetes user the static key acts as: a virtual name that no token can carry (a colon-separated
name outside `system:`). */}}
{{- define "kfp-artifacts.s3SystemKeyUser" -}}
{{- default (printf "%s:s3-system-key" (include "kfp-artifacts.fullname" .)) .Values.s3.systemKeyUser -}}
{{- end -}}

{{/* ClusterRole and ClusterRoleBinding granting the static key's user the artifact verbs everywhere. */}}
{{- define "kfp-artifacts.s3SystemRoleName" -}}
{{- printf "%s-s3-system-key" (include "kfp-artifacts.fullname" .) -}}
{{- end -}}

{{/* The Secret a dedicated server reads in its own namespace, and the shared one when existingSecret is empty. */}}
{{- define "kfp-artifacts.s3GeneratedSecretName" -}}
{{- printf "%s-s3" (include "kfp-artifacts.fullname" .) -}}
{{- end -}}

{{/* The Secret with the static key pair in the shared server's (install) namespace. */}}
{{- define "kfp-artifacts.s3SecretName" -}}
{{- default (include "kfp-artifacts.s3GeneratedSecretName" .) .Values.s3.credentials.existingSecret -}}
{{- end -}}

{{/*
Alias Services in front of the shared server, under the names KFP's defaults use, as JSON
{"aliases": [{name, ports: [{name, port}]}]}. Port names follow Kubeflow's SeaweedFS Service.
*/}}
{{- define "kfp-artifacts.s3Aliases" -}}
{{- $aliases := list -}}
{{- if .Values.s3.aliases.seaweedfs -}}
{{- $aliases = append $aliases (dict "name" "seaweedfs" "ports" (list
  (dict "name" "http-s3-compat" "port" 9000)
  (dict "name" "http-s3" "port" 8333)
  (dict "name" "http-iam" "port" 8111)
)) -}}
{{- end -}}
{{- if .Values.s3.aliases.minioService -}}
{{- $aliases = append $aliases (dict "name" "minio-service" "ports" (list (dict "name" "http-s3" "port" 9000))) -}}
{{- end -}}
{{- dict "aliases" $aliases | toJson -}}
{{- end -}}

{{/*
The S3 environment of one server's container. Call with (dict "root" $ "server" <server>). A dedicated
server can only read Secrets of its own namespace: it reads `<fullname>-s3` there (the chart writes it when
it generates the pair), so that it verifies the same keys as the shared server.
*/}}
{{- define "kfp-artifacts.s3Env" -}}
{{- $s3 := .root.Values.s3 -}}
- name: S3_ENABLED
  value: {{ $s3.enabled | toString | quote }}
{{- if $s3.enabled }}
{{- $secret := ternary (include "kfp-artifacts.s3GeneratedSecretName" .root) (include "kfp-artifacts.s3SecretName" .root) .server.scoped }}
- name: S3_PORT
  value: {{ $s3.port | int | toString | quote }}
- name: S3_KUBEFLOW_BUCKET
  value: {{ $s3.kubeflowBucket | quote }}
- name: S3_SYSTEM_NAMESPACE
  value: {{ $s3.systemNamespace | quote }}
- name: S3_REGION
  value: {{ $s3.region | quote }}
# Optional: without the Secret the server starts with no static key (and no namespace keys).
- name: S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $s3.credentials.accessKeyKey }}
      optional: true
- name: S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $s3.credentials.secretKeyKey }}
      optional: true
- name: S3_ACCESS_KEY_USER
  value: {{ include "kfp-artifacts.s3SystemKeyUser" .root | quote }}
{{- if $s3.masterKey.existingSecret }}
- name: S3_MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ ternary $secret $s3.masterKey.existingSecret .server.scoped }}
      key: {{ $s3.masterKey.key }}
{{- end }}
- name: S3_NAMESPACE_SERVICE_ACCOUNT
  value: {{ $s3.namespaceServiceAccount | quote }}
- name: S3_MULTIPART_EXPIRY_HOURS
  value: {{ int $s3.multipartExpiryHours | toString | quote }}
{{- end }}
{{- end -}}

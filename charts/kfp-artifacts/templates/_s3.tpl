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

{{/* The Secret with the static key pair the chart generates when existingSecret is empty. */}}
{{- define "kfp-artifacts.s3GeneratedSecretName" -}}
{{- printf "%s-s3" (include "kfp-artifacts.fullname" .) -}}
{{- end -}}

{{/*
The Secret a dedicated server reads in its own namespace: that namespace's key pair alone (keys `accesskey`,
`secretkey`, the layout of `mlpipeline-minio-artifact`), which the manager writes from the master key.
Nothing in it lets anyone derive another namespace's key.
*/}}
{{- define "kfp-artifacts.s3NamespaceKeySecretName" -}}
{{- printf "%s-s3-namespace-key" (include "kfp-artifacts.fullname" .) -}}
{{- end -}}

{{/*
The manager's copy of the master key the shared server derives namespace keys from: `s3.masterKey`, else the
static secret key (as the server does). Both live in the release's namespace, where the manager runs.
*/}}
{{- define "kfp-artifacts.s3MasterKeyEnv" -}}
{{- $s3 := .Values.s3 -}}
- name: S3_MASTER_KEY
  valueFrom:
    secretKeyRef:
{{- if $s3.masterKey.existingSecret }}
      name: {{ $s3.masterKey.existingSecret }}
      key: {{ $s3.masterKey.key }}
{{- else }}
      name: {{ include "kfp-artifacts.s3SecretName" . }}
      key: {{ $s3.credentials.secretKeyKey }}
      optional: true
{{- end }}
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
The S3 environment of one server's container. Call with (dict "root" $ "server" <server>). The shared server
holds the static pair and the master key. A dedicated server holds its own namespace's pair only
(`kfp-artifacts.s3NamespaceKeySecretName` in its namespace): a tenant who may read Secrets there must not
find anything from which another namespace's key follows.
*/}}
{{- define "kfp-artifacts.s3Env" -}}
{{- $s3 := .root.Values.s3 -}}
- name: S3_ENABLED
  value: {{ $s3.enabled | toString | quote }}
{{- if $s3.enabled }}
- name: S3_PORT
  value: {{ $s3.port | int | toString | quote }}
- name: S3_KUBEFLOW_BUCKET
  value: {{ $s3.kubeflowBucket | quote }}
- name: S3_SYSTEM_NAMESPACE
  value: {{ $s3.systemNamespace | quote }}
- name: S3_REGION
  value: {{ $s3.region | quote }}
{{- if .server.scoped }}
{{- $secret := include "kfp-artifacts.s3NamespaceKeySecretName" .root }}
# Optional: until the manager (or the operator) writes the Secret, the server verifies no key.
- name: S3_NAMESPACE_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: accesskey
      optional: true
- name: S3_NAMESPACE_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: secretkey
      optional: true
{{- else }}
{{- $secret := include "kfp-artifacts.s3SecretName" .root }}
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
      name: {{ $s3.masterKey.existingSecret }}
      key: {{ $s3.masterKey.key }}
{{- end }}
{{- end }}
- name: S3_NAMESPACE_SERVICE_ACCOUNT
  value: {{ $s3.namespaceServiceAccount | quote }}
- name: S3_MULTIPART_EXPIRY_HOURS
  value: {{ int $s3.multipartExpiryHours | toString | quote }}
{{- end }}
{{- end -}}

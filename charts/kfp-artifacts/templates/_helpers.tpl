{{/*
Names. Every object name derives from the chart name, nameOverride or fullnameOverride, so a vendor
rebrands the chart from Chart.yaml and values alone; no template hard-codes the product name.
*/}}
{{- define "kfp-artifacts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kfp-artifacts.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kfp-artifacts.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "kfp-artifacts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select one server's pods; stable across upgrades (selectors are immutable). */}}
{{- define "kfp-artifacts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kfp-artifacts.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of every object. Call with (dict "root" $ "component" "<component>"). */}}
{{- define "kfp-artifacts.labels" -}}
{{ include "kfp-artifacts.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ include "kfp-artifacts.name" .root }}
{{- if .root.Values.helmLabels }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "kfp-artifacts.chart" .root }}
{{- end }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kfp-artifacts.image" -}}
{{- $registry := default .Values.image.registry .Values.global.imageRegistry -}}
{{- $repository := .Values.image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry $repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* Name of the ClusterRole that lets servers create TokenReviews and SubjectAccessReviews. */}}
{{- define "kfp-artifacts.authRoleName" -}}
{{- printf "%s-auth" (include "kfp-artifacts.fullname" .) -}}
{{- end -}}

{{/* The header the Istio AuthorizationPolicy guards. */}}
{{- define "kfp-artifacts.guardedUserHeader" -}}
{{- default (default "kubeflow-userid" .Values.auth.trustedUserHeader) .Values.istio.authorizationPolicy.userHeader | lower -}}
{{- end -}}

{{/*
The servers this release runs, as JSON {"servers": [...]}: the shared one (when enabled) and one per
dedicated namespace. Each entry carries everything the per-server templates need, so they all agree
on names, namespaces and storage. Guards run here, once, before anything renders.
*/}}
{{- define "kfp-artifacts.servers" -}}
{{- include "kfp-artifacts.validate" . -}}
{{- $fullname := include "kfp-artifacts.fullname" . -}}
{{- $servers := list -}}
{{- $p := .Values.persistence -}}
{{- if .Values.shared.enabled -}}
{{- $kind := ternary "DaemonSet" "Deployment" (eq .Values.shared.workloadKind "daemonset") -}}
{{- $saName := default (ternary $fullname "default" .Values.serviceAccount.create) .Values.serviceAccount.name -}}
{{- $persistence := dict "existingClaim" $p.existingClaim "storageClassName" $p.storageClassName "size" $p.size "accessMode" $p.accessMode "hostPath" $p.hostPath "annotations" $p.annotations -}}
{{- $servers = append $servers (dict
  "id" "shared"
  "component" "server"
  "name" $fullname
  "namespace" (include "kfp-artifacts.namespace" .)
  "kind" $kind
  "replicas" (int .Values.shared.replicas)
  "scoped" false
  "serviceAccountName" $saName
  "persistence" $persistence
  "resources" .Values.resources
  "nodeSelector" .Values.nodeSelector
  "tolerations" .Values.tolerations
  "affinity" .Values.affinity
) -}}
{{- end -}}
{{- range .Values.dedicated.namespaces -}}
{{- $entry := . -}}
{{- if kindIs "string" . -}}{{- $entry = dict "name" . -}}{{- end -}}
{{- $persistence := dict "existingClaim" "" "storageClassName" $p.storageClassName "size" $p.size "accessMode" $p.accessMode "hostPath" "" "annotations" $p.annotations -}}
{{- $persistence = mergeOverwrite $persistence (deepCopy (default (dict) $entry.persistence)) -}}
{{- $name := printf "%s-%s" $fullname $entry.name -}}
{{- $servers = append $servers (dict
  "id" $entry.name
  "component" "dedicated-server"
  "name" $name
  "namespace" $entry.name
  "kind" "Deployment"
  "replicas" (int (default $.Values.dedicated.replicas $entry.replicas))
  "scoped" true
  "serviceAccountName" (ternary $name "default" $.Values.serviceAccount.create)
  "persistence" $persistence
  "resources" (default $.Values.resources $entry.resources)
  "nodeSelector" (ternary $entry.nodeSelector $.Values.nodeSelector (hasKey $entry "nodeSelector"))
  "tolerations" (ternary $entry.tolerations $.Values.tolerations (hasKey $entry "tolerations"))
  "affinity" (ternary $entry.affinity $.Values.affinity (hasKey $entry "affinity"))
) -}}
{{- end -}}
{{- dict "servers" $servers | toJson -}}
{{- end -}}

{{/* Whether a server's pods need a PVC that several pods can mount at once. */}}
{{- define "kfp-artifacts.sharedStorage" -}}
{{- if or .persistence.hostPath (eq .persistence.accessMode "ReadWriteMany") -}}true{{- end -}}
{{- end -}}

{{/* Whether a server gets a PodDisruptionBudget. */}}
{{- define "kfp-artifacts.pdbEnabled" -}}
{{- $setting := .root.Values.podDisruptionBudget.enabled -}}
{{- if and (eq .server.kind "Deployment") (or (eq (toString $setting) "true") (and (kindIs "invalid" $setting) (gt (int .server.replicas) 1))) -}}true{{- end -}}
{{- end -}}

{{/* Seconds a `lifecycle.preStop.sleep` hook waits before SIGTERM reaches the server (0 without one). */}}
{{- define "kfp-artifacts.preStopSleepSeconds" -}}
{{- $sleep := dig "preStop" "sleep" "seconds" 0 (default (dict) .Values.lifecycle) -}}
{{- int $sleep -}}
{{- end -}}

{{- define "kfp-artifacts.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add (int .Values.shutdownDelaySeconds) (int .Values.shutdownGraceSeconds) (int (include "kfp-artifacts.preStopSleepSeconds" .)) 10 -}}
{{- else -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
A byte size exactly as written: Helm reads a bare number in a values file as a float, which prints as
"1.073741824e+10"; the server accepts only digits with an optional unit.
*/}}
{{- define "kfp-artifacts.byteSize" -}}
{{- if kindIs "float64" . -}}
{{- printf "%.0f" . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
Guards: configurations that would install something broken fail `helm template`/`helm install` with
a message that names the fix. Included once, from "kfp-artifacts.servers".
*/}}
{{- define "kfp-artifacts.validate" -}}
{{- $p := .Values.persistence -}}
{{- $fullname := include "kfp-artifacts.fullname" . -}}
{{- if and (not .Values.shared.enabled) (empty .Values.dedicated.namespaces) -}}
{{- fail "nothing to install: set shared.enabled=true or list namespaces in dedicated.namespaces" -}}
{{- end -}}
{{- if .Values.shared.enabled -}}
{{- $rwo := and (not $p.hostPath) (ne $p.accessMode "ReadWriteMany") -}}
{{- if and $rwo (eq .Values.shared.workloadKind "daemonset") -}}
{{- fail (printf "shared.workloadKind=daemonset runs one pod per node, which cannot all mount a %s volume: set persistence.accessMode=ReadWriteMany (an RWX StorageClass such as NFS or CephFS) or persistence.hostPath (a path every node shares)" $p.accessMode) -}}
{{- end -}}
{{- if and $rwo (eq .Values.shared.workloadKind "deployment") (gt (int .Values.shared.replicas) 1) -}}
{{- fail (printf "shared.replicas=%d cannot share a %s volume: set persistence.accessMode=ReadWriteMany (or persistence.hostPath), or shared.replicas=1" (int .Values.shared.replicas) $p.accessMode) -}}
{{- end -}}
{{- if and $p.existingClaim $p.hostPath -}}
{{- fail "persistence.existingClaim and persistence.hostPath are both set: choose one volume for the shared server" -}}
{{- end -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.dedicated.namespaces -}}
{{- $entry := . -}}
{{- if kindIs "string" . -}}{{- $entry = dict "name" . -}}{{- end -}}
{{- if hasKey $seen $entry.name -}}
{{- fail (printf "dedicated.namespaces lists %q twice: each namespace gets one dedicated server" $entry.name) -}}
{{- end -}}
{{- $_ := set $seen $entry.name true -}}
{{- $name := printf "%s-%s" $fullname $entry.name -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "the dedicated server name %q is longer than 63 characters: shorten the namespace name or set fullnameOverride" $name) -}}
{{- end -}}
{{- $accessMode := $p.accessMode -}}
{{- if and $entry.persistence $entry.persistence.accessMode -}}{{- $accessMode = $entry.persistence.accessMode -}}{{- end -}}
{{- $replicas := int (default $.Values.dedicated.replicas $entry.replicas) -}}
{{- if and (gt $replicas 1) (ne $accessMode "ReadWriteMany") -}}
{{- fail (printf "dedicated server %q has %d replicas on a %s volume: set its persistence.accessMode=ReadWriteMany or replicas=1" $entry.name $replicas $accessMode) -}}
{{- end -}}
{{- end -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownGraceSeconds) -}}
{{- fail (printf "terminationGracePeriodSeconds=%d must exceed shutdownGraceSeconds=%d, or Kubernetes kills transfers the server is still finishing: raise it or leave it empty (shutdownGraceSeconds + 10)" (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownGraceSeconds)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.kfpLauncherConfig.enabled (empty .Values.dedicated.namespaces) -}}
{{- fail "kfpLauncherConfig.enabled writes kfp-launcher ConfigMaps into dedicated namespaces, but dedicated.namespaces is empty" -}}
{{- end -}}
{{- end -}}

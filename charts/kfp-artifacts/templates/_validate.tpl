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
{{- $preStop := int (include "kfp-artifacts.preStopSleepSeconds" .) -}}
{{- $shutdown := add (int .Values.shutdownDelaySeconds) (int .Values.shutdownGraceSeconds) $preStop -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $shutdown) -}}
{{- fail (printf "terminationGracePeriodSeconds=%d must exceed %sshutdownDelaySeconds + shutdownGraceSeconds = %d, or Kubernetes kills transfers the server is still finishing: raise it or leave it empty (their sum + 10)" (int .Values.terminationGracePeriodSeconds) (ternary "lifecycle.preStop.sleep.seconds + " "" (gt $preStop 0)) (int $shutdown)) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.auth.mode "kubernetes") (eq (toString .Values.automountServiceAccountToken) "false") -}}
{{- fail "automountServiceAccountToken=false with auth.mode=kubernetes: the server authenticates its TokenReviews and SubjectAccessReviews with its ServiceAccount token and would refuse every request; leave it empty (mounted exactly when needed)" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled -}}
{{- fail "serviceMonitor.enabled and podMonitor.enabled would scrape every server twice: choose one" -}}
{{- end -}}
{{- if and .Values.kfpLauncherConfig.enabled (empty .Values.dedicated.namespaces) -}}
{{- fail "kfpLauncherConfig.enabled writes kfp-launcher ConfigMaps into dedicated namespaces, but dedicated.namespaces is empty" -}}
{{- end -}}
{{- include "kfp-artifacts.validateS3" . -}}
{{- end -}}

{{- define "kfp-artifacts.validateS3" -}}
{{- $s3 := .Values.s3 -}}
{{- $aliases := or $s3.aliases.seaweedfs $s3.aliases.minioService -}}
{{- if and $aliases (not $s3.enabled) -}}
{{- fail "s3.aliases point Services at the S3 API, but s3.enabled is false: enable it or turn the aliases off" -}}
{{- end -}}
{{- if $s3.enabled -}}
{{- if eq (int $s3.port) 8080 -}}
{{- fail "s3.port=8080 is the native API's port: choose another (9000 is where KFP looks)" -}}
{{- end -}}
{{- if and (not $s3.credentials.existingSecret) (not $s3.credentials.generate) -}}
{{- fail "s3.credentials.existingSecret is empty: name the Secret with the S3 key pair (Kubeflow's is mlpipeline-minio-artifact) or set s3.credentials.generate=true" -}}
{{- end -}}
{{- if $aliases -}}
{{- if not .Values.shared.enabled -}}
{{- fail "s3.aliases front the shared server, but shared.enabled is false" -}}
{{- end -}}
{{- $namespace := include "kfp-artifacts.namespace" . -}}
{{- if ne $namespace $s3.systemNamespace -}}
{{- fail (printf "s3.aliases must live in s3.systemNamespace (%s), where KFP looks for them, but a Service only reaches pods of its own namespace and the shared server runs in %s: install the release in %s (or set namespaceOverride=%s)" $s3.systemNamespace $namespace $s3.systemNamespace $s3.systemNamespace) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

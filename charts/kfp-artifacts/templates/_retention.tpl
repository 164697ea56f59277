{{/*
Retention: the environment every server reads its policy from, and the helpers of the alert rules.
*/}}

{{/*
The retention environment of one server's container. Call with (dict "root" $ "server" <server>). Overrides
are `namespace=days` and `namespace/prefix=days` lists in key order. A dedicated server serves its own
namespace only, so it gets the overrides of that namespace only.
*/}}
{{- define "kfp-artifacts.retentionEnv" -}}
{{- $retention := .root.Values.retention -}}
{{- $namespaceDays := list -}}
{{- range $namespace, $days := $retention.namespaceDays -}}
{{- if or (not $.server.scoped) (eq $namespace $.server.namespace) -}}
{{- $namespaceDays = append $namespaceDays (printf "%s=%d" $namespace (int $days)) -}}
{{- end -}}
{{- end -}}
{{- $prefixDays := list -}}
{{- range $target, $days := $retention.prefixDays -}}
{{- if or (not $.server.scoped) (hasPrefix (printf "%s/" $.server.namespace) $target) -}}
{{- $prefixDays = append $prefixDays (printf "%s=%d" $target (int $days)) -}}
{{- end -}}
{{- end -}}
- name: RETENTION_DAYS
  value: {{ int $retention.days | toString | quote }}
- name: RETENTION_NAMESPACE_DAYS
  value: {{ join "," $namespaceDays | quote }}
- name: RETENTION_PREFIX_DAYS
  value: {{ join "," $prefixDays | quote }}
- name: RETENTION_SWEEP_INTERVAL_SECONDS
  value: {{ int $retention.sweepIntervalSeconds | toString | quote }}
- name: ORPHAN_SWEEP_INTERVAL_SECONDS
  value: {{ int $retention.orphanSweepIntervalSeconds | toString | quote }}
- name: RETENTION_DRY_RUN
  value: {{ $retention.dryRun | toString | quote }}
{{- end -}}

{{/*
A byte size (digits with an optional unit, as the server reads MIN_FREE_BYTES) as a plain number of bytes,
for PromQL, which has no units.
*/}}
{{- define "kfp-artifacts.bytes" -}}
{{- $text := include "kfp-artifacts.byteSize" . -}}
{{- $digits := regexFind "^[0-9]+" $text -}}
{{- $unit := lower (trimPrefix $digits $text) -}}
{{- $multipliers := dict "" 1 "k" 1000 "m" 1000000 "g" 1000000000 "t" 1000000000000 "ki" 1024 "mi" 1048576 "gi" 1073741824 "ti" 1099511627776 -}}
{{- if not (hasKey $multipliers $unit) -}}
{{- fail (printf "%q is not a byte size (examples: 1048576, 512Mi, 10Gi)" $text) -}}
{{- end -}}
{{- mul (int64 $digits) (get $multipliers $unit) -}}
{{- end -}}

{{/*
The PromQL label matcher selecting this release's servers as its ServiceMonitors scrape them: the shared
server's Service is named <fullname>, every dedicated server's (the chart's and the manager's) <fullname>-<namespace>.
*/}}
{{- define "kfp-artifacts.serverSelector" -}}
{{- $fullname := regexQuoteMeta (include "kfp-artifacts.fullname" .) -}}
service=~{{ printf "%s|%s-.+" $fullname $fullname | quote }}
{{- end -}}

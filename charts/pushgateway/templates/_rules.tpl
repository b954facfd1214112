{{/*
The alerting rules, as the groups of a Prometheus rules file. templates/prometheusrule.yaml
puts them into a PrometheusRule; files/pushgateway.rules.yaml is this output for the default
values (release "pushgateway" in namespace "monitoring"), written by ci/chart/rules_file.py and
checked by ci/chart/test_alerts.py, so the rules have one definition.
Text inside {{` `}} is Prometheus' own alert template, passed through unchanged.
*/}}

{{/* pushgateway.rules.seconds: a duration such as 1h30m in seconds. */}}
{{- define "pushgateway.rules.seconds" -}}
{{- $units := dict "w" 604800 "d" 86400 "h" 3600 "m" 60 "s" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+[wdhms]" (toString .) -1 }}
{{- $total = add $total (mul (regexFind "[0-9]+" . | atoi) (get $units (regexFind "[wdhms]" .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/* pushgateway.rules.matchers: PromQL matchers in braces from a list of matcher strings (empty ones skipped); "" when none. */}}
{{- define "pushgateway.rules.matchers" -}}
{{- $parts := list }}
{{- range . }}{{ if . }}{{ $parts = append $parts . }}{{ end }}{{ end }}
{{- if $parts }}{{ printf "{%s}" (join ", " $parts) }}{{ end }}
{{- end }}

{{/* pushgateway.rules.gatewaySelector: the matchers of the gateway's own series (the job its ServiceMonitor gives them by default). */}}
{{- define "pushgateway.rules.gatewaySelector" -}}
{{- if .Values.prometheusRule.gatewaySelector }}
{{- .Values.prometheusRule.gatewaySelector }}
{{- else }}
{{- $job := include "pushgateway.fullname" . }}
{{- with .Values.serviceMonitor.jobLabel }}
{{- $labels := merge (dict) $.Values.service.labels (fromYaml (include "pushgateway.labels" $)) }}
{{- $job = get $labels . | default $job }}
{{- end }}
{{- printf "job=%q" $job }}
{{- end }}
{{- end }}

{{/* pushgateway.rules.containerSelector: the matchers of the gateway containers in cAdvisor and kube-state-metrics series. */}}
{{- define "pushgateway.rules.containerSelector" -}}
{{- if .Values.prometheusRule.containerSelector }}
{{- .Values.prometheusRule.containerSelector }}
{{- else }}
{{- $pods := printf "%s-([0-9]+|[a-z0-9]+-[a-z0-9]+)" (include "pushgateway.fullname" .) }}
{{- printf "namespace=%q, pod=~%q, container=\"pushgateway\"" (include "pushgateway.namespace" .) $pods }}
{{- end }}
{{- end }}

{{/* pushgateway.rules.labels: the labels of one alert (severity, then prometheusRule.labels); takes (list root alertValues). */}}
{{- define "pushgateway.rules.labels" -}}
{{- $root := index . 0 }}
{{- $cfg := index . 1 -}}
labels:
  severity: {{ $cfg.severity }}
  {{- range $k, $v := omit $root.Values.prometheusRule.labels "severity" "max_age" }}
  {{ $k }}: {{ $v | quote }}
  {{- end }}
{{- end }}

{{/* pushgateway.rules.runbook: the runbook URL of one alert, "" without prometheusRule.runbookUrl; takes (list root alertName). */}}
{{- define "pushgateway.rules.runbook" -}}
{{- $root := index . 0 }}
{{- with $root.Values.prometheusRule.runbookUrl }}
{{- printf "%s#%s" . (lower (index $ 1)) }}
{{- end }}
{{- end }}

{{/* pushgateway.rules.groupText: Prometheus template text naming a group by its job and grouping labels. */}}
{{- define "pushgateway.rules.groupText" -}}
{{`{job="{{ $labels.job }}"{{ range $k, $v := $labels }}{{ if ne $k "job" }}, {{ $k }}="{{ $v }}"{{ end }}{{ end }}}`}}
{{- end }}

{{- define "pushgateway.rules.groups" -}}
{{- $r := .Values.prometheusRule }}
{{- $a := $r.alerts }}
{{- $gw := include "pushgateway.rules.gatewaySelector" . }}
{{- $ctr := include "pushgateway.rules.containerSelector" . }}
{{- $replicas := join ", " $r.replicaLabels }}
{{- $group := include "pushgateway.rules.groupText" . }}
{{- $grp := include "pushgateway.rules.matchers" (list $r.groupSelector) }}
{{- $groupAlerts := or $a.groupPushFailed.enabled $a.groupStale.enabled }}
{{- $redisMax := include "pushgateway.redis.maxMemoryBytes" . | atoi }}
{{- $redisMemory := and $a.redisMemory.enabled .Values.redis.enabled (gt $redisMax 0) }}
{{- $gatewayAlerts := or $a.gatewayDown.enabled $a.gatewayNotReady.enabled $a.pushesRejected.enabled $a.memoryNearLimit.enabled $a.groupsExpired.enabled $a.quotaNearLimit.enabled $a.replication.enabled $redisMemory -}}
groups:{{ if not (or $groupAlerts $gatewayAlerts) }} []{{ end }}
{{- if $groupAlerts }}
  - name: pushgateway.groups
    rules:
    {{- if $a.groupPushFailed.enabled }}
      - alert: PushgatewayGroupPushFailed
        expr: |-
          max without ({{ $replicas }}) (push_failure_time_seconds{{ $grp }})
            > max without ({{ $replicas }}) (push_time_seconds{{ $grp }})
        for: {{ $a.groupPushFailed.for }}
        {{- include "pushgateway.rules.labels" (list . $a.groupPushFailed) | nindent 8 }}
        annotations:
          summary: The last push to a Pushgateway group failed.
          description: >-
            The last push to the group {{ $group }} failed at
            {{`{{ $value | humanizeTimestamp }}`}} and no push succeeded since; the gateway keeps the
            metrics of the last successful push, so Prometheus sees old values.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayGroupPushFailed") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.groupStale.enabled }}
    {{- /* One rule per distinct maximum age (so no two rules share name and labels): the
    default one for every job without an age of its own, then one per other age. */}}
    {{- $defaultAge := include "pushgateway.rules.seconds" $a.groupStale.maxAge }}
    {{- $ages := dict }}
    {{- range $job, $age := $a.groupStale.jobs | default (dict) }}
    {{- $s := include "pushgateway.rules.seconds" $age }}
    {{- if ne $s $defaultAge }}
    {{- $entry := get $ages $s | default (dict "age" $age "jobs" list) }}
    {{- $_ := set $entry "jobs" (append $entry.jobs $job) }}
    {{- $_ := set $ages $s $entry }}
    {{- end }}
    {{- end }}
    {{- $others := list }}
    {{- range $s, $entry := $ages }}{{ range $entry.jobs }}{{ $others = append $others (regexQuoteMeta .) }}{{ end }}{{ end }}
    {{- $stale := list (dict "matchers" (list $r.groupSelector (ternary (printf "job!~%q" (join "|" (sortAlpha $others))) "" (gt (len $others) 0))) "seconds" $defaultAge "age" $a.groupStale.maxAge) }}
    {{- range $s, $entry := $ages }}
    {{- $quoted := list }}
    {{- range $entry.jobs }}{{ $quoted = append $quoted (regexQuoteMeta .) }}{{ end }}
    {{- $job := ternary (printf "job=%q" (first $entry.jobs)) (printf "job=~%q" (join "|" $quoted)) (eq (len $quoted) 1) }}
    {{- $stale = append $stale (dict "matchers" (list $r.groupSelector $job) "seconds" $s "age" $entry.age) }}
    {{- end }}
    {{- range $stale }}
      - alert: PushgatewayGroupStale
        expr: |-
          time() - max without ({{ $replicas }}) (push_time_seconds{{ include "pushgateway.rules.matchers" .matchers }})
            > {{ .seconds }}
        for: {{ $a.groupStale.for }}
        {{- include "pushgateway.rules.labels" (list $ $a.groupStale) | nindent 8 }}
          max_age: {{ .age | quote }}
        annotations:
          summary: A Pushgateway group has not been pushed successfully for longer than expected.
          description: >-
            The group {{ $group }} was last pushed successfully
            {{`{{ $value | humanizeDuration }}`}} ago; it is expected at least every {{ .age }}.
            Its job has not run, or its pushes fail.
          {{- with include "pushgateway.rules.runbook" (list $ "PushgatewayGroupStale") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- end }}
{{- end }}
{{- if $gatewayAlerts }}
  - name: pushgateway.gateway
    rules:
    {{- if $a.gatewayDown.enabled }}
      - alert: PushgatewayDown
        expr: |-
          up{{ include "pushgateway.rules.matchers" (list $gw) }} == 0
            or absent(up{{ include "pushgateway.rules.matchers" (list $gw) }})
        for: {{ $a.gatewayDown.for }}
        {{- include "pushgateway.rules.labels" (list . $a.gatewayDown) | nindent 8 }}
        annotations:
          summary: Prometheus cannot scrape the Pushgateway.
          description: >-
            {{`{{ with $labels.instance }}Prometheus cannot scrape the gateway {{ . }} (job {{ $labels.job }}){{ else }}Prometheus has no target matching`}}
            {{ $gw }}{{`{{ end }}`}}: pushes to it may fail, and the groups it holds are missing
            from Prometheus.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayDown") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.gatewayNotReady.enabled }}
      - alert: PushgatewayNotReady
        expr: |-
          sum without (method) (rate(pushgateway_http_requests_total{{ include "pushgateway.rules.matchers" (list $gw `handler="ready"` `code!~"2.."`) }}[5m])) > 0
            or max by (namespace, pod, container) (kube_pod_container_status_ready{{ include "pushgateway.rules.matchers" (list $ctr) }}) == 0
        for: {{ $a.gatewayNotReady.for }}
        {{- include "pushgateway.rules.labels" (list . $a.gatewayNotReady) | nindent 8 }}
        annotations:
          summary: A Pushgateway pod is not ready.
          description: >-
            The gateway {{`{{ with $labels.pod }}pod {{ $labels.namespace }}/{{ . }}{{ else }}{{ $labels.instance }}{{ end }}`}}
            fails its readiness check{{`{{ with $labels.code }} (HTTP {{ . }} on /-/ready){{ end }}`}}, so
            the Service sends it no pushes.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayNotReady") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.pushesRejected.enabled }}
      - alert: PushgatewayPushesRejected
        expr: |-
          sum without (method, instance, {{ $replicas }}) (rate(pushgateway_http_requests_total{{ include "pushgateway.rules.matchers" (list $gw `handler="push"` `code=~"4.."`) }}[5m]))
            > {{ $a.pushesRejected.threshold }}
        for: {{ $a.pushesRejected.for }}
        {{- include "pushgateway.rules.labels" (list . $a.pushesRejected) | nindent 8 }}
        annotations:
          summary: The Pushgateway rejects pushes.
          description: >-
            The gateway {{`{{ $labels.job }}`}} answers {{`{{ $value | humanize }}`}} pushes per second with
            HTTP {{`{{ $labels.code }}`}} (400: unparsable body or bad labels, 413: too many series
            or too long labels, 429: store full); their metrics never reach Prometheus.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayPushesRejected") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.memoryNearLimit.enabled }}
      - alert: PushgatewayMemoryNearLimit
        expr: |-
          max by (namespace, pod, container) (container_memory_working_set_bytes{{ include "pushgateway.rules.matchers" (list $ctr) }})
            / on (namespace, pod, container)
          max by (namespace, pod, container) (kube_pod_container_resource_limits{{ include "pushgateway.rules.matchers" (list $ctr `resource="memory"`) }})
            > {{ $a.memoryNearLimit.ratio }}
        for: {{ $a.memoryNearLimit.for }}
        {{- include "pushgateway.rules.labels" (list . $a.memoryNearLimit) | nindent 8 }}
        annotations:
          summary: A Pushgateway container is close to its memory limit.
          description: >-
            The gateway pod {{`{{ $labels.namespace }}/{{ $labels.pod }}`}} uses
            {{`{{ $value | humanizePercentage }}`}} of its memory limit; at the limit it is killed and,
            without persistence or Redis, loses every group.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayMemoryNearLimit") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $redisMemory }}
      - alert: PushgatewayRedisMemoryNearMax
        expr: |-
          max by (namespace, pod) (container_memory_working_set_bytes{{ include "pushgateway.rules.matchers" (list (printf "namespace=%q" (include "pushgateway.namespace" .)) (printf "pod=~%q" (printf "%s-[0-9]+" (include "pushgateway.redis.fullname" .))) `container="redis"`) }})
            > {{ $a.redisMemory.ratio }} * {{ $redisMax }}
        for: {{ $a.redisMemory.for }}
        {{- include "pushgateway.rules.labels" (list . $a.redisMemory) | nindent 8 }}
        annotations:
          summary: The bundled Redis is close to its maxmemory.
          description: >-
            The Redis pod {{`{{ $labels.namespace }}/{{ $labels.pod }}`}} uses
            {{`{{ $value | humanize1024 }}`}}B, over {{ $a.redisMemory.ratio }} of redis.maxMemory
            ({{ .Values.redis.maxMemory }}); when full, Redis refuses writes (noeviction) and every push fails with 503.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayRedisMemoryNearMax") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.groupsExpired.enabled }}
      - alert: PushgatewayGroupsExpired
        expr: |-
          increase(pushgateway_expired_groups_total{{ include "pushgateway.rules.matchers" (list $gw) }}[{{ $a.groupsExpired.window }}]) > 0
        {{- include "pushgateway.rules.labels" (list . $a.groupsExpired) | nindent 8 }}
        annotations:
          summary: The Pushgateway removed groups that outlived their TTL.
          description: >-
            The gateway {{`{{ $labels.instance }}`}} (job {{`{{ $labels.job }}`}}) expired about
            {{`{{ $value | humanize }}`}} groups in the last {{ $a.groupsExpired.window }}: their jobs stopped
            pushing for longer than the expiry rules allow. The log names each group.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayGroupsExpired") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.quotaNearLimit.enabled }}
    {{- $q := include "pushgateway.rules.matchers" (list $gw) }}
      - alert: PushgatewayQuotaNearLimit
        expr: |-
          max without (instance, {{ $replicas }}) (
            label_replace(pushgateway_quota_series{{ $q }} / pushgateway_quota_max_series{{ $q }}, "limit", "series", "", "")
              or
            label_replace(pushgateway_quota_groups{{ $q }} / pushgateway_quota_max_groups{{ $q }}, "limit", "groups", "", "")
          ) > {{ $a.quotaNearLimit.threshold }}
        for: {{ $a.quotaNearLimit.for }}
        {{- include "pushgateway.rules.labels" (list . $a.quotaNearLimit) | nindent 8 }}
        annotations:
          summary: A Pushgateway quota is nearly used up.
          description: >-
            The quota {{`{{ $labels.quota }}`}} of the gateway (job {{`{{ $labels.job }}`}}) is at
            {{`{{ $value | humanizePercentage }}`}} of its {{`{{ $labels.limit }}`}} limit (every
            replica counts the same usage); pushes that would take it past the limit are refused
            with 429.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayQuotaNearLimit") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
    {{- if $a.replication.enabled }}
      - alert: PushgatewayReplicationLag
        expr: |-
          pushgateway_replication_lag_entries{{ include "pushgateway.rules.matchers" (list $gw) }} > {{ $a.replication.maxLagEntries }}
        for: {{ $a.replication.for }}
        {{- include "pushgateway.rules.labels" (list . $a.replication) | nindent 8 }}
        annotations:
          summary: A Pushgateway replica lags behind the Redis stream.
          description: >-
            The gateway replica {{`{{ $labels.instance }}`}} (job {{`{{ $labels.job }}`}}) is
            {{`{{ $value | humanize }}`}} stream entries behind Redis, so scrapes of it return older
            groups than the other replicas.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayReplicationLag") }}
          runbook_url: {{ . }}
          {{- end }}
      - alert: PushgatewayReplicationApplyErrors
        expr: |-
          rate(pushgateway_replication_apply_errors_total{{ include "pushgateway.rules.matchers" (list $gw) }}[5m]) > 0
        for: {{ $a.replication.for }}
        {{- include "pushgateway.rules.labels" (list . $a.replication) | nindent 8 }}
        annotations:
          summary: A Pushgateway replica cannot apply replicated changes.
          description: >-
            The gateway replica {{`{{ $labels.instance }}`}} (job {{`{{ $labels.job }}`}}) fails to
            apply {{`{{ $value | humanize }}`}} stream entries per second; its groups drift away from
            the other replicas'.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayReplicationApplyErrors") }}
          runbook_url: {{ . }}
          {{- end }}
      - alert: PushgatewayRedisErrors
        expr: |-
          rate(pushgateway_redis_errors_total{{ include "pushgateway.rules.matchers" (list $gw) }}[5m]) > 0
        for: {{ $a.replication.for }}
        {{- include "pushgateway.rules.labels" (list . $a.replication) | nindent 8 }}
        annotations:
          summary: The Pushgateway gets errors from Redis.
          description: >-
            The gateway replica {{`{{ $labels.instance }}`}} (job {{`{{ $labels.job }}`}}) gets
            {{`{{ $value | humanize }}`}} Redis errors per second; pushes may fail with 503 and the
            replica may fall behind.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayRedisErrors") }}
          runbook_url: {{ . }}
          {{- end }}
      {{- $interval := include "pushgateway.rules.seconds" .Values.storage.redis.snapshotInterval | int }}
      - alert: PushgatewayReplicationSnapshotStale
        expr: |-
          min without (instance, {{ $replicas }}) (pushgateway_replication_snapshot_age_seconds{{ include "pushgateway.rules.matchers" (list $gw) }}) > {{ mul $interval $a.replication.maxSnapshotIntervals }}
            and max without (instance, {{ $replicas }}) (pushgateway_replication_applied_position{{ include "pushgateway.rules.matchers" (list $gw) }} - pushgateway_replication_snapshot_position{{ include "pushgateway.rules.matchers" (list $gw) }}) > 0
        for: {{ $a.replication.for }}
        {{- include "pushgateway.rules.labels" (list . $a.replication) | nindent 8 }}
        annotations:
          summary: The Pushgateway's leader does not write snapshots to Redis.
          description: >-
            The newest snapshot of the gateway {{`{{ $labels.job }}`}} in Redis is
            {{`{{ $value | humanizeDuration }}`}} old (snapshot interval {{ .Values.storage.redis.snapshotInterval }}) although the
            replicas applied changes after it: the Redis stream is not trimmed, so Redis' memory
            grows and a restarted replica replays more.
          {{- with include "pushgateway.rules.runbook" (list . "PushgatewayReplicationSnapshotStale") }}
          runbook_url: {{ . }}
          {{- end }}
    {{- end }}
{{- end }}
{{- end }}

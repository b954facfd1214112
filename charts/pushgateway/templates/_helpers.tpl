{{/* pushgateway.name: the chart name, or nameOverride, cut to 63 characters. */}}
{{- define "pushgateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* pushgateway.fullname: the release-qualified name of every resource (the release name alone when it already holds the chart name). */}}
{{- define "pushgateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* pushgateway.namespace: the namespace every resource goes to. */}}
{{- define "pushgateway.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/* pushgateway.chart: chart name and version for the helm.sh/chart label. */}}
{{- define "pushgateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* pushgateway.labels: the standard labels of every gateway resource. */}}
{{- define "pushgateway.labels" -}}
helm.sh/chart: {{ include "pushgateway.chart" . }}
{{ include "pushgateway.selectorLabels" . }}
app.kubernetes.io/version: {{ include "pushgateway.imageVersion" (list .Values.image .Chart.AppVersion) | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pushgateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* pushgateway.imageVersion: the version label of an image (list image-values default-tag): its tag, or its digest when only that is set (never a tag the digest may not match). */}}
{{- define "pushgateway.imageVersion" -}}
{{- $image := index . 0 }}
{{- if and $image.digest (not $image.tag) }}
{{- $image.digest | replace ":" "-" | trunc 63 }}
{{- else }}
{{- $image.tag | default (index . 1) | toString | trunc 63 }}
{{- end }}
{{- end }}

{{/* pushgateway.selectorLabels: the labels that select the gateway pods (name and instance only). */}}
{{- define "pushgateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pushgateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* pushgateway.testLabels: the labels of the helm test pod (never selected by the Service, admitted by the NetworkPolicy). */}}
{{- define "pushgateway.testLabels" -}}
helm.sh/chart: {{ include "pushgateway.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pushgateway
{{- end }}

{{/* pushgateway.serviceAccountName: the ServiceAccount the pods run as. */}}
{{- define "pushgateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pushgateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* pushgateway.image: the gateway image reference (registry/repository, then @digest or :tag defaulting to appVersion). */}}
{{- define "pushgateway.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .Values.image.registry) $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* pushgateway.imageRef: registry/repository[:tag][@digest] of an image values object (the bundled Redis, the test pod); the digest, when set, is what runs. */}}
{{- define "pushgateway.imageRef" -}}
{{- with .registry }}{{ trimSuffix "/" . }}/{{ end }}{{ .repository }}
{{- with .tag }}:{{ . }}{{ end }}
{{- with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/* pushgateway.redis.maxMemoryBytes: redis.maxMemory in bytes as Redis reads it (k=1000, kb=1024, ...); 0 when unbounded. */}}
{{- define "pushgateway.redis.maxMemoryBytes" -}}
{{- $units := dict "" 1 "k" 1000 "kb" 1024 "m" 1000000 "mb" 1048576 "g" 1000000000 "gb" 1073741824 }}
{{- $v := lower (toString .Values.redis.maxMemory) }}
{{- mul (regexFind "^[0-9]+" $v | atoi) (get $units (regexReplaceAll "^[0-9]+" $v "")) }}
{{- end }}

{{/* pushgateway.quantityBytes: a Kubernetes memory quantity in bytes (integers with an optional Ki/Mi/Gi/Ti/k/M/G/T suffix); "" for other spellings. */}}
{{- define "pushgateway.quantityBytes" -}}
{{- $units := dict "" 1 "k" 1000 "Ki" 1024 "M" 1000000 "Mi" 1048576 "G" 1000000000 "Gi" 1073741824 "T" 1000000000000 "Ti" 1099511627776 }}
{{- $v := toString . }}
{{- if regexMatch "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$" $v }}
{{- mul (regexFind "^[0-9]+" $v | atoi) (get $units (regexReplaceAll "^[0-9]+" $v "")) }}
{{- end }}
{{- end }}

{{/* pushgateway.redis.fullname: the name of the bundled Redis resources. */}}
{{- define "pushgateway.redis.fullname" -}}
{{- printf "%s-redis" (include "pushgateway.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/* pushgateway.redis.selectorLabels: the labels that select the bundled Redis pod (never the gateway's). */}}
{{- define "pushgateway.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-redis" (include "pushgateway.name" . | trunc 57 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* pushgateway.redis.labels: the standard labels of the bundled Redis resources. */}}
{{- define "pushgateway.redis.labels" -}}
helm.sh/chart: {{ include "pushgateway.chart" . }}
{{ include "pushgateway.redis.selectorLabels" . }}
app.kubernetes.io/version: {{ include "pushgateway.imageVersion" (list .Values.redis.image "") | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: redis
app.kubernetes.io/part-of: pushgateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* pushgateway.redis.sentinelEnabled: "true" when the bundled Redis runs with Sentinels (redis.sentinel.enabled). */}}
{{- define "pushgateway.redis.sentinelEnabled" -}}
{{- if and .Values.redis.enabled .Values.redis.sentinel.enabled }}true{{ end }}
{{- end }}

{{/* pushgateway.redis.headlessName: the headless Service that names each Redis pod (with Sentinels). */}}
{{- define "pushgateway.redis.headlessName" -}}
{{- printf "%s-headless" (include "pushgateway.redis.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* pushgateway.redis.sentinelServiceName: the Service in front of every Sentinel. */}}
{{- define "pushgateway.redis.sentinelServiceName" -}}
{{- printf "%s-sentinel" (include "pushgateway.redis.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* pushgateway.redis.podHosts: the stable DNS name of each Redis pod (with Sentinels), one per line. */}}
{{- define "pushgateway.redis.podHosts" -}}
{{- $fullname := include "pushgateway.redis.fullname" . }}
{{- $domain := printf "%s.%s.svc.%s" (include "pushgateway.redis.headlessName" .) (include "pushgateway.namespace" .) .Values.redis.sentinel.clusterDomain }}
{{- range $i := until (int .Values.redis.sentinel.replicas) }}
{{ printf "%s-%d.%s" $fullname $i $domain }}
{{- end }}
{{- end }}

{{/* pushgateway.redis.sentinelAddresses: host:port of every bundled Sentinel, comma-separated (--storage.redis.sentinels). */}}
{{- define "pushgateway.redis.sentinelAddresses" -}}
{{- $addresses := list }}
{{- range include "pushgateway.redis.podHosts" . | trim | splitList "\n" }}
{{- $addresses = append $addresses (printf "%s:%d" . 26379) }}
{{- end }}
{{- join "," $addresses }}
{{- end }}

{{/* pushgateway.redis.sentinelSecretKey: the key of the Sentinels' password in redis.auth.existingSecret (the Redis password's key unless set). */}}
{{- define "pushgateway.redis.sentinelSecretKey" -}}
{{- .Values.redis.sentinel.auth.secretKey | default .Values.redis.auth.secretKey }}
{{- end }}

{{/* pushgateway.redis.secretName: the Secret holding the bundled Redis password (made outside the chart). */}}
{{- define "pushgateway.redis.secretName" -}}
{{- .Values.redis.auth.existingSecret }}
{{- end }}

{{/* pushgateway.redis.authAnnotations: the pod annotation that rolls Redis and the gateways when redis.auth.revision changes (never derived from the password). */}}
{{- define "pushgateway.redis.authAnnotations" -}}
{{- if and .Values.redis.enabled .Values.redis.auth.revision }}
pushgateway.io/redis-auth-revision: {{ .Values.redis.auth.revision | toString | quote }}
{{- end }}
{{- end }}

{{/* pushgateway.webConfigEnabled: "true" when the gateway gets a --web.config.file. */}}
{{- define "pushgateway.webConfigEnabled" -}}
{{- if or .Values.webConfig.existingSecret .Values.webConfig.basicAuthUsers .Values.webConfig.tls.enabled .Values.webConfig.extraConfig }}true{{ end }}
{{- end }}

{{/* pushgateway.basicAuthEnabled: "true" when the chart's web config asks for basic auth on every request. */}}
{{- define "pushgateway.basicAuthEnabled" -}}
{{- if and (not .Values.webConfig.existingSecret) .Values.webConfig.basicAuthUsers }}true{{ end }}
{{- end }}

{{/* pushgateway.scheme: http, or https when the gateway serves TLS itself. */}}
{{- define "pushgateway.scheme" -}}
{{- if .Values.webConfig.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* pushgateway.routePrefix: the path prefix of every route, without a trailing slash ("" for /). */}}
{{- define "pushgateway.routePrefix" -}}
{{- $prefix := .Values.gateway.routePrefix }}
{{- if and (not $prefix) .Values.gateway.externalUrl }}
{{- $prefix = (urlParse .Values.gateway.externalUrl).path }}
{{- end }}
{{- trimSuffix "/" $prefix }}
{{- end }}

{{/* pushgateway.persistenceFile: the path of the persistence file inside the pod. */}}
{{- define "pushgateway.persistenceFile" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.persistence.mountPath) .Values.persistence.fileName }}
{{- end }}

{{/* pushgateway.strategy: the Deployment strategy, Recreate when an RWO persistence volume cannot be shared by two pods. */}}
{{- define "pushgateway.strategy" -}}
{{- if .Values.strategy }}
{{- toYaml .Values.strategy }}
{{- else if and .Values.persistence.enabled (or .Values.persistence.existingClaim (has "ReadWriteOnce" .Values.persistence.accessModes) (has "ReadWriteOncePod" .Values.persistence.accessModes)) }}
type: Recreate
{{- else }}
type: RollingUpdate
rollingUpdate:
  maxSurge: 1
  maxUnavailable: 0
{{- end }}
{{- end }}

{{/* pushgateway.configFilePath: where the gateway reads configFile.content (--config.file); a directory mount, so that the kubelet's updates arrive. */}}
{{- define "pushgateway.configFilePath" -}}
/etc/pushgateway/config/pushgateway.toml
{{- end }}

{{/* pushgateway.configFileTables: the top-level keys of configFile.content as JSON, when this Helm parses TOML (fromToml, 3.17+, called through tpl so that older Helm never sees it) and the text parses; else "{}". */}}
{{- define "pushgateway.configFileTables" -}}
{{- $parsed := dict }}
{{- if semverCompare ">=3.17.0-0" .Capabilities.HelmVersion.Version }}
{{- $parsed = tpl "{{ fromToml .Values.configFile.content | toJson }}" . | fromJson }}
{{- end }}
{{- /* A parse error comes back as {"Error": ...}; the gateway has the last word on syntax (it reads TOML 1.1). */}}
{{- if hasKey $parsed "Error" }}{{ $parsed = dict }}{{ end }}
{{- $parsed | toJson }}
{{- end }}

{{/* pushgateway.validateValues: fails the install on combinations that would lose or split data. */}}
{{- define "pushgateway.validateValues" -}}
{{- $replicas := int .Values.replicaCount }}
{{- $redis := eq .Values.storage.type "redis" }}
{{- $sentinels := .Values.storage.redis.sentinel.addresses }}
{{- $external := or .Values.storage.redis.url .Values.storage.redis.urlSecret.name $sentinels }}
{{- if and (gt $replicas 1) (not $redis) }}
{{- fail (printf "replicaCount=%d needs storage.type=redis: without it each replica holds different groups and every scrape sees another subset (set storage.type=redis with redis.enabled=true or storage.redis.url, or use replicaCount=1)" $replicas) }}
{{- end }}
{{- if and .Values.persistence.enabled (gt $replicas 1) (not .Values.runAsStatefulSet) }}
{{- fail (printf "persistence with replicaCount=%d on a Deployment would make every replica share one volume and one persistence file (a ReadWriteOnce volume cannot even be mounted twice); set runAsStatefulSet=true so that each replica gets its own volume" $replicas) }}
{{- end }}
{{- if and .Values.persistence.enabled .Values.persistence.existingClaim .Values.runAsStatefulSet }}
{{- fail "persistence.existingClaim works with a Deployment only: a StatefulSet creates one claim per replica (unset persistence.existingClaim)" }}
{{- end }}
{{- if and .Values.strategy (not .Values.runAsStatefulSet) .Values.persistence.enabled (eq (toString .Values.strategy.type) "RollingUpdate") (or .Values.persistence.existingClaim (has "ReadWriteOnce" .Values.persistence.accessModes) (has "ReadWriteOncePod" .Values.persistence.accessModes)) }}
{{- fail "strategy.type=RollingUpdate cannot work with persistence on a ReadWriteOnce volume (the new pod waits for the old one's volume); use Recreate or leave strategy empty" }}
{{- end }}
{{- if and $redis (not .Values.redis.enabled) (not $external) }}
{{- fail "storage.type=redis needs a Redis: set redis.enabled=true for the bundled one, or storage.redis.url / storage.redis.urlSecret.name / storage.redis.sentinel.addresses for an external one" }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.redis.auth.existingSecret) }}
{{- fail (printf "redis.enabled needs redis.auth.existingSecret: the chart does not generate the Redis password, since a generated one would change with every helm template, helm diff or Argo CD sync. Create it once, e.g.\n  kubectl -n %s create secret generic %s --from-literal=%s=\"$(openssl rand -hex 24)\"\nand set redis.auth.existingSecret=%s" (include "pushgateway.namespace" .) (include "pushgateway.redis.fullname" .) .Values.redis.auth.secretKey (include "pushgateway.redis.fullname" .)) }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $max := include "pushgateway.redis.maxMemoryBytes" . | atoi }}
{{- $limit := dig "limits" "memory" "" (.Values.redis.resources | default dict) | include "pushgateway.quantityBytes" }}
{{- /* An append-only-file rewrite forks Redis; copy-on-write can double its pages meanwhile. */}}
{{- $needed := add (mul 2 $max) 67108864 }}
{{- if and (gt $max 0) $limit (lt (atoi $limit) $needed) }}
{{- fail (printf "redis.resources.limits.memory=%v is too small for redis.maxMemory=%v: an append-only-file rewrite forks Redis and copy-on-write can double its memory, so the pod would be OOM-killed; set the limit to at least %dMi (2 x maxMemory + 64Mi) or lower redis.maxMemory" .Values.redis.resources.limits.memory .Values.redis.maxMemory (div (add $needed 1048575) 1048576)) }}
{{- end }}
{{- end }}
{{- if and .Values.redis.enabled $external }}
{{- fail "redis.enabled=true and an external storage.redis URL or Sentinels exclude each other: pick one" }}
{{- end }}
{{- if and .Values.storage.redis.url .Values.storage.redis.urlSecret.name }}
{{- fail "storage.redis.url and storage.redis.urlSecret.name exclude each other: pick one" }}
{{- end }}
{{- if and $sentinels (or .Values.storage.redis.url .Values.storage.redis.urlSecret.name) }}
{{- fail "storage.redis.sentinel.addresses and storage.redis.url / urlSecret.name exclude each other: the gateway finds the primary either through the Sentinels or at one URL" }}
{{- end }}
{{- with .Values.redis.sentinel }}{{ if and $.Values.redis.enabled .enabled }}
{{- if not $.Values.redis.persistence.enabled }}
{{- fail "redis.sentinel.enabled needs redis.persistence.enabled: a Redis pod restarted without its data while the Sentinels still name it the primary would come back empty, and its replicas would copy the empty data set" }}
{{- end }}
{{- if eq (mod (int .replicas) 2) 0 }}
{{- fail (printf "redis.sentinel.replicas=%d: use an odd number (3, 5), so that a majority of the Sentinels (the quorum) survives as many lost pods as possible" (int .replicas)) }}
{{- end }}
{{- end }}{{ end }}
{{- if and .Values.redis.sentinel.enabled (not .Values.redis.enabled) }}
{{- fail "redis.sentinel.enabled makes the bundled Redis highly available and needs redis.enabled=true; for Sentinels of your own, set storage.redis.sentinel.addresses" }}
{{- end }}
{{- if and (not $redis) (or .Values.redis.enabled $external) }}
{{- fail "a Redis is configured (redis.enabled or storage.redis.url) but storage.type is not redis: set storage.type=redis" }}
{{- end }}
{{- with .Values.storage.redis.url }}
{{- if not (regexMatch "^rediss?://" .) }}
{{- fail (printf "storage.redis.url %q must start with redis:// or rediss://" .) }}
{{- end }}
{{- if (urlParse .).userinfo | regexMatch ":" }}
{{- fail "storage.redis.url must not carry a password (it would show on the command line): put it in a Secret named by storage.redis.passwordSecret.name" }}
{{- end }}
{{- end }}
{{- if and .Values.webConfig.tls.enabled (not .Values.webConfig.tls.secretName) (not .Values.webConfig.existingSecret) }}
{{- fail "webConfig.tls.enabled needs webConfig.tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- with .Values.podDisruptionBudget }}{{ if .enabled }}
{{- /* Evictions the budget allows with every pod healthy; Kubernetes rounds percentages up. */}}
{{- $evictable := 0 }}
{{- $setting := printf "minAvailable: %v" .minAvailable }}
{{- if ne (toString .maxUnavailable) "" }}
{{- $setting = printf "maxUnavailable: %v" .maxUnavailable }}
{{- $v := toString .maxUnavailable }}
{{- $evictable = hasSuffix "%" $v | ternary (div (add (mul $replicas (trimSuffix "%" $v | int)) 99) 100) (int $v) }}
{{- else }}
{{- $v := toString .minAvailable }}
{{- $evictable = sub $replicas (hasSuffix "%" $v | ternary (div (add (mul $replicas (trimSuffix "%" $v | int)) 99) 100) (int $v)) }}
{{- end }}
{{- if and (gt $replicas 0) (lt (int $evictable) 1) }}
{{- fail (printf "podDisruptionBudget with replicaCount=%d and %s allows no eviction, so every node drain would hang: run at least 2 replicas with minAvailable: 1 (or maxUnavailable: 1), or set podDisruptionBudget.enabled=false" $replicas $setting) }}
{{- end }}
{{- end }}{{ end }}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.allowAll) (not .Values.networkPolicy.from) }}
{{- fail "networkPolicy.enabled with an empty networkPolicy.from would admit only the gateway's own pods, so Prometheus and every pusher would be blocked: list them in networkPolicy.from, or set networkPolicy.allowAll=true to admit every pod" }}
{{- end }}
{{- with .Values.networkPolicy.egress }}{{ if and $.Values.networkPolicy.enabled .enabled $external (not .redisTo) }}
{{- fail "networkPolicy.egress.enabled with an external Redis needs networkPolicy.egress.redisTo (e.g. an ipBlock of the Redis address), or the gateway could not reach it" }}
{{- end }}{{ end }}
{{- if and .Values.serviceMonitor.enabled (include "pushgateway.basicAuthEnabled" .) (not .Values.serviceMonitor.basicAuth) }}
{{- fail "webConfig.basicAuthUsers holds bcrypt hashes only, so the ServiceMonitor needs the scrape credentials from a Secret: set serviceMonitor.basicAuth.username and .password (Secret key selectors)" }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs at least one entry in httpRoute.parentRefs (the Gateway to attach to)" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts" }}
{{- end }}
{{- with .Values.configFile.content }}
{{- $tables := include "pushgateway.configFileTables" $ | fromJson }}
{{- /* The exact check needs a Helm that parses TOML; the pattern catches the usual spellings on any Helm. */}}
{{- if or (hasKey $tables "flags") (regexMatch `(?m)^[ \t]*(\[[ \t]*["']?flags["']?[ \t]*[\].]|["']?flags["']?[ \t]*[.=])` .) }}
{{- fail "configFile.content must not have a [flags] table: the chart renders the gateway's flags from its values (gateway.*, persistence.*, webConfig.*, storage.*, extraArgs), and a switch the chart leaves off (e.g. web.enable-admin-api) would be turned on by the file behind the values' back; put further flags in extraArgs" }}
{{- end }}
{{- if and (not (include "pushgateway.webConfigEnabled" $)) (or (hasKey $tables "access") (regexMatch `(?m)^[ \t]*\[\[[ \t]*["']?access["']?[ \t]*\]\]` .)) }}
{{- fail "configFile.content has [[access]] rules but there is no web config to say who the user is: the gateway would refuse to start. Set webConfig.basicAuthUsers (or webConfig.existingSecret with basic_auth_users or verified client certificates)" }}
{{- end }}
{{- if and $.Values.webConfig.basicAuthUsers (not $.Values.webConfig.existingSecret) }}
{{- $access := $tables.access | default list }}
{{- /* Only well-formed entries: the gateway explains anything else with its line. */}}
{{- range (kindIs "slice" $access | ternary $access list) }}
{{- if and (kindIs "map" .) (kindIs "string" .user) (not (hasKey $.Values.webConfig.basicAuthUsers (toString .user))) }}
{{- fail (printf "configFile.content has an [[access]] entry for user %q, who is not in webConfig.basicAuthUsers: the gateway would refuse to start (a misspelt name would leave the real user unrestricted)" (toString .user)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

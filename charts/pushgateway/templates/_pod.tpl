{{/* pushgateway.args: the gateway's command-line flags, derived from the values. */}}
{{- define "pushgateway.args" -}}
- --web.listen-address=:{{ .Values.containerPort }}
- --web.telemetry-path={{ .Values.gateway.telemetryPath }}
{{- with .Values.gateway.externalUrl }}
- --web.external-url={{ . }}
{{- end }}
{{- with .Values.gateway.routePrefix }}
- --web.route-prefix={{ . }}
{{- end }}
{{- if .Values.gateway.enableLifecycle }}
- --web.enable-lifecycle
{{- end }}
{{- if .Values.gateway.enableAdminApi }}
- --web.enable-admin-api
{{- end }}
{{- if .Values.gateway.disableConsistencyCheck }}
- --push.disable-consistency-check
{{- end }}
{{- if .Values.gateway.enableUtf8Names }}
- --push.enable-utf8-names
{{- end }}
- --log.level={{ .Values.gateway.logLevel }}
- --log.format={{ .Values.gateway.logFormat }}
{{- if .Values.persistence.enabled }}
- --persistence.file={{ include "pushgateway.persistenceFile" . }}
- --persistence.interval={{ .Values.persistence.interval }}
{{- end }}
{{- if include "pushgateway.webConfigEnabled" . }}
- --web.config.file=/etc/pushgateway/web/web-config.yml
{{- if .Values.webConfig.unauthenticatedProbes }}
- --web.unauthenticated-probes
{{- end }}
{{- end }}
{{- if .Values.configFile.content }}
- --config.file={{ include "pushgateway.configFilePath" . }}
{{- end }}
{{- if eq .Values.storage.type "redis" }}
- --storage=redis
{{- if include "pushgateway.redis.sentinelEnabled" . }}
- --storage.redis.sentinels={{ include "pushgateway.redis.sentinelAddresses" . }}
- --storage.redis.sentinel-master={{ .Values.redis.sentinel.masterName }}
{{- /* One confirming replica: with 3 Redis pods and maxUnavailable 1 there is always one. */}}
- --storage.redis.min-replicas-acks=1
{{- else if .Values.redis.enabled }}
- --storage.redis.url=redis://{{ include "pushgateway.redis.fullname" . }}.{{ include "pushgateway.namespace" . }}.svc:6379/0
{{- else if .Values.storage.redis.sentinel.addresses }}
- --storage.redis.sentinels={{ join "," .Values.storage.redis.sentinel.addresses }}
- --storage.redis.sentinel-master={{ .Values.storage.redis.sentinel.masterName }}
- --storage.redis.min-replicas-acks={{ .Values.storage.redis.sentinel.minReplicasAcks }}
{{- else if .Values.storage.redis.urlSecret.name }}
- --storage.redis.url=$(PUSHGATEWAY_REDIS_URL)
{{- else }}
- --storage.redis.url={{ .Values.storage.redis.url }}
{{- end }}
- --storage.redis.expose={{ .Values.storage.redis.expose }}
- --storage.redis.snapshot-interval={{ .Values.storage.redis.snapshotInterval }}
{{- /* Every pod of a release renders the same settings: the newest release's win, so that a
rolling upgrade that changes a --push.* flag proceeds (pods on the old ones turn unready). */}}
- --storage.redis.adopt-settings
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* pushgateway.env: the gateway's environment; Redis secrets arrive here, never as flags. */}}
{{- define "pushgateway.env" -}}
{{- if eq .Values.storage.type "redis" }}
{{- if .Values.storage.redis.urlSecret.name }}
- name: PUSHGATEWAY_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.redis.urlSecret.name }}
      key: {{ .Values.storage.redis.urlSecret.key }}
{{- end }}
{{- if .Values.redis.enabled }}
- name: PUSHGATEWAY_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pushgateway.redis.secretName" . }}
      key: {{ .Values.redis.auth.secretKey }}
{{- else if .Values.storage.redis.passwordSecret.name }}
- name: PUSHGATEWAY_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.redis.passwordSecret.name }}
      key: {{ .Values.storage.redis.passwordSecret.key }}
{{- end }}
{{- if include "pushgateway.redis.sentinelEnabled" . }}
- name: PUSHGATEWAY_REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pushgateway.redis.secretName" . }}
      key: {{ include "pushgateway.redis.sentinelSecretKey" . }}
{{- else if and (not .Values.redis.enabled) .Values.storage.redis.sentinel.addresses .Values.storage.redis.sentinel.passwordSecret.name }}
- name: PUSHGATEWAY_REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.redis.sentinel.passwordSecret.name }}
      key: {{ .Values.storage.redis.sentinel.passwordSecret.key }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* pushgateway.probe: one HTTP probe on the named port (a TCP check only when basic auth guards the probe paths too). */}}
{{- define "pushgateway.probe" -}}
{{- $ := index . 0 }}
{{- $path := index . 1 }}
{{- $cfg := index . 2 }}
{{- if and (include "pushgateway.basicAuthEnabled" $) (not $.Values.webConfig.unauthenticatedProbes) }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ include "pushgateway.routePrefix" $ }}{{ $path }}
  port: http
  scheme: {{ include "pushgateway.scheme" $ | upper }}
{{- end }}
initialDelaySeconds: {{ $cfg.initialDelaySeconds }}
periodSeconds: {{ $cfg.periodSeconds }}
timeoutSeconds: {{ $cfg.timeoutSeconds }}
failureThreshold: {{ $cfg.failureThreshold }}
{{- end }}

{{/* pushgateway.podTemplate: the pod template shared by the Deployment and the StatefulSet. */}}
{{- define "pushgateway.podTemplate" -}}
metadata:
  labels:
    {{- include "pushgateway.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- /* No checksum of the web config: the gateway re-reads it (and the certificates) when the
  kubelet updates the mounted Secret, and a pod-readable digest of a secret invites offline guessing. */}}
  {{- $redisAuth := include "pushgateway.redis.authAnnotations" . }}
  {{- /* The file's digest rolls the pods when it changes (configFile.rollOnChange): a pod always
  runs the file of its release, so no pod restarted later brings other rules than its peers. */}}
  {{- $configFile := "" }}
  {{- if and .Values.configFile.content .Values.configFile.rollOnChange }}
  {{- $configFile = printf "pushgateway.io/config-file: %s" (.Values.configFile.content | sha256sum | trunc 16 | quote) }}
  {{- end }}
  {{- if or $redisAuth $configFile .Values.podAnnotations }}
  annotations:
    {{- with $redisAuth }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $configFile }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "pushgateway.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.hostAliases }}
  hostAliases:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.extraInitContainers }}
  initContainers:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: pushgateway
      image: {{ include "pushgateway.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- include "pushgateway.args" . | nindent 8 }}
      {{- $env := include "pushgateway.env" . | trim }}
      {{- if $env }}
      env:
        {{- $env | nindent 8 }}
      {{- end }}
      {{- with .Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.containerPort }}
          protocol: TCP
      {{- if .Values.livenessProbe.enabled }}
      livenessProbe:
        {{- include "pushgateway.probe" (list . "/-/healthy" .Values.livenessProbe) | trim | nindent 8 }}
      {{- end }}
      {{- if .Values.readinessProbe.enabled }}
      readinessProbe:
        {{- include "pushgateway.probe" (list . "/-/ready" .Values.readinessProbe) | trim | nindent 8 }}
      {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.containerSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.lifecycle }}
      lifecycle:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if .Values.persistence.enabled }}
        - name: storage
          mountPath: {{ .Values.persistence.mountPath }}
          {{- with .Values.persistence.subPath }}
          subPath: {{ . }}
          {{- end }}
        {{- end }}
        {{- if include "pushgateway.webConfigEnabled" . }}
        - name: web-config
          mountPath: /etc/pushgateway/web
          readOnly: true
        {{- end }}
        {{- if and .Values.webConfig.tls.enabled .Values.webConfig.tls.secretName }}
        - name: tls
          mountPath: /etc/pushgateway/tls
          readOnly: true
        {{- end }}
        {{- if .Values.configFile.content }}
        - name: config-file
          mountPath: {{ include "pushgateway.configFilePath" . | dir }}
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with .Values.extraContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or .Values.affinity .Values.podAntiAffinity }}
  affinity:
    {{- with .Values.affinity }}
    {{- toYaml (omit . "podAntiAffinity") | nindent 4 }}
    {{- end }}
    {{- if eq .Values.podAntiAffinity "hard" }}
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: {{ .Values.podAntiAffinityTopologyKey }}
          labelSelector:
            matchLabels:
              {{- include "pushgateway.selectorLabels" . | nindent 14 }}
    {{- else if eq .Values.podAntiAffinity "soft" }}
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: {{ .Values.podAntiAffinityTopologyKey }}
            labelSelector:
              matchLabels:
                {{- include "pushgateway.selectorLabels" . | nindent 16 }}
    {{- else if .Values.affinity.podAntiAffinity }}
    podAntiAffinity:
      {{- toYaml .Values.affinity.podAntiAffinity | nindent 6 }}
    {{- end }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    {{- $selector := .labelSelector | default (dict "matchLabels" (include "pushgateway.selectorLabels" $ | fromYaml)) }}
    - {{ toYaml (merge (dict "labelSelector" $selector) (omit . "labelSelector")) | nindent 6 | trim }}
    {{- end }}
  {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if and .Values.persistence.enabled (not .Values.runAsStatefulSet) }}
    - name: storage
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim | default (include "pushgateway.fullname" .) }}
    {{- end }}
    {{- if include "pushgateway.webConfigEnabled" . }}
    - name: web-config
      secret:
        secretName: {{ .Values.webConfig.existingSecret | default (printf "%s-web-config" (include "pushgateway.fullname" .)) }}
    {{- end }}
    {{- if and .Values.webConfig.tls.enabled .Values.webConfig.tls.secretName }}
    - name: tls
      secret:
        secretName: {{ .Values.webConfig.tls.secretName }}
    {{- end }}
    {{- if .Values.configFile.content }}
    - name: config-file
      configMap:
        name: {{ include "pushgateway.fullname" . }}-config
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* pushgateway.pvcSpec: the spec of the persistence claim (a PVC or a volumeClaimTemplate). */}}
{{- define "pushgateway.pvcSpec" -}}
accessModes:
  {{- toYaml .accessModes | nindent 2 }}
{{- if .storageClass }}
{{- if eq .storageClass "-" }}
storageClassName: ""
{{- else }}
storageClassName: {{ .storageClass | quote }}
{{- end }}
{{- end }}
resources:
  requests:
    storage: {{ .size | quote }}
{{- end }}

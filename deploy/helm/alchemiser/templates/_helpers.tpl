{{/* Chart name. */}}
{{- define "alchemiser.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every resource. */}}
{{- define "alchemiser.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels; call with (dict "root" $ "component" "strategy"). */}}
{{- define "alchemiser.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: alchemiser
{{ include "alchemiser.selectorLabels" . }}
{{- end -}}

{{- define "alchemiser.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alchemiser.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image of a component; call with (dict "root" $ "component" "strategy" "repository" "" "tag" ""). */}}
{{- define "alchemiser.image" -}}
{{- $repo := .repository | default (printf "%s/%s" .root.Values.image.prefix .component) -}}
{{- $tag := .tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "alchemiser.registryUrl" -}}
{{- if .Values.registry.internal.enabled -}}
{{- printf "http://%s-registry:%d" (include "alchemiser.fullname" .) (int .Values.registry.internal.port) -}}
{{- else -}}
{{- required "registry.externalUrl is required when registry.internal.enabled is false" .Values.registry.externalUrl -}}
{{- end -}}
{{- end -}}

{{- define "alchemiser.exchangeUrl" -}}
{{- if .Values.broker.exchangeUrl -}}
{{- .Values.broker.exchangeUrl -}}
{{- else if .Values.exchange.enabled -}}
{{- printf "http://%s-exchange:%d" (include "alchemiser.fullname" .) (int .Values.exchange.port) -}}
{{- else if eq .Values.broker.kind "exchange" -}}
{{- fail "broker.kind=exchange needs exchange.enabled or broker.exchangeUrl" -}}
{{- end -}}
{{- end -}}

{{/* Chart-wide invariants. */}}
{{- define "alchemiser.validate" -}}
{{- if le (float64 .Values.terminationGracePeriodSeconds) (float64 .Values.runtime.shutdownTimeoutS) -}}
{{- fail "terminationGracePeriodSeconds must be longer than runtime.shutdownTimeoutS" -}}
{{- end -}}
{{- if and (eq .Values.broker.kind "alpaca") (not .Values.alpaca.existingSecret) -}}
{{- fail "broker.kind=alpaca needs alpaca.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.services.strategy.marketDataSource "alpaca") (not .Values.alpaca.existingSecret) -}}
{{- fail "services.strategy.marketDataSource=alpaca needs alpaca.existingSecret" -}}
{{- end -}}
{{- $smtp := .Values.services.ledger.notify.smtp -}}
{{- if $smtp.enabled -}}
{{- range $key := list "host" "sender" -}}
{{- if not (index $smtp $key) -}}
{{- fail (printf "services.ledger.notify.smtp.enabled needs services.ledger.notify.smtp.%s" $key) -}}
{{- end -}}
{{- end -}}
{{- if not $smtp.recipients -}}
{{- fail "services.ledger.notify.smtp.enabled needs at least one address in services.ledger.notify.smtp.recipients" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Is any notification channel of the ledger configured? "true" or "". */}}
{{- define "alchemiser.notifyConfigured" -}}
{{- $notify := .Values.services.ledger.notify -}}
{{- if or $notify.smtp.enabled $notify.webhook.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The ledger's notification settings (service and monthly report): plain values for the
non-secret ones, secretKeyRefs for the SMTP login and the webhook URL (it embeds a token).
Nothing at all without a channel: the ledger then sends nothing. */}}
{{- define "alchemiser.notifyEnv" -}}
{{- $notify := .Values.services.ledger.notify -}}
{{- with $notify.smtp }}
{{- if .enabled }}
- name: ALCHEMISER_NOTIFY__SMTP__HOST
  value: {{ .host | quote }}
- name: ALCHEMISER_NOTIFY__SMTP__PORT
  value: {{ .port | quote }}
- name: ALCHEMISER_NOTIFY__SMTP__STARTTLS
  value: {{ .starttls | quote }}
- name: ALCHEMISER_NOTIFY__SMTP__SENDER
  value: {{ .sender | quote }}
- name: ALCHEMISER_NOTIFY__SMTP__RECIPIENTS
  value: {{ .recipients | toJson | quote }}
{{- if .existingSecret }}
- name: ALCHEMISER_NOTIFY__SMTP__USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .usernameKey }}
- name: ALCHEMISER_NOTIFY__SMTP__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .passwordKey }}
{{- end }}
{{- end }}
{{- end }}
{{- with $notify.webhook.existingSecret }}
- name: ALCHEMISER_NOTIFY__WEBHOOK__URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $notify.webhook.urlKey }}
{{- end }}
{{- end -}}

{{/* Secret-sourced env shared by services, the CronJob and the hooks. */}}
{{- define "alchemiser.secretEnv" -}}
{{- if .Values.kafka.saslPasswordSecret.name }}
- name: ALCHEMISER_KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.saslPasswordSecret.name }}
      key: {{ .Values.kafka.saslPasswordSecret.key }}
{{- end }}
{{- if .Values.registry.basicAuthSecret.name }}
- name: ALCHEMISER_REGISTRY__BASIC_AUTH_USER_INFO
  valueFrom:
    secretKeyRef:
      name: {{ .Values.registry.basicAuthSecret.name }}
      key: {{ .Values.registry.basicAuthSecret.key }}
{{- end }}
{{- end -}}

{{/* Non-secret Kafka/registry settings as an env list (for hooks, which run before the ConfigMap exists). */}}
{{- define "alchemiser.connectionEnv" -}}
- name: ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: ALCHEMISER_KAFKA__SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- with .Values.kafka.saslMechanism }}
- name: ALCHEMISER_KAFKA__SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.saslUsername }}
- name: ALCHEMISER_KAFKA__SASL_USERNAME
  value: {{ . | quote }}
{{- end }}
- name: ALCHEMISER_REGISTRY__URL
  value: {{ include "alchemiser.registryUrl" . | quote }}
- name: ALCHEMISER_OBSERVABILITY__LOG_FORMAT
  value: {{ .Values.observability.logFormat | quote }}
- name: ALCHEMISER_TOPICS__PARTITIONS
  value: {{ .Values.topics.partitions | quote }}
- name: ALCHEMISER_TOPICS__REPLICATION_FACTOR
  value: {{ .Values.topics.replicationFactor | quote }}
{{- end -}}

{{/* Pod-level settings shared by every pod. */}}
{{- define "alchemiser.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "alchemiser.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

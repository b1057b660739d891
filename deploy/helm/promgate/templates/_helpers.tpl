{{/* promgate.name: the app.kubernetes.io/name label. */}}
{{- define "promgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* promgate.fullname: the name of the release's objects. */}}
{{- define "promgate.fullname" -}}
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

{{/* promgate.selectorLabels: what the Deployment, Service and PDB select. promgate is one per
cluster (the APIServices are), so the name is enough, as in deploy/base. */}}
{{- define "promgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "promgate.name" . }}
{{- end -}}

{{/* promgate.labels: every object's labels. */}}
{{- define "promgate.labels" -}}
{{ include "promgate.selectorLabels" . }}
app.kubernetes.io/part-of: promgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.customLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "promgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "promgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* promgate.subject: promgate's ServiceAccount as an RBAC subject. */}}
{{- define "promgate.subject" -}}
- kind: ServiceAccount
  name: {{ include "promgate.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* promgate.tlsMode: tls.mode, or what prometheus-adapter's chart keys mean. */}}
{{- define "promgate.tlsMode" -}}
{{- if .Values.tls.mode -}}
{{- .Values.tls.mode -}}
{{- else if .Values.certManager.enabled -}}
cert-manager
{{- else if .Values.tls.enable -}}
secret
{{- else -}}
generate
{{- end -}}
{{- end -}}

{{/* promgate.tlsSecretName: the Secret holding the serving certificate. */}}
{{- define "promgate.tlsSecretName" -}}
{{- if and (eq (include "promgate.tlsMode" .) "secret") .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- include "promgate.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* promgate.serviceHost: the name kube-apiserver verifies in promgate's certificate. */}}
{{- define "promgate.serviceHost" -}}
{{- include "promgate.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* promgate.config: the rules file: config/promgate.yaml as it is, or merged with
rules.custom, rules.external and rules.resource. */}}
{{- define "promgate.config" -}}
{{- $r := .Values.rules -}}
{{- $default := .Files.Get "files/promgate.yaml" -}}
{{- if and $r.default (not $r.custom) (not $r.external) (not $r.resource) (not .Values.backends) -}}
{{- $default -}}
{{- else -}}
{{- $base := dict -}}
{{- if $r.default -}}
{{- $base = fromYaml $default -}}
{{- end -}}
{{- $cfg := dict -}}
{{- $rules := concat (get $base "rules" | default list) ($r.custom | default list) -}}
{{- if $rules }}{{ $_ := set $cfg "rules" $rules }}{{ end -}}
{{- $external := concat (get $base "externalRules" | default list) ($r.external | default list) -}}
{{- if $external }}{{ $_ := set $cfg "externalRules" $external }}{{ end -}}
{{- $resource := $r.resource | default (get $base "resourceRules") -}}
{{- if $resource }}{{ $_ := set $cfg "resourceRules" $resource }}{{ end -}}
{{- if .Values.backends }}{{ $_ := set $cfg "backends" .Values.backends }}{{ end -}}
{{- toYaml $cfg -}}
{{- end -}}
{{- end -}}

{{/* promgate.configMapName: the rules ConfigMap; its name carries a hash of the rules. */}}
{{- define "promgate.configMapName" -}}
{{- if .Values.rules.existing -}}
{{- .Values.rules.existing -}}
{{- else -}}
{{- include "promgate.fullname" . }}-config-{{ include "promgate.config" . | sha256sum | trunc 10 }}
{{- end -}}
{{- end -}}

{{/* promgate.serveResource: "true" when metrics.k8s.io is served and registered: asked for,
and the rules have resourceRules (an existing ConfigMap is taken to have them). */}}
{{- define "promgate.serveResource" -}}
{{- $r := .Values.rules -}}
{{- if and .Values.apis.resource (or $r.existing $r.resource $r.default) -}}
true
{{- end -}}
{{- end -}}

{{/* promgate.apiServices: the APIServices to register, as name: [group, version, versionPriority]. */}}
{{- define "promgate.apiServices" -}}
{{- if include "promgate.serveResource" . }}
v1beta1.metrics.k8s.io: [metrics.k8s.io, v1beta1, 100]
v1.metrics.k8s.io: [metrics.k8s.io, v1, 200]
{{- end }}
{{- if .Values.apis.custom }}
v1beta1.custom.metrics.k8s.io: [custom.metrics.k8s.io, v1beta1, 100]
v1beta2.custom.metrics.k8s.io: [custom.metrics.k8s.io, v1beta2, 200]
{{- end }}
{{- if .Values.apis.external }}
v1beta1.external.metrics.k8s.io: [external.metrics.k8s.io, v1beta1, 100]
{{- end }}
{{- end -}}

{{/* promgate.prometheusURL: --prometheus-url, as prometheus-adapter's chart builds it. */}}
{{- define "promgate.prometheusURL" -}}
{{- $p := .Values.prometheus -}}
{{- tpl $p.url . }}{{ with $p.port }}:{{ . }}{{ end }}{{ $p.path }}
{{- end -}}

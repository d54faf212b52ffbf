{{/*
The chart's name, truncated to 63 characters (a DNS label).
*/}}
{{- define "drishti.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The base of resource names: fullnameOverride, else the release name (when it contains the chart's name), else
`<release>-<chart>`; truncated to 54 characters so that `-operator` still fits a DNS label.
*/}}
{{- define "drishti.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of the operator's Deployment, ServiceAccount, roles and Service.
*/}}
{{- define "drishti.operator.fullname" -}}
{{- printf "%s-operator" (include "drishti.fullname" .) }}
{{- end }}

{{- define "drishti.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The standard labels of one part of the release: (dict "root" $ "name" "<app name>" "component" "<component>").
*/}}
{{- define "drishti.labels" -}}
helm.sh/chart: {{ include "drishti.chart" .root }}
{{- with .name }}
app.kubernetes.io/name: {{ . }}
{{- end }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: drishti
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
The operator's selector labels: they never change for the life of the release.
*/}}
{{- define "drishti.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drishti.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drishti.operator.labels" -}}
{{ include "drishti.labels" (dict "root" . "name" (printf "%s-operator" (include "drishti.name" .)) "component" "operator") }}
{{- end }}

{{- define "drishti.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "drishti.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: the digest wins, the tag defaults to the appVersion.
*/}}
{{- define "drishti.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "drishti.operator.image" -}}
{{- include "drishti.image" (list .Values.operator.image .) }}
{{- end }}

{{- define "drishti.camera.image" -}}
{{- include "drishti.image" (list .Values.camera.image .) }}
{{- end }}

{{/*
The namespaces the operator serves, as a list; empty means every namespace.
*/}}
{{- define "drishti.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "namespaced" }}
{{- $namespaces := .Values.watchNamespaces | default (list .Release.Namespace) }}
{{- toJson (uniq $namespaces) }}
{{- else }}
{{- toJson list }}
{{- end }}
{{- end }}

{{/*
The operator's RBAC rules, read from files/operator-rbac.yaml: the objects of the operator's own rbac.yaml
(operator/drishti_operator/rbac.yaml), kept identical by `make manifests` and checked by the tests.
Returns {"all": [...], "cluster": [...], "namespaced": [...]} as JSON, the rules split by the scope of their
resources.
*/}}
{{- define "drishti.rbacRules" -}}
{{- $rules := list }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.Files.Get "files/operator-rbac.yaml") -1 }}
{{- $object := fromYaml $doc }}
{{- if eq (get $object "kind") "ClusterRole" }}
{{- $rules = $object.rules }}
{{- end }}
{{- end }}
{{- if not $rules }}
{{- fail "files/operator-rbac.yaml has no ClusterRole with rules: regenerate it with `make manifests`" }}
{{- end }}
{{- $clusterScoped := list "customresourcedefinitions" "namespaces" }}
{{- $cluster := list }}
{{- $namespaced := list }}
{{- range $rule := $rules }}
{{- $isCluster := false }}
{{- range $resource := $rule.resources }}
{{- if has $resource $clusterScoped }}
{{- $isCluster = true }}
{{- end }}
{{- end }}
{{- if $isCluster }}
{{- $cluster = append $cluster $rule }}
{{- else }}
{{- $namespaced = append $namespaced $rule }}
{{- end }}
{{- end }}
{{- toJson (dict "all" $rules "cluster" $cluster "namespaced" $namespaced) }}
{{- end }}

{{/*
The port a camera listens on and its Service exposes: spec.port, else the camera's default (the settings
model's server.port default; a test keeps them equal).
*/}}
{{- define "drishti.camera.port" -}}
{{- (.spec).port | default 8000 }}
{{- end }}

{{- define "drishti.camera.namespace" -}}
{{- .camera.namespace | default .root.Release.Namespace }}
{{- end }}

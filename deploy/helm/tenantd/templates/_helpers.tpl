{{/* Name of the chart, or nameOverride. */}}
{{- define "tenantd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name: the release name when it already contains the chart name, else
<release>-<chart>. Cluster-scoped objects (ClusterRoles) carry it, so two releases never clash.
*/}}
{{- define "tenantd.fullname" -}}
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

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "tenantd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tenantd.labels" -}}
{{ include "tenantd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "tenantd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tenantd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The ClusterRole bound in each tenant namespace (and the name of that RoleBinding). */}}
{{- define "tenantd.tenantRoleName" -}}
{{- printf "%s-tenant" (include "tenantd.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tenantd.claimName" -}}
{{- default (printf "%s-data" (include "tenantd.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{- define "tenantd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{/* Combinations the daemon cannot run with: fail at render time, saying why. */}}
{{- define "tenantd.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled: two daemons without it would both reconcile and commit" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.enabled (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail "replicaCount > 1 shares one data dir: persistence.accessModes must include ReadWriteMany (a standby reads the leader's state)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.persistence.enabled) -}}
{{- fail "replicaCount > 1 needs persistence.enabled: the replicas share the data dir on one ReadWriteMany volume" -}}
{{- end -}}
{{- end -}}

{{/* Whether tenantd binds its tenant role per namespace (the chart's RBAC for the kubernetes provider). */}}
{{- define "tenantd.tenantRoleEnabled" -}}
{{- if and .Values.rbac.create (eq .Values.provider "kubernetes") -}}true{{- end -}}
{{- end -}}

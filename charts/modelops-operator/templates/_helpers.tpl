{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "modelops-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed to the chart name unless it already contains it. */}}
{{- define "modelops-operator.fullname" -}}
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

{{/* Labels that select the operator Pods (stable across upgrades). */}}
{{- define "modelops-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelops-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Recommended labels on every object of the release. */}}
{{- define "modelops-operator.labels" -}}
{{ include "modelops-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: modelops
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "modelops-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelops-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest, or repository:tag (appVersion by default). */}}
{{- define "modelops-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* kopf's arguments after `kopf run`: module, liveness, logging, namespaces, peering. */}}
{{- define "modelops-operator.kopfArgs" -}}
- -m
- modelops_operator.handlers
- --liveness=http://0.0.0.0:{{ .Values.liveness.port }}{{ .Values.liveness.path }}
- --log-format={{ .Values.logFormat }}
{{- if .Values.verbose }}
- --verbose
{{- end }}
{{- if .Values.watch.namespaces }}
{{- range .Values.watch.namespaces }}
- --namespace={{ . }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- if .Values.peering.enabled }}
- --peering={{ .Values.peering.name }}
{{- if .Values.peering.priority }}
- --priority={{ .Values.peering.priority }}
{{- end }}
{{- else }}
- --standalone
{{- end }}
{{- end }}

{{/* Namespaced rules: what the operator does inside a watched namespace (docs/rbac.md explains each). */}}
{{- define "modelops-operator.namespacedRules" -}}
# ModelDeployments: kopf lists and watches them and patches its annotations and finalizer.
- apiGroups: ["modelops.dev"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
# The status subresource: conditions, resolved versions, URL.
- apiGroups: ["modelops.dev"]
  resources: ["modeldeployments/status"]
  verbs: ["get", "patch"]
# Children carry blockOwnerDeletion owner references, which need this where the
# OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups: ["modelops.dev"]
  resources: ["modeldeployments/finalizers"]
  verbs: ["update"]
# Children: server-side apply (patch; the API server also asks for create when the object is new) and
# watch, to restore them. The Deployment and Service go with their owner (garbage collection); the
# Ingress and HPA are deleted when the spec drops them, a failed build Job when the spec changes, a
# canary's Deployment (<name>-canary) when the canary is promoted, rolled back or dropped.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Services: the one in front of the pods goes with its owner; with spec.route, the stable and canary
# Services the HTTPRoute weighs are deleted when the route or the canary ends.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# spec.podMonitor: the Prometheus Operator's PodMonitor (not watched: the CRD may be missing, and then the
# operator only reports that in PodMonitorReady).
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["get", "create", "patch", "delete"]
# spec.route: a Gateway API HTTPRoute instead of the Ingress (not watched: the CRD may be missing).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "create", "patch", "delete"]
# ingressController=traefik: Traefik's retry Middleware beside each Ingress (not watched either).
- apiGroups: ["traefik.io"]
  resources: ["middlewares"]
  verbs: ["get", "create", "patch", "delete"]
# The serving pods, read only: kopf watches those with the operator's labels (a label selector on the
# stream) and the operator lists a not-yet-available Deployment's pods and ReplicaSets to name a failing
# pod (crash loop, image pull) in the status.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list"]
# Registry credentials named in a spec: read one by name, never list or watch Secrets.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# status.drift: the ready pods behind a ModelDeployment's Service, whose /metrics the operator reads.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list"]
# kopf reports warnings and errors as Events on the ModelDeployment; the operator a canary's steps and
# decisions.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* promotion.verificationNamespaces as MODELOPS_VERIFICATION_NAMESPACES: staging=ns-a,ns-b;qa=* */}}
{{- define "modelops-operator.verificationNamespaces" -}}
{{- $entries := list -}}
{{- range $environment, $namespaces := . -}}
{{- $entries = append $entries (printf "%s=%s" $environment (join "," $namespaces)) -}}
{{- end -}}
{{- join ";" $entries -}}
{{- end -}}

{{/* registry.writeSecrets as MODELOPS_REGISTRY_WRITE_SECRETS: host=secret;... */}}
{{- define "modelops-operator.writeSecrets" -}}
{{- $entries := list -}}
{{- range $host, $secret := . -}}
{{- $entries = append $entries (printf "%s=%s" $host $secret) -}}
{{- end -}}
{{- join ";" $entries -}}
{{- end -}}

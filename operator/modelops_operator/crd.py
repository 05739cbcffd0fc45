"""The ModelDeployment CRD: the schema lives here; the YAML under crds/ and in the chart is generated from it.

python -m modelops_operator.crd --write   # regenerate crds/ and charts/modelops-operator/crds/
python -m modelops_operator.crd --check   # exit 1 when a generated copy differs (CI, tests)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from modelops_operator.resource import (
    CATEGORIES,
    CRD_NAME,
    DRIFT_STATES,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from modelops_operator.spec import (
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    POD_MONITOR_ENABLED,
    Autoscaling,
    Build,
    Canary,
    CanaryThresholds,
    DeploymentSpec,
    Image,
    Ingress,
    PodMonitor,
    Promotion,
    Route,
    Serving,
    Verification,
)

__all__ = ["CRD_NAME", "GROUP", "KIND", "PLURAL", "VERSION", "render_crd", "spec_schema"]
CRD_FILENAME = f"{GROUP}_{PLURAL}.yaml"
# Where the generated copies live, relative to the repository root.
CRD_TARGETS = (Path("crds") / CRD_FILENAME, Path("charts/modelops-operator/crds") / CRD_FILENAME)

STAGES = ["Staging", "Production"]
VERSION_PATTERN = r"^[0-9]+$"
# MLflow aliases: a letter or underscore first; "latest" and "v<digits>" are reserved by MLflow.
ALIAS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
IMAGE_PATTERN = r"^[^\s]+$"
MAX_REPLICAS = 100
# A label value: at most 63 characters, alphanumeric at both ends (keys are checked by the API server).
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_POD_METADATA_ENTRIES = 64
# An environment name: part of a registry tag key (modelops.verified.<environment>).
ENVIRONMENT_PATTERN = r"^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$"


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _int(description: str, minimum: int, maximum: int, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, "minimum": minimum, "maximum": maximum, **extra}


def _bool(description: str, default: bool) -> dict[str, Any]:
    return {"type": "boolean", "description": description, "default": default}


def _secret_ref(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["name"],
        "properties": {
            "name": _str("Secret name in the same namespace.", maxLength=253, pattern=DNS_SUBDOMAIN_PATTERN)
        },
    }


def _model_ref(role: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"The {role} model: a registered model name with either a version or an alias.",
        "required": ["name"],
        "properties": {
            "name": _str("Registered model name in MLflow.", pattern=MODEL_NAME_PATTERN),
            "version": _str("Model version (digits).", pattern=VERSION_PATTERN, maxLength=20),
            "alias": _str("Registry alias resolved to a version (e.g. champion).", pattern=ALIAS_PATTERN),
        },
        "x-kubernetes-validations": [
            {
                "rule": "has(self.version) != has(self.alias)",
                "message": "exactly one of version or alias must be set",
                "reason": "FieldValueInvalid",
            }
        ],
    }


def _quantity_map(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        },
    }


def _string_map(description: str, **value: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "maxProperties": MAX_POD_METADATA_ENTRIES,
        "additionalProperties": {"type": "string", **value},
    }


def _registry_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The MLflow registry the models are resolved in and written back to.",
        "required": ["trackingUri"],
        "properties": {
            "trackingUri": _str(
                "MLflow tracking URI (http(s)://... or databricks).",
                pattern=r"^(https?://[^\s]+|databricks(://[^\s]*)?)$",
                maxLength=2048,
            ),
            "credentialsSecret": _secret_ref(
                "Secret with MLflow's own variable names as keys: MLFLOW_TRACKING_TOKEN, "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, DATABRICKS_HOST/DATABRICKS_TOKEN."
            ),
        },
    }


def _models_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The three registered models served together.",
        "required": ["predictor", "drift", "outlier"],
        "properties": {
            "predictor": _model_ref("prediction"),
            "drift": _model_ref("drift detector"),
            "outlier": _model_ref("outlier detector"),
        },
    }


def _image_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A service image to pull (loads models at start-up) or an in-cluster build.",
        "properties": {
            "reference": _str("Generic service image to run.", pattern=IMAGE_PATTERN, maxLength=512),
            "pullPolicy": _str(
                "Image pull policy.", enum=["Always", "IfNotPresent", "Never"], default=Image.pull_policy
            ),
            "pullSecrets": {
                "type": "array",
                "description": "Image pull Secrets.",
                "maxItems": 16,
                "items": _secret_ref("A docker-registry Secret."),
            },
            "build": {
                "type": "object",
                "description": "Bake the resolved models into an image with a Job (modelops-bake: the base "
                "image plus one layer of models, pushed; no root, no daemon).",
                "required": ["repository", "baseImage"],
                "properties": {
                    "repository": _str(
                        "Target repository; the tag is derived from the resolved versions.",
                        pattern=r"^[^\s:@]+(:[0-9]+)?(/[^\s:@]+)*$",
                        maxLength=400,
                    ),
                    "baseImage": _str(
                        "Generic service image the models are baked onto.",
                        pattern=IMAGE_PATTERN,
                        maxLength=512,
                    ),
                    "pushSecret": _secret_ref("docker config Secret (.dockerconfigjson) to push with."),
                    "builderImage": _str(
                        "Builder image.",
                        pattern=IMAGE_PATTERN,
                        default=Build.builder_image,
                    ),
                    "timeoutSeconds": _int("Build deadline.", 60, 86400, default=Build.timeout_seconds),
                    "resources": {
                        "type": "object",
                        "description": "Resources of both build containers, merged over their defaults "
                        "(download: 100m/256Mi requested, 1Gi limit; builder: 500m/512Mi, 2Gi) key by key.",
                        "properties": {
                            "requests": _quantity_map("Requested resources."),
                            "limits": _quantity_map("Resource limits."),
                        },
                    },
                    "pinDigest": _bool(
                        "Run the built image by its digest (repository@sha256:...), not its tag.",
                        Build.pin_digest,
                    ),
                },
            },
        },
        "x-kubernetes-validations": [
            {
                "rule": "has(self.reference) != has(self.build)",
                "message": "exactly one of reference or build must be set",
                "reason": "FieldValueInvalid",
            }
        ],
    }


def _autoscaling_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A HorizontalPodAutoscaler instead of a fixed replica count.",
        "required": ["minReplicas", "maxReplicas"],
        "properties": {
            "minReplicas": _int("Lower bound.", 1, MAX_REPLICAS),
            "maxReplicas": _int("Upper bound.", 1, MAX_REPLICAS),
            "targetCPUUtilizationPercentage": _int("CPU target.", 1, 100, default=Autoscaling.target_cpu),
        },
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas > maxReplicas"}
        ],
    }


def _resources_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Container resources, merged over the defaults (250m/512Mi requested, 1Gi memory "
        'limit) key by key; an empty value ("") drops that default.',
        "properties": {
            "requests": _quantity_map("Requested resources."),
            "limits": _quantity_map("Resource limits."),
        },
    }


def _serving_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Settings passed to the service through its environment.",
        "properties": {
            "serviceName": _str(
                "Name used in the service's log lines.",
                pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,62}$",
                default=Serving.service_name,
            ),
            "monitoring": _bool("Run the drift and outlier detectors per request.", Serving.monitoring),
            "logInputs": _bool("Log request inputs.", Serving.log_inputs),
            "driftWindowSize": _int(
                "Rows in the drift window.", 10, 1_000_000, default=Serving.drift_window_size
            ),
            "driftWindowMinRows": _int(
                "Rows before the window is tested.",
                1,
                1_000_000,
                default=Serving.drift_window_min_rows,
            ),
            "maxRows": _int("Rows per request.", 1, 1_000_000, default=Serving.max_rows),
            "maxBodyBytes": _int("Request body limit.", 1024, 1 << 30, default=Serving.max_body_bytes),
            "maxConcurrency": _int(
                "Requests one pod works on at once; more are answered 503 with Retry-After.",
                1,
                10_000,
                default=Serving.max_concurrency,
            ),
        },
    }


def _ingress_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Expose the service through an Ingress.",
        "required": ["host"],
        "properties": {
            "className": _str("IngressClass name.", maxLength=253, pattern=DNS_SUBDOMAIN_PATTERN),
            "host": _str("Host name.", maxLength=253, pattern=HOST_PATTERN),
            "path": _str("Path prefix.", pattern=r"^/[^\s]*$", default=Ingress.path),
            "tls": {
                "type": "object",
                "description": "TLS with a certificate Secret.",
                "required": ["secretName"],
                "properties": {
                    "secretName": _str("TLS Secret.", maxLength=253, pattern=DNS_SUBDOMAIN_PATTERN)
                },
            },
            "annotations": {
                "type": "object",
                "description": "Annotations for the Ingress (e.g. for the controller).",
                "additionalProperties": {"type": "string"},
            },
        },
    }


def _route_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A Gateway API HTTPRoute (gateway.networking.k8s.io/v1) instead of the Ingress: "
        "while a canary runs, its weight splits the traffic exactly between a stable and a canary Service.",
        "required": ["gateway"],
        "properties": {
            "gateway": {
                "type": "object",
                "description": "The Gateway the route attaches to (its parentRef).",
                "required": ["name"],
                "properties": {
                    "name": _str("The Gateway's name.", pattern=DNS_SUBDOMAIN_PATTERN, maxLength=253),
                    "namespace": _str(
                        "The Gateway's namespace (default: this one).",
                        pattern=DNS_LABEL_PATTERN,
                        maxLength=63,
                    ),
                    "sectionName": _str(
                        "One listener of the Gateway.", pattern=DNS_LABEL_PATTERN, maxLength=63
                    ),
                },
            },
            "hostnames": {
                "type": "array",
                "description": "Host names the route matches (none: the Gateway's listeners decide).",
                "maxItems": 16,
                "items": _str("A host name.", pattern=HOST_PATTERN, maxLength=253),
            },
            "path": _str("Path prefix.", pattern=r"^/[^\s]*$", maxLength=1024, default=Route.path),
        },
    }


def _pod_metadata_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Labels and annotations added to the serving pods; the operator's own "
        "selector and app.kubernetes.io/* labels and its annotations win on a shared key.",
        "properties": {
            "labels": _string_map("Pod labels.", maxLength=63, pattern=LABEL_VALUE_PATTERN),
            "annotations": _string_map("Pod annotations."),
        },
    }


def _pod_monitor_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A Prometheus Operator PodMonitor for the serving pods (needs the "
        "monitoring.coreos.com CRDs; without them the PodMonitorReady condition says so and "
        "the pods keep their prometheus.io/* annotations).",
        "properties": {
            "enabled": _bool("Create the PodMonitor.", POD_MONITOR_ENABLED),
            "interval": _str(
                "Scrape interval.",
                pattern=r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$",
                default=PodMonitor.interval,
            ),
            "labels": _string_map(
                "Labels on the PodMonitor (for the Prometheus podMonitorSelector, e.g. release).",
                maxLength=63,
                pattern=LABEL_VALUE_PATTERN,
            ),
        },
    }


def _verification_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Verify the versions here (a staging deployment): once Ready for the current "
        "generation for soakSeconds, with no failing pods and (with monitoring) no window drift, "
        "record it in the registry as the version tag modelops.verified.<environment>. Drift or "
        "failing pods restart the soak. See docs/promotion.md.",
        "required": ["environment"],
        "properties": {
            "environment": _str("Name of this environment, e.g. staging.", pattern=ENVIRONMENT_PATTERN),
            "soakSeconds": _int(
                "How long the versions must serve well.", 0, 30 * 86400, default=Verification.soak_seconds
            ),
            "requireDriftFree": _bool(
                "Restart the soak while the pods' windows drift.", Verification.require_drift_free
            ),
        },
    }


def _gate_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Roll out only versions verified elsewhere (a production deployment): a "
        "resolved version without the registry record of every listed environment is not rolled "
        "out (PromotionAllowed=False, AwaitingVerification; the pods keep what they serve) until "
        "the record appears.",
        "required": ["requireVerifiedIn"],
        "properties": {
            "requireVerifiedIn": {
                "type": "array",
                "description": "Environments (their spec.verification.environment) that must have "
                "verified every version.",
                "minItems": 1,
                "maxItems": 8,
                "items": _str("An environment name.", pattern=ENVIRONMENT_PATTERN),
            },
        },
    }


def _number(description: str, minimum: float, maximum: float, default: float | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": "number",
        "description": description,
        "minimum": minimum,
        "maximum": maximum,
    }
    if default is not None:
        found["default"] = default
    return found


def _canary_thresholds_schema() -> dict[str, Any]:
    t = CanaryThresholds
    return {
        "type": "object",
        "description": "What every analysis interval must meet once the canary has minRequests; a check "
        "left out is off unless it has a default.",
        "properties": {
            "maxErrorRate": _number(
                "Highest 5xx share of the canary's model requests.", 0, 1, t.max_error_rate
            ),
            "maxLatencyP99Ms": _number("Highest canary p99 latency in ms.", 0, 600_000, t.max_latency_p99_ms),
            "maxOutlierRate": _number("Highest share of rows flagged as outliers.", 0, 1, t.max_outlier_rate),
            "driftFree": _bool("Fail while a canary pod's drift window drifts.", t.drift_free),
            "maxLatencyRatio": _number("Highest canary p99 / stable p99.", 1, 1000, t.max_latency_ratio),
            "maxOutlierRateDelta": _number(
                "Highest canary outlier share minus the stable one.", 0, 1, t.max_outlier_rate_delta
            ),
            "maxPredictionShift": _number(
                "Highest total variation distance between the canary's and the stable pods' predicted "
                "class shares (0: the same distribution, 1: disjoint).",
                0,
                1,
                t.max_prediction_shift,
            ),
        },
    }


def _canary_schema() -> dict[str, Any]:
    c = Canary
    roles = ("predictor", "drift", "outlier")
    return {
        "type": "object",
        "description": "A challenger given a share of the traffic, analysed on its pods' /metrics every "
        "intervalSeconds against thresholds, promoted (promoteAlias moved to its versions) or rolled back "
        "(its versions tagged modelops.rejected.<environment>). See docs/canary.md.",
        "required": ["models"],
        "properties": {
            "models": {
                "type": "object",
                "description": "The challenger's models; a role left out keeps the stable one.",
                "minProperties": 1,
                "properties": {role: _model_ref(role) for role in roles},
            },
            "weight": _int("Traffic share of the last step, in percent.", 1, 99, default=c.weight),
            "steps": {
                "type": "array",
                "description": "Shares before weight, rising, each held stepSeconds.",
                "maxItems": 10,
                "items": {"type": "integer", "minimum": 1, "maximum": 98},
            },
            "stepSeconds": _int("How long each of steps is held.", 10, 86400, default=c.step_seconds),
            "analysisSeconds": _int(
                "How long the last step is held before promotion.", 10, 7 * 86400, default=c.analysis_seconds
            ),
            "intervalSeconds": _int("Seconds between analyses.", 5, 3600, default=c.interval_seconds),
            "minRequests": _int(
                "Canary model requests before any check judges.", 1, 10_000_000, default=c.min_requests
            ),
            "failureLimit": _int(
                "Consecutive failed analyses that roll the canary back.", 1, 100, default=c.failure_limit
            ),
            "promoteAlias": _str(
                "Alias moved to the challenger's versions on success.",
                pattern=ALIAS_PATTERN,
                default=c.promote_alias,
            ),
            "environment": _str(
                "Environment of the registry records (modelops.canary.<environment>, "
                "modelops.rejected.<environment>); default: spec.verification.environment.",
                pattern=ENVIRONMENT_PATTERN,
            ),
            "thresholds": _canary_thresholds_schema(),
        },
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.steps) || self.steps.all(s, s < self.weight)",
                "message": "every step must be below weight",
                "reason": "FieldValueInvalid",
            }
        ],
    }


def _promotion_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "How the registry records the deployment.",
        "properties": {
            "alias": _str("Alias to point at the deployed versions.", pattern=ALIAS_PATTERN),
            "archiveExistingVersions": _bool(
                "Archive other versions in the stage.", Promotion.archive_existing_versions
            ),
        },
    }


def spec_schema() -> dict[str, Any]:
    """The OpenAPI v3 schema of .spec."""
    return {
        "type": "object",
        "required": ["registry", "models", "image"],
        "x-kubernetes-validations": [
            {
                "rule": "!(has(self.ingress) && has(self.route))",
                "message": "route replaces the Ingress: set one of ingress and route",
                "reason": "FieldValueInvalid",
            }
        ],
        "properties": {
            "registry": _registry_schema(),
            "models": _models_schema(),
            "image": _image_schema(),
            "replicas": _int(
                "Pod count (ignored when autoscaling is set).",
                0,
                MAX_REPLICAS,
                default=DeploymentSpec.replicas,
            ),
            "autoscaling": _autoscaling_schema(),
            "resources": _resources_schema(),
            "serving": _serving_schema(),
            "ingress": _ingress_schema(),
            "route": _route_schema(),
            "podMetadata": _pod_metadata_schema(),
            "podMonitor": _pod_monitor_schema(),
            "progressDeadlineSeconds": _int(
                "Seconds a rollout may make no progress before it is reported Stalled "
                "(ProgressDeadlineExceeded).",
                10,
                86400,
                default=DEFAULT_PROGRESS_DEADLINE_SECONDS,
            ),
            "verification": _verification_schema(),
            "gate": _gate_schema(),
            "stage": _str("Registry stage to move the versions to once available.", enum=STAGES),
            "promotion": _promotion_schema(),
            "canary": _canary_schema(),
        },
    }


def _condition_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }


def _resolved_model_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("name", "version", "alias", "runId", "source", "uri")},
    }


def _drift_status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Drift in the serving pods' windows of recent rows, read from their /metrics.",
        "properties": {
            "state": {"type": "string", "enum": list(DRIFT_STATES)},
            "summary": {"type": "string", "description": "The state and drifted features (printer column)."},
            "features": {"type": "array", "items": {"type": "string"}, "description": "Drifted features."},
            "minPValue": {"type": "number", "description": "Lowest feature p-value of the window tests."},
            "windowRows": {"type": "integer", "description": "Rows in the pods' windows together."},
            "pods": {"type": "string", "description": "Pods that answered / ready pods asked."},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
    }


def _build_status_schema(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "image": {"type": "string"},
            "digest": {"type": "string"},
            "reason": {"type": "string", "description": "ImageBuilt, or ImageReused (found)."},
            "failed": {"type": "string"},
            "message": {"type": "string"},
            "generation": {"type": "integer"},
        },
    }


def _canary_status_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "The canary of spec.canary (kept here so that it survives restarts).",
        "properties": {
            "key": _str("The challenger's versions."),
            "phase": {"type": "string", "enum": ["Progressing", "Promoted", "RolledBack"]},
            "step": {"type": "integer", "description": "Index of the current step (the weight last)."},
            "startedAt": text,
            "stepStartedAt": text,
            "analyzedAt": text,
            "failures": {"type": "integer", "description": "Consecutive failed analyses."},
            "analysis": {
                "type": "object",
                "description": "The latest analysis' measured values (canary and stable).",
                "properties": {
                    "requests": {"type": "integer"},
                    "stableRequests": {"type": "integer"},
                    **{
                        key: text
                        for key in (
                            "errorRate",
                            "latencyP99Ms",
                            "stableLatencyP99Ms",
                            "outlierRate",
                            "stableOutlierRate",
                            "predictionShift",
                            "drift",
                            "pods",
                        )
                    },
                },
            },
            "failed": {
                "type": "object",
                "description": "The check that failed last: its value and threshold.",
                "properties": {"check": text, "value": text, "threshold": text},
            },
            "decidedAt": text,
            "recorded": {"type": "boolean", "description": "The decision is written to the registry."},
            "draining": {
                "type": "boolean",
                "description": "The route has dropped the canary; its pods go on the next pass.",
            },
            "message": text,
            "models": {
                "type": "object",
                "properties": {role: _resolved_model_schema() for role in ("predictor", "drift", "outlier")},
            },
            "stablePods": {"type": "integer"},
            "canaryPods": {"type": "integer"},
            "share": {"type": "integer", "description": "The canary's share of the pods, in percent."},
            "summary": _str("The printer column."),
        },
    }


def status_schema() -> dict[str, Any]:
    """The OpenAPI v3 schema of .status (kstatus conventions)."""
    return {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer"},
            "conditions": {
                "type": "array",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "models": {
                "type": "object",
                "properties": {role: _resolved_model_schema() for role in ("predictor", "drift", "outlier")},
            },
            "resolvedGeneration": {
                "type": "integer",
                "description": "Generation the models were resolved for.",
            },
            "trainingRunId": {"type": "string"},
            "image": {"type": "string"},
            "imageDigest": _str("The digest of the image the pods run (sha256:...), when known."),
            "build": _build_status_schema(
                "The last build: its derived tag and the digest pushed, or why it failed (final for that "
                "generation)."
            ),
            "canaryBuild": _build_status_schema(
                "The canary challenger's build (spec.image.build with spec.canary), as build is the stable's."
            ),
            "url": {"type": "string"},
            "replicas": {"type": "integer"},
            "readyReplicas": {"type": "integer"},
            "selector": {"type": "string"},
            "readyMessage": {
                "type": "string",
                "description": "The Ready condition's message (printer column).",
            },
            "registrySyncedKey": {"type": "string", "description": "What was last written to the registry."},
            "drift": _drift_status_schema(),
            "canary": _canary_status_schema(),
            "verification": {
                "type": "object",
                "description": "The soak of spec.verification (kept here so that it survives restarts).",
                "properties": {
                    "environment": {"type": "string"},
                    "key": {"type": "string", "description": "Generation, image and versions soaked."},
                    "generation": {"type": "integer"},
                    "since": {"type": "string", "format": "date-time", "nullable": True},
                    "verifiedAt": {"type": "string", "format": "date-time"},
                },
            },
        },
    }


def printer_columns() -> list[dict[str, Any]]:
    """Columns of `kubectl get modeldeployments` (priority 1: only with -o wide)."""
    return [
        {"name": "Model", "type": "string", "jsonPath": ".spec.models.predictor.name"},
        {"name": "Version", "type": "string", "jsonPath": ".status.models.predictor.version"},
        {"name": "Stage", "type": "string", "jsonPath": ".spec.stage"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Message", "type": "string", "jsonPath": ".status.readyMessage"},
        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Image", "type": "string", "jsonPath": ".status.image", "priority": 1},
        {"name": "Digest", "type": "string", "jsonPath": ".status.imageDigest", "priority": 1},
        {"name": "Drift", "type": "string", "jsonPath": ".status.drift.summary", "priority": 1},
        {"name": "Canary", "type": "string", "jsonPath": ".status.canary.summary", "priority": 1},
    ]


def version_entry() -> dict[str, Any]:
    """The one served and stored version: schema, status and scale subresources, printer columns."""
    return {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": "Registered MLflow models served by BentoML, monitored.",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec_schema(),
                    "status": status_schema(),
                },
                # Child Services are named after the resource: a DNS-1035 label.
                "x-kubernetes-validations": [
                    {
                        "rule": f"self.metadata.name.matches('{DNS_LABEL_PATTERN}') "
                        "&& size(self.metadata.name) <= 52",
                        "message": "metadata.name must be a DNS-1035 label of <= 52 characters",
                    }
                ],
            }
        },
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        "additionalPrinterColumns": printer_columns(),
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {
                "app.kubernetes.io/name": "modelops-operator",
                "app.kubernetes.io/part-of": "modelops",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [version_entry()],
        },
    }


def render_crd() -> str:
    """The CRD as the YAML text written to disk."""
    header = "# Generated from modelops_operator/crd.py by `python -m modelops_operator.crd --write`.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)


def repo_root() -> Path:
    """The checkout this package lives in (operator/modelops_operator/crd.py -> repository root)."""
    return Path(__file__).resolve().parents[2]


def stale_targets(root: Path) -> list[Path]:
    """Generated copies under root that are missing or differ from the schema."""
    text = render_crd()
    return [root / t for t in CRD_TARGETS if not (root / t).is_file() or (root / t).read_text() != text]


def write_targets(root: Path) -> list[Path]:
    """Write every generated copy; return the paths written."""
    written = []
    for target in CRD_TARGETS:
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_crd())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI: print, write or check the generated CRD."""
    parser = argparse.ArgumentParser(prog="python -m modelops_operator.crd", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write crds/ and the chart's crds/")
    group.add_argument("--check", action="store_true", help="exit 1 when a generated copy is stale")
    parser.add_argument("--root", type=Path, default=repo_root(), help="repository root")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_targets(args.root):
            print(f"wrote {path}")  # noqa: T201
        return 0
    if args.check:
        stale = stale_targets(args.root)
        for path in stale:
            print(f"stale: {path} (run python -m modelops_operator.crd --write)", file=sys.stderr)  # noqa: T201
        return 1 if stale else 0
    sys.stdout.write(render_crd())
    return 0


if __name__ == "__main__":
    sys.exit(main())

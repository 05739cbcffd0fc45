"""The Deployment running the model server, configured through the service's environment contract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import modelops_contract as contract
from modelops_operator.builders.common import (
    HTTP_PORT_NAME,
    SERVICE_PORT,
    child_metadata,
    common_labels,
    credential_env,
    pull_secrets,
    selector_labels,
)
from modelops_operator.canary import CANARY, STABLE, TRACK_LABEL, canary_name
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import DeploymentSpec

CONTAINER_NAME = "model-server"
PRE_STOP_SECONDS = 5
RUN_AS_USER = 10001


def build_env(spec: DeploymentSpec, models: Mapping[str, ResolvedModel], baked: bool) -> list[dict[str, Any]]:
    """The container environment per the service contract (credentials by secretKeyRef, never inline).

    A built image carries its models and sets their URIs itself: its pods never call the registry, so
    they get neither its address nor its credentials."""
    env: list[dict[str, Any]] = []
    if not baked:
        env += [{"name": contract.TRACKING_URI, "value": spec.registry.tracking_uri}]
        env += credential_env(spec)
        env += [{"name": contract.MODEL_URI[role], "value": models[role].uri} for role in contract.ROLES]
    serving = spec.serving
    env += [
        {"name": contract.SERVICE_NAME, "value": serving.service_name},
        {"name": contract.MONITORING_ENABLED, "value": contract.flag(serving.monitoring)},
        {"name": contract.LOG_INPUTS, "value": contract.flag(serving.log_inputs)},
        {"name": contract.DRIFT_WINDOW_SIZE, "value": str(serving.drift_window_size)},
        {"name": contract.DRIFT_WINDOW_MIN_ROWS, "value": str(serving.drift_window_min_rows)},
        {"name": contract.MAX_ROWS, "value": str(serving.max_rows)},
        {"name": contract.MAX_BODY_BYTES, "value": str(serving.max_body_bytes)},
        {"name": contract.MAX_CONCURRENCY, "value": str(serving.max_concurrency)},
        {"name": "OMP_NUM_THREADS", "value": "1"},
    ]
    env += [{"name": key, "value": value} for key, value in contract.SCRATCH_ENV.items()]
    return env


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def models_annotation(models: Mapping[str, ResolvedModel]) -> str:
    """A readable record of the served versions, e.g. wine_quality/3,wine_quality_drift/3,..."""
    return ",".join(f"{m.name}/{m.version}" for m in models.values())


def serving_container(
    spec: DeploymentSpec, models: Mapping[str, ResolvedModel], image: str, baked: bool
) -> dict[str, Any]:
    """The model server container: probes on the contract's paths, read-only root, no privileges."""
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": spec.image.pull_policy,
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": SERVICE_PORT, "protocol": "TCP"}],
        "env": build_env(spec, models, baked),
        "resources": {kind: dict(values) for kind, values in spec.resources.items() if values},
        "startupProbe": _probe(contract.LIVENESS_PATH, 5, 60),
        "livenessProbe": _probe(contract.LIVENESS_PATH, 10, 3),
        "readinessProbe": _probe(contract.READINESS_PATH, 5, 3),
        # Endpoints controllers and Ingress controllers learn of a terminating pod asynchronously: keep
        # serving a few seconds after the pod is marked for deletion, so no request meets a closed port.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": contract.SCRATCH_DIR}],
    }


def pod_template(
    spec: DeploymentSpec, models: Mapping[str, ResolvedModel], name: str, container: dict[str, Any]
) -> dict[str, Any]:
    """The pod template: the user's podMetadata first, then the operator's labels and annotations."""
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "terminationGracePeriodSeconds": PRE_STOP_SECONDS + 25,
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
        **pull_secrets(spec),
    }
    # The operator's selector, recommended labels and own annotations override any key they share with
    # the user's podMetadata, so the Deployment keeps selecting its pods.
    annotations = {
        **dict(spec.pod_metadata.annotations),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVICE_PORT),
        "prometheus.io/path": contract.METRICS_PATH,
        "modelops.dev/models": models_annotation(models),
    }
    labels = {**dict(spec.pod_metadata.labels), **common_labels(name, models["predictor"].version)}
    if spec.route is not None:  # the route's stable Service selects the stable pods apart from a canary's
        labels[TRACK_LABEL] = STABLE
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def build_deployment(
    owner: Mapping[str, Any],
    spec: DeploymentSpec,
    models: Mapping[str, ResolvedModel],
    image: str,
    baked: bool = False,
    replicas: int | None = None,
) -> dict[str, Any]:
    """The apps/v1 Deployment; a new model version changes the pod template and so rolls the pods.
    `replicas` overrides spec.replicas (a canary takes its pods from them)."""
    name = owner["metadata"]["name"]
    container = serving_container(spec, models, image, baked)
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(name)},
        "revisionHistoryLimit": 3,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "progressDeadlineSeconds": spec.progress_deadline_seconds,
        "template": pod_template(spec, models, name, container),
    }
    # With an HPA the replica count belongs to the autoscaler: leaving it out keeps apply from fighting it.
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.replicas if replicas is None else replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(owner, name, models["predictor"].version),
        "spec": deployment_spec,
    }


def build_canary_deployment(
    owner: Mapping[str, Any],
    spec: DeploymentSpec,
    models: Mapping[str, ResolvedModel],
    image: str,
    replicas: int,
    baked: bool = False,
) -> dict[str, Any]:
    """The challenger's Deployment (spec.canary): the stable one's pods with the challenger's models,
    under its own name, with the track label in its selector. Its pods keep the Service's selector
    labels, so the one Service (and the Ingress) sends them their share of the requests."""
    deployment = build_deployment(owner, spec, models, image, baked)
    deployment["metadata"]["name"] = canary_name(owner["metadata"]["name"])
    deployment["metadata"]["labels"][TRACK_LABEL] = CANARY
    deployment["spec"]["selector"]["matchLabels"][TRACK_LABEL] = CANARY
    deployment["spec"]["template"]["metadata"]["labels"][TRACK_LABEL] = CANARY
    deployment["spec"]["replicas"] = replicas
    return deployment

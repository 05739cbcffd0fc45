"""The image build: a deterministic tag from the resolved versions, and the kaniko Job that bakes them in."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from typing import Any

import modelops_contract as contract
from modelops_operator.builders.common import (
    MANAGED_BY,
    OWNER_LABEL,
    child_metadata,
    credential_env,
    pull_secrets,
)
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import Build, DeploymentSpec

# Bump when the baked image layout (the Dockerfile below) changes: it is part of every derived tag.
SERVICE_TEMPLATE_VERSION = "1"
MODELS_DIR = contract.BAKED_MODELS_DIR
WORKSPACE_MOUNT: dict[str, Any] = {"name": "workspace", "mountPath": "/workspace"}
# Bounds of the build pod's containers: a build cannot take the node's memory (the Job fails instead).
FETCH_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
BUILD_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
GENERATION_ANNOTATION = "modelops.dev/generation"


def derive_image_tag(models: Mapping[str, ResolvedModel], build: Build) -> str:
    """A tag that changes exactly when a resolved version, the base image or the template changes."""
    identity = {
        "template": SERVICE_TEMPLATE_VERSION,
        "base": build.base_image,
        "models": {role: [m.name, m.version, m.run_id] for role, m in sorted(models.items())},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    versions = "-".join(f"{role[0]}{models[role].version}" for role in ("predictor", "drift", "outlier"))
    return f"{versions}-{digest}"


def built_image(models: Mapping[str, ResolvedModel], build: Build) -> str:
    """The full image reference a build produces."""
    return f"{build.repository}:{derive_image_tag(models, build)}"


def build_job_name(owner_name: str, tag: str) -> str:
    """Job name: owner name plus the tag's digest (at most 63 characters)."""
    return f"{owner_name[:40]}-build-{tag.rsplit('-', 1)[-1][:12]}"


def build_pod_labels(owner_name: str) -> dict[str, str]:
    """Labels of the build pod."""
    return {
        "app.kubernetes.io/name": "modelops-image-build",
        "app.kubernetes.io/instance": owner_name,
        "app.kubernetes.io/component": "image-build",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        OWNER_LABEL: owner_name,
    }


def dockerfile(base_image: str) -> str:
    """The Dockerfile of the baked image: the generic service image plus the model files."""
    lines = [f"FROM {base_image}", f"COPY models {MODELS_DIR}"]
    lines += [f"ENV {var}={MODELS_DIR}/{role}" for role, var in contract.MODEL_URI.items()]
    return "\n".join(lines) + "\n"


def fetch_script(models: Mapping[str, ResolvedModel], base_image: str) -> str:
    """Shell run in the base image: download each version's files, write the Dockerfile."""
    steps = []
    for role, m in sorted(models.items()):
        target = f"/workspace/models/{role}"
        steps.append(f"mlflow artifacts download --artifact-uri {shlex.quote(m.uri)} --dst-path {target}")
        label = shlex.quote(f"{m.name}/{m.version}")
        steps.append(f"printf %s {label} > {target}/{contract.BAKED_LABEL_FILE}")
    steps.append(f"printf %s {shlex.quote(dockerfile(base_image))} > /workspace/Dockerfile")
    return "set -eu\n" + "\n".join(steps) + "\n"


def fetch_container(
    spec: DeploymentSpec, build: Build, models: Mapping[str, ResolvedModel]
) -> dict[str, Any]:
    """The init container: download the versions from MLflow into the workspace, write the Dockerfile."""
    env = [
        {"name": contract.TRACKING_URI, "value": spec.registry.tracking_uri},
        {"name": "HOME", "value": "/tmp"},
        *credential_env(spec),
    ]
    return {
        "name": "fetch-models",
        "image": build.base_image,
        "command": ["sh", "-c", fetch_script(models, build.base_image)],
        "env": env,
        "volumeMounts": [WORKSPACE_MOUNT, {"name": "tmp", "mountPath": "/tmp"}],
        "resources": FETCH_RESOURCES,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def build_pod_spec(
    spec: DeploymentSpec, build: Build, models: Mapping[str, ResolvedModel], tag: str
) -> dict[str, Any]:
    """Fetch the models (init container), then kaniko builds and pushes (with the push Secret's config)."""
    kaniko_mounts = [WORKSPACE_MOUNT]
    volumes: list[dict[str, Any]] = [{"name": "workspace", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    if build.push_secret:
        items = [{"key": ".dockerconfigjson", "path": "config.json"}]
        volumes.append({"name": "push-secret", "secret": {"secretName": build.push_secret, "items": items}})
        kaniko_mounts.append({"name": "push-secret", "mountPath": "/kaniko/.docker", "readOnly": True})
    kaniko = {
        "name": "kaniko",
        "image": build.builder_image,
        "args": [
            "--context=dir:///workspace",
            "--dockerfile=/workspace/Dockerfile",
            f"--destination={build.repository}:{tag}",
            "--snapshot-mode=redo",
        ],
        "volumeMounts": kaniko_mounts,
        "resources": BUILD_RESOURCES,
    }
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [fetch_container(spec, build, models)],
        # kaniko unpacks the base image's filesystem and so runs as root inside its container.
        "containers": [kaniko],
        "volumes": volumes,
        **pull_secrets(spec),
    }


def build_job(
    owner: Mapping[str, Any], spec: DeploymentSpec, models: Mapping[str, ResolvedModel], generation: int
) -> dict[str, Any]:
    """A batch/v1 Job that builds and pushes the image of these versions; never retried."""
    build = spec.image.build
    if build is None:
        raise ValueError("build_job needs spec.image.build")
    tag = derive_image_tag(models, build)
    metadata = child_metadata(owner, build_job_name(owner["metadata"]["name"], tag))
    metadata["annotations"] = {
        GENERATION_ANNOTATION: str(generation),
        "modelops.dev/image": f"{build.repository}:{tag}",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": build.timeout_seconds,
            # Not the serving pods' labels: the Service and the Deployment must never select a build pod.
            "template": {
                "metadata": {"labels": build_pod_labels(owner["metadata"]["name"])},
                "spec": build_pod_spec(spec, build, models, tag),
            },
        },
    }


def job_state(job: Mapping[str, Any] | None) -> tuple[str, str]:
    """(state, message) of a build Job: missing, running, succeeded, failed or timedout."""
    if job is None:
        return "missing", "build Job not created yet"
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "succeeded", "build Job completed"
        if cond.get("type") == "Failed":
            if cond.get("reason") == "DeadlineExceeded":
                return "timedout", f"build Job exceeded its deadline: {cond.get('message', '')}".strip()
            return "failed", f"build Job failed: {cond.get('reason', '')} {cond.get('message', '')}".strip()
    return "running", "build Job running"

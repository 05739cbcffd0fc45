"""The image build: a deterministic tag from the resolved versions, and the Job that bakes them in (the
models downloaded by the service image itself, then appended as one layer by modelops-bake, tools/bake)."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Collection, Mapping
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
from modelops_operator.spec import Build, DeploymentSpec, merged_resources
from modelops_operator.verification import DIGEST

# Bump when the baked image's layout (baked_env, the layer) changes: it is part of every derived tag.
SERVICE_TEMPLATE_VERSION = "2"
MODELS_DIR = contract.BAKED_MODELS_DIR
WORKSPACE_MOUNT: dict[str, Any] = {"name": "workspace", "mountPath": "/workspace"}
# Bounds of the build pod's containers: a build cannot take the node's memory (the Job fails instead).
FETCH_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
BUILD_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
GENERATION_ANNOTATION = "modelops.dev/generation"
BAKE_CONTAINER = "bake"
PUSH_CONFIG_DIR = "/var/run/modelops/push"
FETCH_USER = 10001  # the service image's user
BAKE_USER = 65532  # the builder image's user


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


def baked_env(models: Mapping[str, ResolvedModel]) -> list[str]:
    """The environment the baked image adds: each role's model URI is its folder in the image."""
    return [f"{contract.MODEL_URI[role]}={MODELS_DIR}/{role}" for role in sorted(models)]


def fetch_script(models: Mapping[str, ResolvedModel]) -> str:
    """Shell run in the base image: download each version's files into the workspace, with its label."""
    steps = []
    for role, m in sorted(models.items()):
        target = f"/workspace/models/{role}"
        steps.append(f"mlflow artifacts download --artifact-uri {shlex.quote(m.uri)} --dst-path {target}")
        # A version whose files are gone downloads an empty folder: that is a failed download.
        missing = shlex.quote(f"{m.name} version {m.version}: no MLmodel in its files")
        steps.append(f"test -f {target}/MLmodel || {{ echo {missing} >&2; exit 2; }}")
        label = shlex.quote(f"{m.name}/{m.version}")
        steps.append(f"printf %s {label} > {target}/{contract.BAKED_LABEL_FILE}")
    return "set -eu\n" + "\n".join(steps) + "\n"


def restricted(user: int) -> dict[str, Any]:
    """A container securityContext the `restricted` Pod Security Standard admits."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "capabilities": {"drop": ["ALL"]},
    }


def fetch_container(
    spec: DeploymentSpec, build: Build, models: Mapping[str, ResolvedModel]
) -> dict[str, Any]:
    """The init container: download the versions from MLflow into the workspace (the service image's own
    MLflow client, as the service's user)."""
    env = [
        {"name": contract.TRACKING_URI, "value": spec.registry.tracking_uri},
        {"name": "HOME", "value": "/tmp"},
        *credential_env(spec),
    ]
    return {
        "name": "fetch-models",
        "image": build.base_image,
        "command": ["sh", "-c", fetch_script(models)],
        "env": env,
        "volumeMounts": [WORKSPACE_MOUNT, {"name": "tmp", "mountPath": "/tmp"}],
        "resources": merged_resources(build.resources, FETCH_RESOURCES),
        "securityContext": restricted(FETCH_USER),
    }


def bake_container(
    build: Build, models: Mapping[str, ResolvedModel], tag: str, plain_http: Collection[str]
) -> dict[str, Any]:
    """modelops-bake: the base image plus one layer of the workspace's models, pushed as repository:tag;
    the digest goes to the termination message (read by image.py)."""
    args = [
        f"--base={build.base_image}",
        f"--destination={build.repository}:{tag}",
        f"--layer=/workspace/models:{MODELS_DIR}",
        "--scratch=/workspace",
        f"--timeout={build.timeout_seconds}s",
        *(f"--env={pair}" for pair in baked_env(models)),
        *(f"--plain-http={host}" for host in sorted(plain_http)),
    ]
    mounts = [WORKSPACE_MOUNT]
    env = []
    if build.push_secret:
        # The push credentials as a file ($DOCKER_CONFIG/config.json), never an argument or a variable.
        mounts.append({"name": "push-secret", "mountPath": PUSH_CONFIG_DIR, "readOnly": True})
        env.append({"name": "DOCKER_CONFIG", "value": PUSH_CONFIG_DIR})
    return {
        "name": BAKE_CONTAINER,
        "image": build.builder_image,
        "args": args,
        "env": env,
        "volumeMounts": mounts,
        "resources": merged_resources(build.resources, BUILD_RESOURCES),
        "securityContext": restricted(BAKE_USER),
        "terminationMessagePolicy": "File",
    }


def build_pod_spec(
    spec: DeploymentSpec,
    build: Build,
    models: Mapping[str, ResolvedModel],
    tag: str,
    plain_http: Collection[str] = (),
) -> dict[str, Any]:
    """Fetch the models (init container), then modelops-bake appends them and pushes: no root, no
    privilege, within the `restricted` Pod Security Standard."""
    volumes: list[dict[str, Any]] = [
        {"name": "workspace", "emptyDir": {"sizeLimit": "4Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    if build.push_secret:
        items = [{"key": ".dockerconfigjson", "path": "config.json"}]
        volumes.append({"name": "push-secret", "secret": {"secretName": build.push_secret, "items": items}})
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": FETCH_USER,  # the workspace is written by one user and read by the other
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [fetch_container(spec, build, models)],
        "containers": [bake_container(build, models, tag, plain_http)],
        "volumes": volumes,
        **pull_secrets(spec),
    }


def build_job(
    owner: Mapping[str, Any],
    spec: DeploymentSpec,
    models: Mapping[str, ResolvedModel],
    generation: int,
    plain_http: Collection[str] = (),
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
                "spec": build_pod_spec(spec, build, models, tag, plain_http),
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


# modelops-bake's exit codes (tools/bake/main.go) and the status reasons they become.
BAKE_EXIT_REASONS = {
    3: "BaseImageMissing",
    4: "CredentialsRefused",
    5: "LayerFailed",
    6: "RegistryFailed",
}
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def _terminated(pod: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get(key) or ():
        if status.get("name") == name:
            terminated = (status.get("state") or {}).get("terminated")
            return terminated if isinstance(terminated, Mapping) else None
    return None


def built_digest(pod: Mapping[str, Any]) -> str | None:
    """The digest modelops-bake pushed (its termination message), when it finished and wrote a valid one."""
    done = _terminated(pod, "containerStatuses", BAKE_CONTAINER)
    if done is None or done.get("exitCode") != 0:
        return None
    message = str(done.get("message") or "").strip()
    return message if DIGEST.fullmatch(message) else None


def pull_failure(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the node cannot pull the base image (the init container runs it) or the
    builder: the Job would otherwise wait for its deadline."""
    status = pod.get("status") or {}
    kinds = (
        ("initContainerStatuses", "BaseImageUnavailable"),
        ("containerStatuses", "BuilderImageUnavailable"),
    )
    for key, reason in kinds:
        for container in status.get(key) or ():
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_FAILURES:
                detail = " ".join(str(waiting.get("message") or "").split())[:300]
                return reason, f"{container.get('image', '')[:300]}: {waiting['reason']}: {detail}"
    return None


def build_failure(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a failed build pod: the model download, the builder's exit code or an OOM kill;
    None when neither container failed. Messages are cut short: they may quote a remote server."""
    fetch = _terminated(pod, "initContainerStatuses", "fetch-models")
    if fetch is not None and fetch.get("exitCode") != 0:
        if fetch.get("reason") == "OOMKilled":
            message = (
                "the model download ran out of memory (fetch-models OOMKilled): raise image.build.resources"
            )
            return "BuilderOOM", message
        return (
            "ModelDownloadFailed",
            f"downloading the models from MLflow failed (exit {fetch.get('exitCode')})",
        )
    bake = _terminated(pod, "containerStatuses", BAKE_CONTAINER)
    if bake is None or bake.get("exitCode") == 0:
        return None
    if bake.get("reason") == "OOMKilled":
        return "BuilderOOM", "the builder ran out of memory (OOMKilled): raise image.build.resources"
    code = int(bake.get("exitCode") or 1)
    detail = " ".join(str(bake.get("message") or "").split())[:300]
    return BAKE_EXIT_REASONS.get(code, "BuildFailed"), f"builder exit {code}: {detail}".strip()

"""Names, labels and owner references shared by every child."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_contract import CREDENTIAL_KEYS, HTTP_PORT
from modelops_operator.resource import GROUP, KIND, VERSION
from modelops_operator.spec import DeploymentSpec

MANAGED_BY = "modelops-operator"
OWNER_LABEL = "modelops.dev/deployment"
APP_NAME = "modelops-service"
SERVICE_PORT = HTTP_PORT
HTTP_PORT_NAME = "http"


def selector_labels(name: str) -> dict[str, str]:
    """Labels that select the pods of one ModelDeployment (immutable once a Deployment exists)."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": name}


def common_labels(name: str, version: str | None = None) -> dict[str, str]:
    """Recommended app.kubernetes.io/* labels plus the owner label the operator watches children by."""
    labels = {
        **selector_labels(name),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "modelops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        OWNER_LABEL: name,
    }
    if version:
        labels["app.kubernetes.io/version"] = version
    return labels


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The controller owner reference to a ModelDeployment (garbage collection deletes children)."""
    meta = owner["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(owner: Mapping[str, Any], name: str, version: str | None = None) -> dict[str, Any]:
    """metadata for a child: name, namespace, labels, owner reference."""
    meta = owner["metadata"]
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": common_labels(meta["name"], version),
        "ownerReferences": [owner_reference(owner)],
    }


def credential_env(spec: DeploymentSpec) -> list[dict[str, Any]]:
    """The registry credentials as environment variables from the spec's Secret (never inline values)."""
    secret = spec.registry.credentials_secret
    if not secret:
        return []
    return [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}
        for key in CREDENTIAL_KEYS
    ]


def pull_secrets(spec: DeploymentSpec) -> dict[str, Any]:
    """The pod spec's imagePullSecrets entry, when the spec names any."""
    if not spec.image.pull_secrets:
        return {}
    return {"imagePullSecrets": [{"name": s} for s in spec.image.pull_secrets]}

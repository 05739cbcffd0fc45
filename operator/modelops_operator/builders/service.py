"""The Service in front of the model server pods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator.builders.common import HTTP_PORT_NAME, child_metadata, selector_labels

PORT = 80


def build_service(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A ClusterIP Service: port 80 -> the container's http port (3000)."""
    name = owner["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(owner, name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {"name": HTTP_PORT_NAME, "port": PORT, "targetPort": HTTP_PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def service_url(owner: Mapping[str, Any]) -> str:
    """The in-cluster URL of the Service."""
    meta = owner["metadata"]
    return f"http://{meta['name']}.{meta['namespace']}.svc"

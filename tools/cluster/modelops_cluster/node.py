"""The fake Node that kwok keeps Ready and on which the real scheduler places Pods."""

from __future__ import annotations

from typing import Any

from modelops_cluster.flags import KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE

# Large enough for hundreds of small Pods; kwok's node-initialize stage keeps these figures.
NODE_RESOURCES = {"cpu": "32", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"}


def build_fake_node(name: str) -> dict[str, Any]:
    """A Node manifest kwok manages (by its annotation); status is accepted on create for Nodes."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_NODE_ANNOTATION: KWOK_NODE_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": dict(NODE_RESOURCES), "capacity": dict(NODE_RESOURCES)},
    }


def is_node_ready(node: dict[str, Any]) -> bool:
    """Whether the Node's Ready condition is True."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

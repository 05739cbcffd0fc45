"""The optional HorizontalPodAutoscaler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator.builders.common import child_metadata
from modelops_operator.spec import Autoscaling


def build_hpa(owner: Mapping[str, Any], autoscaling: Autoscaling) -> dict[str, Any]:
    """An autoscaling/v2 HPA on CPU utilisation for the Deployment."""
    name = owner["metadata"]["name"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(owner, name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": autoscaling.target_cpu},
                    },
                }
            ],
        },
    }

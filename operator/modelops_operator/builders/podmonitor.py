"""The Prometheus Operator PodMonitor for the serving pods (spec.podMonitor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_contract import METRICS_PATH
from modelops_operator.builders.common import HTTP_PORT_NAME, child_metadata, selector_labels
from modelops_operator.spec import PodMonitor

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PodMonitor"
# Copied from the pod onto every series, as the prometheus.io/* convention's labelmap of pod labels does
# (app_kubernetes_io_instance = the ModelDeployment's name): one dashboard and one set of rules for both.
TARGET_LABELS = ["app.kubernetes.io/instance"]


def build_pod_monitor(owner: Mapping[str, Any], monitor: PodMonitor) -> dict[str, Any]:
    """A PodMonitor scraping the service port's /metrics of this ModelDeployment's pods only."""
    name = owner["metadata"]["name"]
    metadata = child_metadata(owner, name)
    metadata["labels"] = {**dict(monitor.labels), **metadata["labels"]}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector_labels(name)},
            "podTargetLabels": TARGET_LABELS,
            "podMetricsEndpoints": [
                {"port": HTTP_PORT_NAME, "path": METRICS_PATH, "interval": monitor.interval, "scheme": "http"}
            ],
        },
    }

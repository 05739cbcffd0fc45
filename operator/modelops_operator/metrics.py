"""The operator's own Prometheus metrics: reconciles, errors by reason, registry latency, conditions.

Served on MODELOPS_OPERATOR_METRICS_ADDRESS (host:port; unset: not served) by prometheus_client's HTTP
server thread, started once at kopf start-up. The alert rules in the Helm chart read these names
(docs/monitoring.md); a unit test checks that every name the rules use is defined here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelops_operator.status import CONDITION_TYPES

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "modelops_operator_reconciles",
    "Reconcile passes by trigger (spec, child, alias, sync-retry) and result (done, retry, stall)",
    ["trigger", "result"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "modelops_operator_reconcile_errors",
    "Reconcile passes that ended in a retry or a stall, by the status reason they reported",
    ["reason", "result"],
    registry=REGISTRY,
)
REGISTRY_SECONDS = Histogram(
    "modelops_operator_registry_request_seconds",
    "MLflow registry REST calls by endpoint and outcome (ok, or the error class)",
    ["endpoint", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
CONDITION = Gauge(
    "modelops_modeldeployment_condition",
    "1 for the status of each condition of each ModelDeployment as stored (status True, False or Unknown)",
    ["namespace", "name", "condition", "status"],
    registry=REGISTRY,
)
GENERATION_OBSERVED = Gauge(
    "modelops_modeldeployment_generation_observed",
    "1 when status.observedGeneration equals metadata.generation, else 0 (the spec is not handled yet)",
    ["namespace", "name"],
    registry=REGISTRY,
)
STATUSES = ("True", "False", "Unknown")


def serve(address: str) -> None:
    """Serve /metrics on host:port in a daemon thread (prometheus_client's server)."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=REGISTRY)


def observe_registry_call(endpoint: str, outcome: str, seconds: float) -> None:
    """One MLflow REST call (the RegistryClient's on_call hook)."""
    REGISTRY_SECONDS.labels(endpoint, outcome).observe(seconds)


def count_reconcile(trigger: str, action: str, reason: str) -> None:
    RECONCILES.labels(trigger, action).inc()
    if action != "done":
        RECONCILE_ERRORS.labels(reason, action).inc()


def condition_samples(body: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """(condition, status) -> 1/0 for the conditions the resource's status holds now (pure).

    Every known condition type gets all three statuses, so that a change from True to False moves a
    series from 1 to 0 rather than leaving a stale 1 behind. A missing Reconciling or Stalled is False
    (they are written only while true); any other missing condition is Unknown.
    """
    conditions = (body.get("status") or {}).get("conditions") or []
    stored = {c.get("type"): c.get("status", "Unknown") for c in conditions}
    absent = {kind: "False" if kind in ("Reconciling", "Stalled") else "Unknown" for kind in CONDITION_TYPES}
    return {
        (kind, status): 1.0 if stored.get(kind, absent[kind]) == status else 0.0
        for kind in CONDITION_TYPES
        for status in STATUSES
    }


def record_resource(body: Mapping[str, Any]) -> None:
    """Set the condition gauges of one ModelDeployment from its stored status."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    for (kind, status), value in condition_samples(body).items():
        CONDITION.labels(namespace, name, kind, status).set(value)
    observed = (body.get("status") or {}).get("observedGeneration")
    GENERATION_OBSERVED.labels(namespace, name).set(1.0 if observed == meta.get("generation") else 0.0)


def forget_resource(namespace: str, name: str) -> None:
    """Drop the series of a deleted ModelDeployment."""
    for kind in CONDITION_TYPES:
        for status in STATUSES:
            _remove(CONDITION, (namespace, name, kind, status))
    _remove(GENERATION_OBSERVED, (namespace, name))


def _remove(metric: Gauge, labels: Iterable[str]) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)

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

from modelops_operator.spec import CanaryThresholds
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
CANARY_VALUE = Gauge(
    "modelops_modeldeployment_canary_value",
    "The latest canary analysis per check, measured on the canary's and the stable pods (side)",
    ["namespace", "name", "check", "side"],
    registry=REGISTRY,
)
CANARY_THRESHOLD = Gauge(
    "modelops_modeldeployment_canary_threshold",
    "The threshold of each canary check spec.canary turns on",
    ["namespace", "name", "check"],
    registry=REGISTRY,
)
CANARY_PHASE = Gauge(
    "modelops_modeldeployment_canary_phase",
    "1 for the canary's phase (Progressing, Promoted, RolledBack), with its share of the pods in percent "
    "as modelops_modeldeployment_canary_share_percent",
    ["namespace", "name", "phase"],
    registry=REGISTRY,
)
CANARY_SHARE = Gauge(
    "modelops_modeldeployment_canary_share_percent",
    "The canary pods' share of all pods",
    ["namespace", "name"],
    registry=REGISTRY,
)
STATUSES = ("True", "False", "Unknown")
# status.canary.analysis keys -> (check, side) of modelops_modeldeployment_canary_value
CANARY_VALUES = {
    "requests": ("requests", "canary"),
    "stableRequests": ("requests", "stable"),
    "errorRate": ("errorRate", "canary"),
    "latencyP99Ms": ("latencyP99Ms", "canary"),
    "stableLatencyP99Ms": ("latencyP99Ms", "stable"),
    "outlierRate": ("outlierRate", "canary"),
    "stableOutlierRate": ("outlierRate", "stable"),
    "predictionShift": ("predictionShift", "canary"),
}
# spec.canary.thresholds keys -> their CanaryThresholds field (its default when the spec leaves one out)
CANARY_THRESHOLDS = {
    "maxErrorRate": "max_error_rate",
    "maxLatencyP99Ms": "max_latency_p99_ms",
    "maxOutlierRate": "max_outlier_rate",
    "maxLatencyRatio": "max_latency_ratio",
    "maxOutlierRateDelta": "max_outlier_rate_delta",
    "maxPredictionShift": "max_prediction_shift",
}
_canary_series: dict[tuple[str, str], list[tuple[Gauge, tuple[str, ...]]]] = {}


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


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def canary_samples(body: Mapping[str, Any]) -> list[tuple[Gauge, tuple[str, ...], float]]:
    """The canary's series of one ModelDeployment from its spec and stored status (pure; none without
    spec.canary): the latest analysis' values, the thresholds, the phase and the share."""
    canary_spec = (body.get("spec") or {}).get("canary")
    if not canary_spec:
        return []
    meta = body["metadata"]
    who = (meta["namespace"], meta["name"])
    state = (body.get("status") or {}).get("canary") or {}
    found: list[tuple[Gauge, tuple[str, ...], float]] = []
    for key, (check, side) in CANARY_VALUES.items():
        value = _number((state.get("analysis") or {}).get(key))
        if value is not None:
            found.append((CANARY_VALUE, (*who, check, side), value))
    given = canary_spec.get("thresholds") or {}
    for key, attribute in CANARY_THRESHOLDS.items():
        value = _number(given.get(key, getattr(CanaryThresholds, attribute)))
        if value is not None:
            found.append((CANARY_THRESHOLD, (*who, key), value))
    if state.get("phase"):
        for phase in ("Progressing", "Promoted", "RolledBack"):
            found.append((CANARY_PHASE, (*who, phase), 1.0 if state["phase"] == phase else 0.0))
    found.append((CANARY_SHARE, who, float(state.get("share") or 0)))
    return found


def record_resource(body: Mapping[str, Any]) -> None:
    """Set the condition and canary gauges of one ModelDeployment from its stored status."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    for (kind, status), value in condition_samples(body).items():
        CONDITION.labels(namespace, name, kind, status).set(value)
    samples = canary_samples(body)
    for gauge, labels in _canary_series.pop((namespace, name), []):
        if not any(g is gauge and lbl == labels for g, lbl, _ in samples):
            _remove(gauge, labels)
    for gauge, labels, value in samples:
        gauge.labels(*labels).set(value)
    _canary_series[namespace, name] = [(gauge, labels) for gauge, labels, _ in samples]
    observed = (body.get("status") or {}).get("observedGeneration")
    GENERATION_OBSERVED.labels(namespace, name).set(1.0 if observed == meta.get("generation") else 0.0)


def forget_resource(namespace: str, name: str) -> None:
    """Drop the series of a deleted ModelDeployment."""
    for kind in CONDITION_TYPES:
        for status in STATUSES:
            _remove(CONDITION, (namespace, name, kind, status))
    _remove(GENERATION_OBSERVED, (namespace, name))
    for gauge, labels in _canary_series.pop((namespace, name), []):
        _remove(gauge, labels)


def _remove(metric: Gauge, labels: Iterable[str]) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)

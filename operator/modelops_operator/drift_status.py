"""status.drift, computed purely from the service pods' /metrics (the I/O is in drift_probe.py).

Each pod keeps its own sliding window of recent rows and tests it against the detector's reference; its
/metrics carries the outcome of the latest window test (modelops_drift_feature_detected and
modelops_drift_p_value per feature with scope="window", which appear with the first test) and how many
rows the window holds. The operator asks every ready pod and sums it up: Drift when any pod's window has
drifted (the features are the union), NoDrift when pods have tested their windows and none drifted,
Collecting while no window has enough rows yet, Unknown when no pod answers, Disabled when the spec turns
monitoring off.

The status only changes when what it says changes (no timestamps of the poll itself), so that a service
at rest causes no writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops_operator.resource import DRIFT_STATES

WINDOW = "window"
STATES = DRIFT_STATES
DRIFT_KEYS = (
    "state",
    "summary",
    "features",
    "minPValue",
    "windowRows",
    "pods",
    "message",
    "lastTransitionTime",
)

# One sample line of the text exposition format: name{labels} value [timestamp].
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"\s*,?\s*')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Endpoint:
    """A ready pod behind the Service: its name, address and the port the service listens on."""

    pod: str
    address: str
    port: int


@dataclass(frozen=True)
class PodDrift:
    """What one pod's /metrics says about its drift window."""

    pod: str
    window_rows: int
    tested: bool  # the window has been tested at least once
    drifted: tuple[str, ...]  # features the latest window test flagged
    min_p_value: float | None


# The EndpointSlice controller's own mark: slices anyone else wrote for the Service are not read.
ENDPOINTSLICE_MANAGER = "endpointslice-controller.k8s.io"


def metrics_url(template: str, endpoint: Endpoint, namespace: str, name: str) -> str:
    """The URL to scrape one pod at (an IPv6 address in brackets)."""
    address = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
    return template.format(
        address=address, port=endpoint.port, pod=endpoint.pod, namespace=namespace, name=name
    )


def controller_made(endpoint_slice: Mapping[str, Any], service: str) -> bool:
    """Whether the EndpointSlice controller made this slice for the Service named `service`."""
    meta = endpoint_slice.get("metadata") or {}
    if (meta.get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") != ENDPOINTSLICE_MANAGER:
        return False
    return any(
        ref.get("kind") == "Service" and ref.get("name") == service and ref.get("controller")
        for ref in meta.get("ownerReferences") or ()
    )


def ready_endpoints(slices: Iterable[Mapping[str, Any]], port_name: str, service: str) -> list[Endpoint]:
    """Ready pods (one address each) from the Service's controller-made EndpointSlices, by pod name.

    Only pods count (an endpoint whose targetRef is not a Pod is left out), and only slices the
    EndpointSlice controller made for the Service: a slice a tenant writes by hand cannot point the
    operator's scrape at another address.
    """
    found: dict[str, Endpoint] = {}
    for endpoint_slice in slices:
        if not controller_made(endpoint_slice, service):
            continue
        ports = [p for p in endpoint_slice.get("ports") or () if p.get("name") == port_name and p.get("port")]
        if not ports:
            continue
        for endpoint in endpoint_slice.get("endpoints") or ():
            if (endpoint.get("conditions") or {}).get("ready") is False or not endpoint.get("addresses"):
                continue
            ref = endpoint.get("targetRef") or {}
            if ref.get("kind") != "Pod" or not ref.get("name"):
                continue
            found[ref["name"]] = Endpoint(ref["name"], endpoint["addresses"][0], int(ports[0]["port"]))
    return [found[pod] for pod in sorted(found)]


def _labels(text: str) -> dict[str, str]:
    labels = {}
    for match in _LABEL.finditer(text):
        value = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], match["value"])
        labels[match["key"]] = value
    return labels


def samples(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample in a Prometheus text exposition."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        yield match["name"], _labels(match["labels"] or ""), value


def parse_pod_metrics(pod: str, text: str) -> PodDrift:
    """The window drift in one pod's /metrics (the service's gauges; other metrics are ignored)."""
    rows = 0.0
    tested = False
    drifted: set[str] = set()
    p_values: list[float] = []
    for name, labels, value in samples(text):
        if name == "modelops_drift_window_rows":
            rows += value
        elif labels.get("scope") != WINDOW:
            continue
        elif name == "modelops_drift_feature_detected" and value >= 1 and "feature" in labels:
            drifted.add(labels["feature"])
        elif name == "modelops_drift_p_value":  # per-feature series appear with the first window test
            tested = True
            if math.isfinite(value):
                p_values.append(value)
    return PodDrift(
        pod=pod,
        window_rows=int(rows),
        tested=tested,
        drifted=tuple(sorted(drifted)) if tested else (),
        min_p_value=min(p_values) if tested and p_values else None,
    )


def _significant(p: float | None) -> float | None:
    """Three significant digits: enough to read, and a status that does not move with every request."""
    return None if p is None else float(f"{p:.3g}")


def _with_transition(desired: dict[str, Any], previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    before = previous or {}
    same = before.get("state") == desired["state"] and before.get("lastTransitionTime")
    desired["lastTransitionTime"] = before["lastTransitionTime"] if same else now
    return desired


def disabled(previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """status.drift when the spec turns monitoring off."""
    desired = {
        "state": "Disabled",
        "summary": "Disabled",
        "message": "spec.serving.monitoring is false: the service runs no detectors",
    }
    return _with_transition(desired, previous, now)


def unknown(message: str, previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """status.drift when the pods cannot even be looked for (e.g. the EndpointSlice list is refused)."""
    return _with_transition({"state": "Unknown", "summary": "Unknown", "message": message}, previous, now)


def summarise(
    pods: Sequence[PodDrift],
    failures: Mapping[str, str],
    previous: Mapping[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    """status.drift from the pods that answered and the errors of those that did not (pod -> error)."""
    asked = len(pods) + len(failures)
    answered = f"{len(pods)}/{asked} pods"
    failed = "; ".join(f"{pod}: {error}" for pod, error in sorted(failures.items()))
    desired: dict[str, Any]
    if not pods:
        message = f"no pod answered on /metrics: {failed}" if failures else "no ready pods to ask"
        return unknown(message, previous, now)
    rows = sum(p.window_rows for p in pods)
    tested = [p for p in pods if p.tested]
    features = sorted({f for p in tested for f in p.drifted})
    p_values = [p.min_p_value for p in tested if p.min_p_value is not None]
    desired = {"pods": answered, "windowRows": rows}
    if features:
        flagged = [p.pod for p in tested if p.drifted]
        desired |= {
            "state": "Drift",
            "summary": "Drift: " + ", ".join(features),
            "features": features,
            "message": f"window drift on {len(flagged)}/{len(tested)} tested pods ({', '.join(flagged)})",
        }
    elif tested:
        desired |= {
            "state": "NoDrift",
            "summary": "NoDrift",
            "features": [],
            "message": f"no drift in the windows of {len(tested)}/{len(tested)} tested pods",
        }
    else:
        desired |= {
            "state": "Collecting",
            "summary": f"Collecting ({rows} rows)",
            "message": "no pod has enough rows in its window to test yet",
        }
    if p_values:
        desired["minPValue"] = _significant(min(p_values))
    if failures:
        desired["message"] += f"; not answering: {failed}"
    return _with_transition(desired, previous, now)


def newly_drifted(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> bool:
    """Whether this observation turns drift on (the moment for a Warning Event)."""
    return current.get("state") == "Drift" and (previous or {}).get("state") != "Drift"


def drift_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch of status.drift that turns current into desired (keys to drop set to None);
    None when nothing would change."""
    if dict(current or {}) == dict(desired):
        return None
    return {key: desired.get(key) for key in DRIFT_KEYS}

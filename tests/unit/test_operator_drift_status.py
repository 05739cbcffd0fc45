"""status.drift from the pods' /metrics: parsing the service's own exposition, summing up, patching."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelops_operator import drift_status as ds
from modelops_operator.settings import DEFAULT_METRICS_URL
from modelops_service.drift import DriftReport
from modelops_service.metrics import MonitoringMetrics
from modelops_service.monitoring import Monitoring, WindowState
from modelops_service.outliers import OutlierReport
from modelops_support.waiting import wait_for

NOW = "2026-11-27T05:00:00Z"
LATER = "2026-11-27T05:01:00Z"


def report(p_values: dict[str, float], threshold: float = 0.05) -> DriftReport:
    return DriftReport(
        threshold=threshold,
        p_value=p_values,
        distance=dict.fromkeys(p_values, 0.1),
        is_drift={f: p < threshold for f, p in p_values.items()},
        rows=10,
    )


def exposition(*requests: tuple[dict[str, float], dict[str, float] | None, int]) -> str:
    """/metrics text written by the service's own MonitoringMetrics after the given requests.

    Each request: (request p-values, window p-values or None when the window was not tested, window rows).
    """
    registry = CollectorRegistry()
    metrics = MonitoringMetrics("WineQualityService", registry=registry)
    for request_p, window_p, rows in requests:
        window = WindowState(rows, 500, 100, None if window_p is None else report(window_p), rows)
        metrics.record(1, Monitoring(report(request_p), window, OutlierReport(0.5, [False], [0.1])))
        metrics.flush()
        if window_p is not None:  # what the service's window-test thread does when a test finishes
            metrics.record_window(report(window_p))
    return generate_latest(registry).decode()


def test_parses_a_tested_window_with_drifted_features() -> None:
    text = exposition(({"alcohol": 0.9, "pH": 0.9}, {"alcohol": 1e-9, "pH": 0.4, "is_red": 0.01}, 120))
    pod = ds.parse_pod_metrics("wine-1", text)
    assert pod == ds.PodDrift("wine-1", 120, True, ("alcohol", "is_red"), 1e-9)


def test_request_drift_alone_is_not_window_drift() -> None:
    text = exposition(({"alcohol": 1e-12}, None, 40))
    pod = ds.parse_pod_metrics("wine-1", text)
    assert pod == ds.PodDrift("wine-1", 40, False, (), None)


def test_the_latest_window_test_counts() -> None:
    text = exposition(({"alcohol": 0.9}, {"alcohol": 1e-9}, 200), ({"alcohol": 0.9}, {"alcohol": 0.7}, 300))
    assert ds.parse_pod_metrics("p", text) == ds.PodDrift("p", 300, True, (), 0.7)


def test_label_values_are_unescaped_and_other_metrics_ignored() -> None:
    text = "\n".join(
        [
            "# HELP modelops_drift_feature_detected x",
            'modelops_drift_feature_detected{service="s",scope="window",feature="a \\"b\\" \\\\c"} 1.0',
            'modelops_drift_detected{scope="window",service="s"} 1.0',
            'bentoml_service_request_total{endpoint="/predict"} 7.0',
            "garbage line",
            'modelops_drift_p_value{scope="window",feature="x"} NaN',
        ]
    )
    pod = ds.parse_pod_metrics("p", text)
    assert pod.drifted == ('a "b" \\c',)
    assert pod.min_p_value is None


def test_summary_of_drift_on_one_of_two_pods() -> None:
    pods = [ds.PodDrift("a", 500, True, ("alcohol",), 1.234567e-7), ds.PodDrift("b", 300, True, (), 0.2)]
    drift = ds.summarise(pods, {}, None, NOW)
    assert drift == {
        "state": "Drift",
        "summary": "Drift: alcohol",
        "features": ["alcohol"],
        "minPValue": 1.23e-7,
        "windowRows": 800,
        "pods": "2/2 pods",
        "message": "window drift on 1/2 tested pods (a)",
        "lastTransitionTime": NOW,
    }
    assert ds.newly_drifted(None, drift)
    assert not ds.newly_drifted(drift, ds.summarise(pods, {}, drift, LATER))


@pytest.mark.parametrize(
    ("pods", "failures", "state", "summary"),
    [
        ([ds.PodDrift("a", 500, True, (), 0.3)], {}, "NoDrift", "NoDrift"),
        ([ds.PodDrift("a", 40, False, (), None)], {}, "Collecting", "Collecting (40 rows)"),
        ([], {}, "Unknown", "Unknown"),
        ([], {"a": "connection failed"}, "Unknown", "Unknown"),
    ],
)
def test_summary_states(pods: list[ds.PodDrift], failures: dict[str, str], state: str, summary: str) -> None:
    drift = ds.summarise(pods, failures, None, NOW)
    assert (drift["state"], drift["summary"]) == (state, summary)
    assert state in ds.STATES


def test_pods_that_do_not_answer_are_named() -> None:
    drift = ds.summarise([ds.PodDrift("a", 500, True, (), 0.3)], {"b": "HTTP 503"}, None, NOW)
    assert drift["pods"] == "1/2 pods"
    assert drift["message"].endswith("not answering: b: HTTP 503")
    assert (
        ds.summarise([], {"b": "HTTP 503"}, None, NOW)["message"]
        == "no pod answered on /metrics: b: HTTP 503"
    )


def test_transition_time_moves_only_with_the_state() -> None:
    first = ds.summarise([ds.PodDrift("a", 100, True, (), 0.3)], {}, None, NOW)
    same = ds.summarise([ds.PodDrift("a", 200, True, (), 0.2)], {}, first, LATER)
    assert same["lastTransitionTime"] == NOW
    drifted = ds.summarise([ds.PodDrift("a", 200, True, ("pH",), 0.001)], {}, same, LATER)
    assert drifted["lastTransitionTime"] == LATER
    assert ds.disabled(drifted, LATER)["state"] == "Disabled"


def test_patch_is_none_at_rest_and_drops_stale_keys() -> None:
    drifted = ds.summarise([ds.PodDrift("a", 500, True, ("pH",), 0.001)], {}, None, NOW)
    assert ds.drift_patch(drifted, dict(drifted)) is None
    unknown = ds.summarise([], {}, drifted, LATER)
    patch = ds.drift_patch(drifted, unknown)
    assert patch is not None
    assert (patch["state"], patch["features"], patch["windowRows"]) == ("Unknown", None, None)
    assert set(patch) == set(ds.DRIFT_KEYS)


def endpoint_slice(
    endpoints: list[dict[str, Any]], port_name: str = "http", manager: str = ds.ENDPOINTSLICE_MANAGER
) -> dict[str, Any]:
    """A slice as the EndpointSlice controller writes it for the Service `wine` (or `manager`)."""
    meta = {
        "labels": {"endpointslice.kubernetes.io/managed-by": manager, "kubernetes.io/service-name": "wine"},
        "ownerReferences": [{"kind": "Service", "name": "wine", "controller": True}],
    }
    for endpoint in endpoints:
        endpoint.setdefault("targetRef", {}).setdefault("kind", "Pod")
    ports = [{"name": port_name, "port": 3000, "protocol": "TCP"}]
    return {"metadata": meta, "ports": ports, "endpoints": endpoints}


def test_ready_endpoints_from_slices() -> None:
    slices = [
        endpoint_slice(
            [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": True}, "targetRef": {"name": "wine-b"}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": False}, "targetRef": {"name": "wine-c"}},
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "targetRef": {"name": "wine-a"}},
            ]
        ),
        endpoint_slice([{"addresses": ["10.0.0.9"], "targetRef": {"name": "other"}}], port_name="metrics"),
    ]
    assert ds.ready_endpoints(slices, "http", "wine") == [
        ds.Endpoint("wine-a", "10.0.0.1", 3000),
        ds.Endpoint("wine-b", "10.0.0.2", 3000),
    ]


def test_only_pods_in_the_controllers_slices_of_the_service_are_scraped() -> None:
    """A tenant's hand-written slice (or one for another Service, or an endpoint that is not a Pod)
    cannot point the operator's scrape at another address."""
    pod = {"addresses": ["10.0.0.1"], "targetRef": {"name": "wine-a"}}
    forged = {"addresses": ["169.254.169.254"], "targetRef": {"name": "metadata"}}
    not_a_pod = {"addresses": ["10.96.0.1"], "targetRef": {"kind": "Node", "name": "node-0"}}
    slices = [
        endpoint_slice([pod, not_a_pod]),
        endpoint_slice([forged], manager="someone-else"),
        {**endpoint_slice([dict(forged)]), "metadata": {"labels": {}, "ownerReferences": []}},
    ]
    assert ds.ready_endpoints(slices, "http", "wine") == [ds.Endpoint("wine-a", "10.0.0.1", 3000)]
    assert ds.ready_endpoints(slices, "http", "other-service") == []


def test_an_ipv6_pod_address_is_bracketed() -> None:
    endpoint = ds.Endpoint("wine-a", "fd00:10:244::5", 3000)
    assert (
        ds.metrics_url(DEFAULT_METRICS_URL, endpoint, "ns", "wine") == "http://[fd00:10:244::5]:3000/metrics"
    )


def test_metrics_url_fills_the_template() -> None:
    endpoint = ds.Endpoint("wine-a", "10.0.0.1", 3000)
    assert ds.metrics_url(DEFAULT_METRICS_URL, endpoint, "ns", "wine") == "http://10.0.0.1:3000/metrics"
    assert ds.metrics_url("http://127.0.0.1:8000/{namespace}/{pod}", endpoint, "ns", "wine") == (
        "http://127.0.0.1:8000/ns/wine-a"
    )


def test_requests_reach_the_gauges_through_the_flush_thread_at_most_once_a_period() -> None:
    registry = CollectorRegistry()
    metrics = MonitoringMetrics("s", registry=registry, flush_seconds=1.0)

    def rows_total() -> float | None:
        return registry.get_sample_value("modelops_rows_total", {"service": "s"})

    def request(p: float) -> None:
        window = WindowState(10, 500, 100, None, 10)
        metrics.record(
            2, Monitoring(report({"alcohol": p}), window, OutlierReport(0.5, [True, False], [1, 0]))
        )

    request(0.5)  # after a quiet spell: written at once by the thread
    wait_for(lambda: rows_total() == 2, 5, 0.01, "the first request's rows")
    for p in (0.4, 0.3, 0.2):
        request(p)
    # within the period nothing more is written; then the sum of the rows and the latest p-value
    assert rows_total() == 2
    wait_for(lambda: rows_total() == 8, 5, 0.01, "the next flush")
    assert registry.get_sample_value("modelops_outliers_total", {"service": "s"}) == 4
    p_value = {"service": "s", "scope": "request", "feature": "alcohol"}
    assert registry.get_sample_value("modelops_drift_p_value", p_value) == 0.2


def test_predicted_classes_are_counted_and_their_label_set_is_bounded() -> None:
    from modelops_service.metrics import MAX_CLASS_LABELS, OTHER_CLASS

    registry = CollectorRegistry()
    metrics = MonitoringMetrics("s", registry=registry, flush_seconds=0.05)
    metrics.record(3, None, [5, 6, 5])
    # a model that names a new class per row (a hostile pyfunc): the label set stops growing
    metrics.record(100, None, [f"class-{i}-" + "x" * 200 for i in range(100)])
    metrics.flush()

    def count(label: str) -> float | None:
        return registry.get_sample_value("modelops_predictions_total", {"service": "s", "class": label})

    assert count("5") == 2
    assert count("6") == 1
    labels = {
        s.labels["class"]
        for family in registry.collect()
        if family.name == "modelops_predictions"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert len(labels) == MAX_CLASS_LABELS + 1
    assert max(len(label) for label in labels) <= 64
    assert count(OTHER_CLASS) == 100 - (MAX_CLASS_LABELS - 2)

"""status.drift end to end: the real `kopf run` reads the drift windows of a real `bentoml serve`.

kwok's pods have addresses nothing listens on, so the operator is pointed at the loopback service through
MODELOPS_METRICS_URL_TEMPLATE; everything else is as in production: the pods come from the Service's
EndpointSlices (one scrape per ready pod), the numbers from the service's own /metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config
from mlflow import MlflowClient

from modelops_operator import drift_probe
from modelops_operator.kube import Kube
from modelops_operator.settings import DEFAULT_METRICS_URL
from modelops_support.local_operator import LocalOperator
from modelops_support.local_service import LocalService
from modelops_support.waiting import observe, wait_for
from tests.fixtures.cluster import service_account_kubeconfig
from tests.fixtures.data import shifted, wine_records
from tests.fixtures.operator import get_mdep, kubectl, manifest, new_versions, wait_condition
from tests.fixtures.service import WINDOW_ENV, start_service

pytestmark = pytest.mark.cluster

POLL_SECONDS = 1


@pytest.fixture
def fresh_service(service_models: dict[str, str], tmp_path: Path) -> Iterator[LocalService]:
    """A service of its own: its drift window starts empty (200 rows, tested from 50)."""
    service = start_service(service_models, tmp_path / "service", WINDOW_ENV)
    try:
        yield service
    finally:
        service.close()


def drift_of(api: client.ApiClient, ns: str, name: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        drift = (get_mdep(api, ns, name).get("status") or {}).get("drift") or {}
        return drift if drift.get("state") == state else None

    try:
        return wait_for(check, 30, 0.3, f"status.drift.state={state}")
    except TimeoutError as e:
        status = get_mdep(api, ns, name).get("status") or {}
        raise AssertionError(f"{e}; status.drift: {status.get('drift')}") from e


def predict(service: LocalService, records: list[dict[str, Any]]) -> None:
    httpx.post(f"{service.url}/predict", json=records, timeout=60).raise_for_status()


def test_window_drift_in_the_pods_shows_in_status_column_and_event(
    kubeconfig: str,
    api: client.ApiClient,
    namespace: str,
    registry: MlflowClient,
    trained_models: dict[str, Any],
    fresh_service: LocalService,
    wine_data_dir: Path,
    tmp_path: Path,
) -> None:
    env = {
        "MODELOPS_DRIFT_POLL_SECONDS": str(POLL_SECONDS),
        "MODELOPS_METRICS_URL_TEMPLATE": f"{fresh_service.url}/metrics",
    }
    name = "wine-drift"
    doc = manifest(
        "wine-quality-staging.yaml",
        name,
        registry.tracking_uri,
        new_versions(registry, trained_models),
        replicas=2,
    )
    del doc["spec"]["stage"], doc["spec"]["promotion"]  # no registry write-back: not what this test is about
    with LocalOperator(kubeconfig, tmp_path / "operator.log", namespaces=[namespace], env=env) as op:
        kubectl(kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
        wait_condition(api, namespace, name, "Ready")

        # Both ready pods answer; the empty window has nothing to test yet.
        collecting = drift_of(api, namespace, name, "Collecting")
        assert collecting["pods"] == "2/2 pods"
        assert collecting["summary"] == "Collecting (0 rows)"

        # Real rows, then the same rows with 3 % more alcohol fill the window: the pods report drift.
        predict(fresh_service, wine_records(wine_data_dir, 60, seed=21))
        predict(fresh_service, shifted(wine_records(wine_data_dir, 200, seed=22), "alcohol", 3.0))
        drift_of(api, namespace, name, "Drift")

        def full() -> dict[str, Any] | None:
            # The window's row count is a request-path gauge: on /metrics up to a second after the test.
            drift = (get_mdep(api, namespace, name).get("status") or {}).get("drift") or {}
            return drift if drift.get("windowRows") == 2 * 200 else None

        drift = wait_for(full, 30, 0.3, "status.drift.windowRows of both full windows")
        assert drift["state"] == "Drift"
        assert "alcohol" in drift["features"]
        assert drift["summary"].startswith("Drift: ")
        assert "alcohol" in drift["summary"]
        assert drift["minPValue"] < 1e-6
        assert (
            drift["message"]
            == "window drift on 2/2 tested pods ("
            + ", ".join(sorted(p["metadata"]["name"] for p in _pods(api, namespace, name)))
            + ")"
        )

        # -o wide shows it; a Warning Event says so once.
        wide = kubectl(kubeconfig, "get", "mdep", name, "-n", namespace, "-o", "wide").stdout.splitlines()
        assert wide[0].split()[-4:] == ["IMAGE", "DIGEST", "DRIFT", "CANARY"]
        assert "Drift: " in wide[1]
        assert "alcohol" in wide[1]
        events = wait_for(
            lambda: _events(api, namespace, name, "DriftDetected"), 15, 0.3, "DriftDetected event"
        )
        assert events[0].type == "Warning"
        assert "alcohol" in events[0].message

        # At rest (no requests), polling writes nothing: the resource version stays put.
        versions = set(
            observe(
                lambda: get_mdep(api, namespace, name)["metadata"]["resourceVersion"], 5 * POLL_SECONDS, 0.5
            )
        )
        assert len(versions) == 1

        # A service that stops answering: Unknown, naming the pods.
        fresh_service.close()
        unknown = drift_of(api, namespace, name, "Unknown")
        assert unknown["message"].startswith("no pod answered on /metrics: ")
        assert "connection failed" in unknown["message"]
        assert "features" not in unknown
        assert op.alive()


def _pods(api: client.ApiClient, ns: str, name: str) -> list[dict[str, Any]]:
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={name}")
    return [api.sanitize_for_serialization(p) for p in pods.items]


def _events(api: client.ApiClient, ns: str, name: str, reason: str) -> list[Any] | None:
    events = client.CoreV1Api(api).list_namespaced_event(ns, field_selector=f"involvedObject.name={name}")
    found = [e for e in events.items if e.reason == reason]
    return found or None


def test_a_refused_endpointslice_list_is_unknown_in_the_status_not_an_error(
    cluster: Any, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    # The namespace's default ServiceAccount may list nothing: what an operator with an old chart's RBAC sees.
    path = service_account_kubeconfig(cluster, api, namespace, "default", tmp_path / "kubeconfig")
    with config.new_client_from_config(str(path)) as restricted:
        body = {"metadata": {"namespace": namespace, "name": "wine"}, "spec": {}, "status": {}}
        now = "2026-11-27T05:00:00Z"
        drift = asyncio.run(drift_probe.observe(Kube(restricted), body, DEFAULT_METRICS_URL, now))
    assert drift["state"] == "Unknown"
    assert drift["message"].startswith("cannot list the Service's EndpointSlices: HTTP 403")

"""Monitoring against the real control plane and a real `kopf run`: the operator's own /metrics, the
PodMonitor of spec.podMonitor with and without the Prometheus Operator's CRDs, and the chart's
ServiceMonitor and PrometheusRule accepted by the API server under the real CRD schemas.

The CRDs are the Prometheus Operator's own (tests/data/prometheus-operator, see its SOURCE.md); no
Prometheus runs here: promtool evaluates the rules (tests/unit/test_chart_monitoring.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from modelops_support.local_operator import LocalOperator
from modelops_support.waiting import wait_for
from tests.fixtures.operator import (
    World,
    apply,
    get_mdep,
    kubectl,
    module_operator,
    wait_condition,
)
from tests.helm_chart import build_helm, one, render
from tests.monitoring import (
    ALL_ON,
    Series,
    dashboard,
    dashboard_expressions,
    metric_names,
    missing_series,
    parse_samples,
    rendered_rules,
    rule_expressions,
    rule_test_series,
)

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).resolve().parents[1] / "data" / "prometheus-operator"
OPERATOR_PREFIXES = ("modelops_modeldeployment_", "modelops_operator_")
POD_MONITOR_RETRY_SECONDS = 3  # default 300


@pytest.fixture(scope="module")
def operator(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOperator]:
    retry = str(POD_MONITOR_RETRY_SECONDS)
    yield from module_operator(
        kubeconfig, tmp_path_factory.mktemp("operator"), MODELOPS_POD_MONITOR_RETRY_SECONDS=retry
    )


@pytest.fixture
def prometheus_operator_crds(kubeconfig: str) -> Iterator[None]:
    """The Prometheus Operator's CRDs installed for one test, removed afterwards."""
    files = sorted(CRDS.glob("*.yaml"))
    for path in files:
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(path))
    for path in files:
        name = path.name.removesuffix(".yaml").split("_", 1)[1] + ".monitoring.coreos.com"
        kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    try:
        yield
    finally:
        for path in files:
            kubectl(kubeconfig, "delete", "--ignore-not-found", "--wait=true", "-f", str(path), check=False)


def scrape(operator: LocalOperator) -> list[Series]:
    return list(parse_samples(httpx.get(operator.metrics_url, timeout=10).text))


def metric(operator: LocalOperator, sample_name: str, **labels: str) -> float | None:
    """The value of the operator's sample with exactly these labels, None when it has none."""
    for family in text_string_to_metric_families(httpx.get(operator.metrics_url, timeout=10).text):
        for sample in family.samples:
            if sample.name == sample_name and sample.labels == labels:
                return float(sample.value)
    return None


def test_the_operator_exports_conditions_reconciles_and_registry_latency(
    operator: LocalOperator,
    world: World,
    tmp_path: Path,
) -> None:
    name = "wine-metrics"
    world.deploy(name)
    kubeconfig, api, namespace = world.kubeconfig, world.api, world.namespace
    wait_condition(api, namespace, name, "Ready")
    ready = {"namespace": namespace, "name": name, "condition": "Ready"}

    def ready_series() -> bool:
        return metric(operator, "modelops_modeldeployment_condition", **ready, status="True") == 1.0

    wait_for(ready_series, 30, 0.5, "Ready=True on the operator's /metrics")
    assert metric(operator, "modelops_modeldeployment_condition", **ready, status="False") == 0.0
    stalled = {**ready, "condition": "Stalled", "status": "True"}
    assert metric(operator, "modelops_modeldeployment_condition", **stalled) == 0.0
    assert (
        metric(operator, "modelops_modeldeployment_generation_observed", namespace=namespace, name=name) == 1
    )
    spec_passes = metric(operator, "modelops_operator_reconciles_total", trigger="spec", result="done")
    assert (spec_passes or 0) >= 1
    lookups = metric(
        operator,
        "modelops_operator_registry_request_seconds_count",
        endpoint="model-versions/get",
        outcome="ok",
    )
    assert (lookups or 0) >= 3  # the three roles' versions

    # Every operator metric the chart's rules and dashboard read, and every operator series of the rule
    # tests (but for the resource's namespace and name), is on the real /metrics.
    exported = scrape(operator)
    names = {n for n, _ in exported}
    rules = rendered_rules(build_helm(), tmp_path)
    used = set().union(
        *(metric_names(q) for q in [*rule_expressions(rules), *dashboard_expressions(dashboard())])
    )
    # (a canary's series appear with a canary: tests/cluster/test_real_node_canary.py reads those)
    canary = "modelops_modeldeployment_canary_"
    assert {n for n in used if n.startswith(OPERATOR_PREFIXES) and not n.startswith(canary)} <= names
    wanted = [(n, labels) for n, labels in rule_test_series() if n.startswith(OPERATOR_PREFIXES)]
    assert wanted
    assert missing_series(wanted, exported, frozenset({"namespace", "name"})) == []

    kubectl(kubeconfig, "delete", "-n", namespace, f"modeldeployment/{name}", "--wait=true")
    wait_for(
        lambda: metric(operator, "modelops_modeldeployment_condition", **ready, status="True") is None,
        30,
        0.5,
        "the deleted resource's series gone",
    )


def test_a_stalled_resource_counts_as_an_error_by_reason(
    operator: LocalOperator,
    world: World,
) -> None:
    name = "wine-unknown"
    doc = world.deploy(name)
    kubeconfig, api, namespace = world.kubeconfig, world.api, world.namespace
    doc["spec"]["models"]["predictor"]["version"] = "987654"
    assert apply(kubeconfig, namespace, doc).returncode == 0
    stalled = wait_condition(api, namespace, name, "Stalled")
    reason = next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")["reason"]

    def counted() -> bool:
        errors = metric(operator, "modelops_operator_reconcile_errors_total", reason=reason, result="stall")
        condition = {"namespace": namespace, "name": name, "condition": "Stalled", "status": "True"}
        return bool(errors) and metric(operator, "modelops_modeldeployment_condition", **condition) == 1.0

    wait_for(counted, 30, 0.5, f"a stall for {reason} counted")


def test_a_pod_monitor_waits_for_its_crd_then_scrapes_the_pods(
    operator: LocalOperator,
    world: World,
    request: pytest.FixtureRequest,
) -> None:
    name = "wine-monitored"
    monitor = {"enabled": True, "interval": "15s", "labels": {"release": "kps"}}
    doc = world.deploy(name, podMonitor=monitor)
    kubeconfig, api, namespace = world.kubeconfig, world.api, world.namespace
    # Without the Prometheus Operator's CRDs: serving is Ready, PodMonitorReady says why there is none.
    obj = wait_condition(api, namespace, name, "Ready")
    missing = wait_condition(api, namespace, name, "PodMonitorReady", status="False")
    detail = next(c for c in missing["status"]["conditions"] if c["type"] == "PodMonitorReady")
    assert detail["reason"] == "PodMonitorCRDMissing"
    assert "prometheus.io/* annotations" in detail["message"]
    assert obj["status"]["readyReplicas"] >= 1

    # The CRDs installed later: the operator's retry timer creates the PodMonitor without a spec change,
    # and the API server validates it against the real schema.
    request.getfixturevalue("prometheus_operator_crds")
    wait_condition(api, namespace, name, "PodMonitorReady", timeout=30)

    def pod_monitor() -> dict[str, Any]:
        return dict(
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                "monitoring.coreos.com", "v1", namespace, "podmonitors", name
            )
        )

    assert pod_monitor()["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"
    # A spec change is applied to it.
    doc["spec"]["podMonitor"]["interval"] = "20s"
    assert apply(kubeconfig, namespace, doc).returncode == 0
    wait_condition(api, namespace, name, "PodMonitorReady")
    wait_condition(api, namespace, name, "Ready")
    found = pod_monitor()
    assert found["metadata"]["labels"]["release"] == "kps"
    assert found["metadata"]["ownerReferences"][0]["name"] == name
    endpoint = found["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "20s")
    # It selects exactly this resource's pods, which name the port it scrapes.
    selector = ",".join(f"{k}={v}" for k, v in found["spec"]["selector"]["matchLabels"].items())
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    assert pods
    assert all(p.metadata.labels["modelops.dev/deployment"] == name for p in pods)
    assert all(any(port.name == "http" for port in p.spec.containers[0].ports) for p in pods)
    assert all("app.kubernetes.io/instance" in p.metadata.labels for p in pods)

    # Turned off: removed.
    doc["spec"]["podMonitor"]["enabled"] = False
    assert apply(kubeconfig, namespace, doc).returncode == 0

    def removed() -> bool:
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "podmonitors"
        )
        return not listed["items"]

    wait_for(removed, 30, 0.5, "the PodMonitor removed")

    def condition_dropped() -> bool:
        # The same pass deletes the PodMonitor and then writes the status: either may be seen first.
        status = get_mdep(api, namespace, name)["status"]
        return "PodMonitorReady" not in {c["type"] for c in status["conditions"]}

    wait_for(condition_dropped, 30, 0.5, "PodMonitorReady dropped from the status")


def test_the_charts_service_monitor_and_rules_pass_the_real_schemas(
    kubeconfig: str, namespace: str, prometheus_operator_crds: None, tmp_path: Path
) -> None:
    values = {**ALL_ON, "metrics": {"serviceMonitor": {"enabled": True}}}
    objects = render(build_helm(), tmp_path, values, namespace=namespace)
    for kind in ("ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"):
        obj = one(objects, kind)
        result = kubectl(kubeconfig, "create", "-n", namespace, "-f", "-", stdin=json.dumps(obj), check=False)
        assert result.returncode == 0, f"{kind}: {result.stderr}"
    # The schema is enforced: a rule without an expression is refused.
    broken = one(objects, "PrometheusRule")
    broken["metadata"]["name"] = "broken"
    del broken["spec"]["groups"][0]["rules"][0]["expr"]
    result = kubectl(kubeconfig, "create", "-n", namespace, "-f", "-", stdin=json.dumps(broken), check=False)
    assert result.returncode != 0
    assert "expr" in result.stderr

"""The chart's monitoring: alert rules tested by a real promtool, the Grafana dashboard's queries parsed by
it, and the Services, ServiceMonitor, PrometheusRule and ConfigMap rendered only when asked for."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helm_chart import build_helm, find, one, render
from tests.monitoring import (
    ALL_ON,
    as_promql,
    build_promtool,
    dashboard,
    dashboard_expressions,
    metric_names,
    rendered_rules,
    rule_expressions,
    run_rule_tests,
)


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_helm()


@pytest.fixture(scope="module")
def promtool() -> Path:
    return build_promtool()


def test_the_rendered_rules_pass_their_promtool_tests(helm: Path, promtool: Path, tmp_path: Path) -> None:
    result = run_rule_tests(promtool, rendered_rules(helm, tmp_path), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rule_tests_fail_when_the_thresholds_change(helm: Path, promtool: Path, tmp_path: Path) -> None:
    # The rule tests are not vacuous: other values make the same series fire at other times.
    changed = {"outlierRateThreshold": 0.5, "driftFor": "30m", "notReadyFor": "5m"}
    result = run_rule_tests(promtool, rendered_rules(helm, tmp_path, changed), tmp_path)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    for alert in ("ModelOutlierRateHigh", "ModelDriftSustained", "ModelDeploymentNotReady"):
        assert f"alertname: {alert}" in report
    assert "alertname: ModelServingErrors" not in report


def test_every_dashboard_query_is_valid_promql(promtool: Path) -> None:
    queries = dashboard_expressions(dashboard())
    assert len(queries) >= 12
    for query in queries:
        result = subprocess.run(
            [str(promtool), "--experimental", "promql", "format", as_promql(query)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"{query}: {result.stderr}"
        assert metric_names(query), f"no metric selected by {query}"


def test_the_dashboard_filters_every_query_by_its_variables() -> None:
    board = dashboard()
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace", "deployment"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]
            assert '=~"$deployment"' in target["expr"], panel["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_rule_reads_a_known_metric(helm: Path, tmp_path: Path) -> None:
    rules = rendered_rules(helm, tmp_path)
    names = set().union(*(metric_names(expr) for expr in rule_expressions(rules)))
    assert names == {
        "modelops_drift_feature_detected",
        "modelops_outliers_total",
        "modelops_rows_total",
        "bentoml_service_request_total",
        "modelops_modeldeployment_condition",
    }


def test_monitoring_objects_render_only_when_enabled(helm: Path, tmp_path: Path) -> None:
    default = render(helm, tmp_path)
    for kind in ("PrometheusRule", "ServiceMonitor", "ConfigMap"):
        assert not find(default, kind)
    # The operator's metrics endpoint is on by default: a port, its setting and a Service.
    deployment = one(default, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert {"name": "MODELOPS_OPERATOR_METRICS_ADDRESS", "value": "0.0.0.0:8081"} in container["env"]
    service = one(default, "Service", "mo-modelops-operator-metrics")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()

    off = render(helm, tmp_path, {"metrics": {"enabled": False}})
    assert not find(off, "Service")
    env = one(off, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "MODELOPS_OPERATOR_METRICS_ADDRESS" not in {e["name"] for e in env}


def test_the_service_monitor_keeps_the_resources_namespace_label(helm: Path, tmp_path: Path) -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}}
    objects = render(helm, tmp_path, values)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True}
    service = one(objects, "Service", "mo-modelops-operator-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_the_dashboard_configmap_carries_the_sidecar_label_and_the_json(helm: Path, tmp_path: Path) -> None:
    values = {"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}}
    config_map = one(render(helm, tmp_path, values), "ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["modelops.json"]) == dashboard()


def test_rule_labels_and_thresholds_come_from_values(helm: Path, tmp_path: Path) -> None:
    values = {**ALL_ON, "prometheusRule": {"enabled": True, "labels": {"release": "kps"}, "severity": "info"}}
    rule = one(render(helm, tmp_path, values), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    severities = {r["alert"]: r["labels"]["severity"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert severities.pop("ModelDeploymentStalled") == "critical"
    assert set(severities.values()) == {"info"}

"""The chart's dashboard and alert rules read what the real service exports (`bentoml serve`, real models).

Every metric a dashboard query or a serving alert reads is on the service's /metrics, and every serving
series of the promtool rule tests is one the service really exports (same name, labels and, but for the
response code, label values), once the target labels a scrape adds are set aside.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelops_support.local_service import LocalService
from modelops_support.waiting import wait_for
from tests.fixtures.data import shifted, wine_records
from tests.helm_chart import build_helm
from tests.monitoring import (
    TARGET_LABELS,
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

# The operator's own series: checked against a real operator in tests/cluster/test_operator_metrics.py.
OPERATOR_PREFIXES = ("modelops_modeldeployment_", "modelops_operator_")


@pytest.fixture(scope="module")
def exported(prediction_service: LocalService, wine_data_dir: Path) -> list[Series]:
    """The service's /metrics after real traffic: good rows, a drifted batch (the window is tested), and a
    bad request (a 4xx response code)."""
    url = f"{prediction_service.url}/predict"
    records = wine_records(wine_data_dir, 200, seed=21)
    for batch in (records, shifted(records, "alcohol", 3.0)):
        httpx.post(url, json=batch, timeout=60).raise_for_status()
    bad = httpx.post(url, content=b"{", headers={"Content-Type": "application/json"}, timeout=30)
    assert bad.status_code == 400

    def scraped() -> str | None:
        # The window test and the request path's gauges are written by the service's threads, just after.
        text = httpx.get(f"{prediction_service.url}/metrics", timeout=10).text
        gauges = [line for line in text.splitlines() if line.startswith("modelops_drift_p_value{")]
        written = all(
            any(scope in line for line in gauges) for scope in ('scope="request"', 'scope="window"')
        )
        return text if written else None

    return list(parse_samples(wait_for(scraped, 10, 0.1, "the drift gauges on /metrics")))


def serving(names: set[str]) -> set[str]:
    return {name for name in names if not name.startswith(OPERATOR_PREFIXES)}


def test_every_dashboard_query_reads_exported_metrics(exported: list[Series]) -> None:
    names = {name for name, _ in exported}
    used = serving(set().union(*(metric_names(q) for q in dashboard_expressions(dashboard()))))
    assert len(used) >= 7
    assert used <= names, f"the dashboard reads metrics the service does not export: {used - names}"


def test_every_serving_alert_reads_exported_metrics(exported: list[Series], tmp_path: Path) -> None:
    names = {name for name, _ in exported}
    rules = rendered_rules(build_helm(), tmp_path)
    used = serving(set().union(*(metric_names(e) for e in rule_expressions(rules))))
    assert used == {
        "modelops_drift_feature_detected",
        "modelops_outliers_total",
        "modelops_rows_total",
        "bentoml_service_request_total",
    }
    assert used <= names


def test_the_rule_tests_series_are_the_services_series(exported: list[Series]) -> None:
    wanted = [
        (name, {k: v for k, v in labels.items() if k not in TARGET_LABELS})
        for name, labels in rule_test_series()
        if not name.startswith(OPERATOR_PREFIXES)
    ]
    assert len(wanted) >= 8
    assert missing_series(wanted, exported, frozenset({"http_response_code"})) == []
    # The labels the rules group by are not the service's: the scrape adds them.
    assert not TARGET_LABELS & {k for _, labels in exported for k in labels}

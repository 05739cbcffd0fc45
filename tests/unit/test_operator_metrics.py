"""The operator's own metrics: condition series per resource, reconcile counters, the listen setting."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelops_operator import metrics
from modelops_operator.settings import OPERATOR_METRICS_ENV, ConfigurationError, OperatorSettings
from modelops_operator.status import CONDITION_TYPES
from modelops_support.ports import free_port


def body(conditions: list[dict[str, str]], generation: int = 3, observed: int = 3) -> dict:
    return {
        "metadata": {"namespace": "ml", "name": "wine", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": conditions},
    }


def test_each_condition_has_exactly_one_status_set() -> None:
    samples = metrics.condition_samples(
        body([{"type": "Ready", "status": "False"}, {"type": "Stalled", "status": "True"}])
    )
    assert {kind for kind, _ in samples} == set(CONDITION_TYPES)
    for kind in CONDITION_TYPES:
        assert sum(samples[kind, s] for s in metrics.STATUSES) == 1
    assert samples["Ready", "False"] == 1
    assert samples["Stalled", "True"] == 1
    assert samples["Reconciling", "False"] == 1  # absent: written only while true
    assert samples["Available", "Unknown"] == 1  # absent detail: not known


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_endpoint_serves_conditions_and_counters_and_forgets_a_deleted_resource() -> None:
    port = free_port()
    metrics.serve(f"127.0.0.1:{port}")
    metrics.record_resource(body([{"type": "Ready", "status": "True"}], generation=4, observed=3))
    metrics.count_reconcile("spec", "stall", "ChildRejected")
    metrics.count_reconcile("child", "done", "Ready")
    found = scrape(port)
    ready = (
        "modelops_modeldeployment_condition",
        (("condition", "Ready"), ("name", "wine"), ("namespace", "ml"), ("status", "True")),
    )
    assert found[ready] == 1
    assert found["modelops_modeldeployment_generation_observed", (("name", "wine"), ("namespace", "ml"))] == 0
    assert found["modelops_operator_reconciles_total", (("result", "stall"), ("trigger", "spec"))] >= 1
    errors = ("modelops_operator_reconcile_errors_total", (("reason", "ChildRejected"), ("result", "stall")))
    assert found[errors] >= 1
    assert not any(
        k[0] == "modelops_operator_reconcile_errors_total" and ("reason", "Ready") in k[1] for k in found
    )

    metrics.forget_resource("ml", "wine")
    assert ready not in scrape(port)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", ""), ("0.0.0.0:8081", "0.0.0.0:8081"), (":8081", ":8081"), ("[::]:9000", "[::]:9000")],
)
def test_the_listen_address_setting(raw: str, expected: str) -> None:
    assert OperatorSettings.load({OPERATOR_METRICS_ENV: raw}).operator_metrics_address == expected


@pytest.mark.parametrize("raw", ["8081", "host:", "host:http", "h:70000", "a b:80"])
def test_a_bad_listen_address_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=OPERATOR_METRICS_ENV):
        OperatorSettings.load({OPERATOR_METRICS_ENV: raw})

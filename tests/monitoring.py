"""The chart's monitoring artefacts for the tests: its alert rules (rendered), its Grafana dashboard, the
promtool rule tests' series, promtool itself, and the metric names each of them reads."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helm_chart import CHART, REPO_ROOT, build_tool, one, render

PROMTOOL_BUILD = REPO_ROOT / "tools" / "prometheus" / "build.sh"
DASHBOARD = CHART / "dashboards" / "modelops.json"
RULE_TESTS = REPO_ROOT / "tests" / "data" / "prometheus" / "rules.test.yaml"
# Labels the scrape adds to a pod's series (a PodMonitor's target labels and podTargetLabels, or the
# prometheus.io/* convention's namespace, pod and labelmap of pod labels): not on the pod's /metrics.
TARGET_LABELS = frozenset({"namespace", "pod", "app_kubernetes_io_instance"})
# Grafana's variables that are not PromQL; replaced before promtool parses a query.
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
ALL_ON = {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}
Series = tuple[str, dict[str, str]]


def build_promtool() -> Path:
    """promtool, built from the pinned Prometheus module."""
    return build_tool(PROMTOOL_BUILD, "promtool")


def rendered_rules(helm: Path, home: Path, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The PrometheusRule's spec (groups of rules) as the chart renders it."""
    merged = {**ALL_ON, "prometheusRule": {"enabled": True, **(values or {})}}
    return dict(one(render(helm, home, merged), "PrometheusRule")["spec"])


def run_rule_tests(promtool: Path, rules: dict[str, Any], workdir: Path) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of tests/data/prometheus/rules.test.yaml against the given rule groups."""
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rules))
    (workdir / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    return subprocess.run(
        [str(promtool), "test", "rules", RULE_TESTS.name],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rule_expressions(rules: dict[str, Any]) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_expressions(board: dict[str, Any]) -> list[str]:
    """Every panel target's query and every variable's query (label_values(...) as its selector)."""
    queries = [target["expr"] for panel in board["panels"] for target in panel.get("targets", ())]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*), *\w+\)", variable["query"]["query"])
            assert inner, f"unexpected variable query {variable['query']}"
            queries.append(inner.group(1))
    return queries


def as_promql(query: str) -> str:
    """A Grafana query as plain PromQL (its range variables replaced by durations)."""
    for variable, duration in GRAFANA_RANGES.items():
        query = query.replace(variable, duration)
    return query


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: written name{...}, name[range], or the name alone."""
    return set(re.findall(r"(?<![\w:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=[{[]|\s*$)", expr))


def parse_samples(text: str) -> Iterator[Series]:
    """(name, labels) of every sample in a Prometheus text exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels)


def rule_test_series() -> list[Series]:
    """The input series of the promtool rule tests, as (name, labels)."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    notation = [series["series"] for test in tests for series in test["input_series"]]
    return [next(parse_samples(f"{series} 0\n")) for series in notation]


def missing_series(wanted: list[Series], exported: list[Series], free: frozenset[str]) -> list[Series]:
    """The wanted series that no exported sample matches: same name and label names, and the same value of
    every label not in `free` (labels whose value depends on the moment, such as a response code)."""

    def matches(want: Series, have: Series) -> bool:
        (name, labels), (have_name, have_labels) = want, have
        return (
            name == have_name
            and set(labels) == set(have_labels)
            and all(labels[k] == have_labels[k] for k in labels if k not in free)
        )

    return [want for want in wanted if not any(matches(want, have) for have in exported)]

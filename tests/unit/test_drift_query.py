"""The KQL builder: the proof of concept's query, parameterised by service name and window only."""

from datetime import timedelta

import pytest

from modelops_drift import build_query, parse_since

# Issue 4, verbatim: the query that must keep working on the service's container logs.
ISSUE_QUERY = """ContainerLog
| where TimeGenerated > ago (30d)
| where LogEntry has 'WineQualityService' and LogEntry has 'monitoring_metrics'
| project TimeGenerated, ResponsePayload=split(LogEntry, 'INFO -')
| project timestamp=TimeGenerated, drift_magnitude=parse_json(tostring(ResponsePayload[1])).monitoring.drift.p_value
| evaluate bag_unpack(drift_magnitude)
| render timechart"""  # noqa: E501


def test_the_proof_of_concepts_query_for_its_service() -> None:
    assert build_query("WineQualityService") == ISSUE_QUERY


def test_the_default_service_is_the_services_own_default() -> None:
    assert build_query() == ISSUE_QUERY.replace("WineQualityService", "ModelService")


def test_service_name_and_window_are_the_only_differences() -> None:
    query = build_query("FraudService", "12h")
    assert query == ISSUE_QUERY.replace("WineQualityService", "FraudService").replace("(30d)", "(12h)")


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_since_parses_kql_timespans(since: str, expected: timedelta) -> None:
    assert parse_since(since) == expected


@pytest.mark.parametrize("since", ["", "0d", "30", "d", "1w", "1.5h", "-3d", "30d | take 1"])
def test_since_rejects_anything_else(since: str) -> None:
    with pytest.raises(ValueError, match="since"):
        parse_since(since)


@pytest.mark.parametrize(
    "name", ["", "Wine Service", "x' or 1==1 or LogEntry has '", "a\\b", "é" * 3, "x" * 129]
)
def test_service_names_that_would_need_escaping_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="service name"):
        build_query(name)


def test_the_window_variant_reads_the_sliding_window_test_and_nothing_else_changes() -> None:
    query = build_query("WineQualityService", source="window")
    assert query == ISSUE_QUERY.replace(".monitoring.drift.p_value", ".monitoring.window.drift.p_value")
    with pytest.raises(ValueError, match="source"):
        build_query(source="batch")

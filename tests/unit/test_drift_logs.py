"""The local path: service log lines in the contract format, parsed step for step as the KQL does."""

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelops_drift import DEFAULT_SERVICE_NAME, parse_line, read_points, summarize
from modelops_drift.cli import main
from modelops_drift.logs import has_term

FEATURES = ["fixed_acidity", "volatile_acidity", "alcohol", "is_red"]
SERVICE = DEFAULT_SERVICE_NAME  # what the default query looks for: the service's own default name


def event(
    kind: str, at: datetime, p_values: dict[str, float] | None = None, service: str = SERVICE
) -> dict[str, Any]:
    """A log event as the service writes it (the contract's fields)."""
    document: dict[str, Any] = {
        "type": kind,
        "service_name": service,
        "request_id": f"req-{at.timestamp():.0f}",
        "model_versions": {"predictor": "3", "drift": "3", "outlier": "3"},
        "timestamp": at.isoformat(),
    }
    if kind == "monitoring_metrics":
        p_values = p_values or {}
        document["monitoring"] = {
            "drift": {
                "p_value": p_values,
                "is_drift": {name: p < 0.05 for name, p in p_values.items()},
                "threshold": 0.05,
                "distance": {name: 0.1 for name in p_values},
            },
            "outliers": {"is_outlier": [0, 1], "instance_score": [-0.02, 0.13]},
        }
    return document


def line(document: dict[str, Any], at: datetime | None = None) -> str:
    """`<ISO-8601 UTC timestamp> <service_name> INFO - <one-line JSON document>`."""
    stamp = (at or datetime.fromisoformat(document["timestamp"])).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} {document['service_name']} INFO - {json.dumps(document)}"


T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_monitoring_line_gives_its_time_and_p_values() -> None:
    p_values = {"fixed_acidity": 0.41, "volatile_acidity": 0.002, "alcohol": 0.73, "is_red": 1.0}
    point = parse_line(line(event("monitoring_metrics", T0, p_values)))
    assert point is not None
    assert point.timestamp == T0
    assert point.p_values == p_values


@pytest.mark.parametrize(
    "text",
    [
        line(event("input_data", T0)),
        line(event("output_data", T0)),
        line(event("monitoring_metrics", T0, {"alcohol": 0.5}, service="OtherService")),
        line(event("monitoring_metrics", T0, {"alcohol": 0.5}, service=f"{SERVICE}V2")),
        f"2026-11-26T12:00:00Z {SERVICE} INFO - not json monitoring_metrics",
        f"2026-11-26T12:00:00Z {SERVICE} WARNING monitoring_metrics without the separator",
        f'127.0.0.1:5000 (scheme=http,method=POST,path=/predict) "monitoring_metrics" {SERVICE} 200',
    ],
    ids=["input", "output", "other-service", "longer-name", "not-json", "no-separator", "access-log"],
)
def test_lines_the_query_drops(text: str) -> None:
    assert parse_line(text) is None


def test_has_is_a_case_insensitive_whole_term_match() -> None:
    assert has_term("x winequalityservice INFO", "WineQualityService")
    assert has_term('{"type": "monitoring_metrics"}', "monitoring_metrics")
    assert not has_term("x WineQualityServices y", "WineQualityService")
    assert not has_term("pre_monitoring_metrics", "monitoring_metrics")


def test_the_json_is_the_text_between_the_first_and_second_separator() -> None:
    # split(LogEntry, 'INFO -')[1]: a second separator inside the line cuts the JSON, as in Log Analytics.
    document = event("monitoring_metrics", T0, {"alcohol": 0.5})
    document["note"] = "INFO - inside"
    assert parse_line(line(document)) is None


def test_a_null_or_odd_p_value_bag_keeps_the_row_without_values() -> None:
    document = event("monitoring_metrics", T0, {"alcohol": 0.5})
    document["monitoring"]["drift"]["p_value"] = None
    point = parse_line(line(document))
    assert point is not None
    assert point.p_values == {}
    document["monitoring"]["drift"]["p_value"] = {"alcohol": "0.5", "density": 0.2, "is_red": True}
    point = parse_line(line(document))
    assert point is not None
    assert point.p_values == {"density": 0.2}


def test_kubectl_timestamps_in_front_are_read_to_the_microsecond() -> None:
    text = "2026-11-26T12:00:00.123456789Z " + line(event("monitoring_metrics", T0, {"alcohol": 0.5}))
    point = parse_line(text)
    assert point is not None
    assert point.timestamp == T0.replace(microsecond=123456)


def test_points_are_sorted_and_summarised_per_feature() -> None:
    series = [0.8, 0.2, 0.03, 0.01, 0.04]
    lines = [
        line(event("monitoring_metrics", T0 + timedelta(minutes=i), {"alcohol": p, "is_red": 0.9}))
        for i, p in enumerate(series)
    ]
    lines.reverse()
    lines.insert(2, line(event("input_data", T0)))
    points = read_points(lines)
    assert [p.p_values["alcohol"] for p in points] == series
    alcohol, is_red = summarize(points)
    assert (alcohol.feature, alcohol.points, alcohol.latest_p_value, alcohol.min_p_value) == (
        "alcohol",
        5,
        0.04,
        0.01,
    )
    assert alcohol.min_at == T0 + timedelta(minutes=3)
    assert alcohol.drifted_points == 3
    assert (is_red.feature, is_red.drifted_points) == ("is_red", 0)
    assert summarize(points, threshold=0.02)[0].drifted_points == 1


def test_the_cli_reads_a_log_file_and_writes_the_series_csv(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = line(event("monitoring_metrics", now - timedelta(days=40), {"alcohol": 0.0001}))
    recent = [
        line(event("monitoring_metrics", now - timedelta(hours=h), {"alcohol": p, "volatile_acidity": 0.6}))
        for h, p in [(3, 0.5), (2, 0.01), (1, 0.02)]
    ]
    log_file = tmp_path / "service.log"
    log_file.write_text("\n".join([old, *recent, line(event("output_data", now))]) + "\n")
    out, err, csv_file = io.StringIO(), io.StringIO(), tmp_path / "series.csv"

    code = main(
        ["--log-file", str(log_file), "--since", "30d", "--csv", str(csv_file)], stdout=out, stderr=err
    )

    assert code == 0, err.getvalue()
    rows = [row.split() for row in out.getvalue().splitlines()]
    assert rows[0][:3] == ["feature", "points", "latest"]
    assert rows[1][:3] == ["alcohol", "3", "0.02"]  # the 40-day-old point is outside the window
    assert rows[1][-1] == "2"
    assert rows[2][0] == "volatile_acidity"
    csv_lines = csv_file.read_text().splitlines()
    assert csv_lines[0] == "timestamp,alcohol,volatile_acidity"
    assert len(csv_lines) == 4


def test_the_cli_reads_stdin_and_prints_csv() -> None:
    now = datetime.now(UTC)
    text = line(event("monitoring_metrics", now - timedelta(minutes=5), {"alcohol": 0.2})) + "\n"
    out = io.StringIO()
    assert (
        main(
            ["--log-file", "-", "--format", "csv"], stdin=io.StringIO(text), stdout=out, stderr=io.StringIO()
        )
        == 0
    )
    header, row = out.getvalue().splitlines()
    assert header.startswith("feature,points,latest_p_value")
    assert row.startswith("alcohol,1,0.2,")


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-file", "/nonexistent/service.log"],
        ["--log-file", "-", "--since", "forever"],
        ["--log-file", "-", "--service-name", "a b"],
    ],
    ids=["missing-file", "bad-since", "bad-service-name"],
)
def test_the_cli_exits_2_on_bad_input(argv: list[str]) -> None:
    err = io.StringIO()
    assert main(argv, stdin=io.StringIO(""), stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue().startswith("error:")


def test_lines_written_by_the_service_parse_as_the_service_and_the_query_agree() -> None:
    """The contract end to end: the service's own event writer, then the drift analysis."""
    events = pytest.importorskip("modelops_service.events")
    p_values = {"alcohol": 0.0123, "density": 0.5, "is_red": 1.0}
    stamp = events.utc_timestamp(T0)
    common = (SERVICE, "req-1", {"predictor": "3", "drift": "3", "outlier": "3"}, stamp)
    monitoring = {"drift": {"p_value": p_values, "threshold": 0.05}, "outliers": {"is_outlier": [0]}}
    stream = io.StringIO()
    events.EventLog(stream).write(
        [
            events.build_event(events.INPUT_DATA, *common, inputs=[{"alcohol": 9.1}]),
            events.build_event(events.MONITORING_METRICS, *common, monitoring=monitoring),
            events.build_event(events.OUTPUT_DATA, *common, outputs=[{"quality": 0}]),
        ]
    )
    lines = stream.getvalue().splitlines()
    points = read_points(lines)
    assert len(points) == 1
    assert points[0].timestamp == T0
    assert points[0].p_values == p_values


def test_window_drift_is_read_from_the_window_once_it_is_full() -> None:
    filling = event("monitoring_metrics", T0, {"alcohol": 0.9})
    filling["monitoring"]["window"] = {"rows": 40, "size": 500, "min_rows": 100, "drift": None}
    full = event("monitoring_metrics", T0 + timedelta(minutes=1), {"alcohol": 0.8})
    window_drift = {"p_value": {"alcohol": 0.0004}, "is_drift": {"alcohol": True}, "threshold": 0.05}
    full["monitoring"]["window"] = {"rows": 120, "size": 500, "min_rows": 100, "drift": window_drift}
    lines = [line(filling), line(full)]

    points = read_points(lines, source="window")
    assert [p.p_values for p in points] == [{}, {"alcohol": 0.0004}]
    assert [p.p_values for p in read_points(lines)] == [{"alcohol": 0.9}, {"alcohol": 0.8}]
    (alcohol,) = summarize(points)
    assert (alcohol.points, alcohol.drifted_points) == (1, 1)

    now = datetime.now(UTC)
    recent = [line(document, at=now - timedelta(minutes=5)) for document in (filling, full)]
    out = io.StringIO()
    code = main(["--log-file", "-", "--window"], stdin=io.StringIO("\n".join(recent)), stdout=out)
    assert code == 0
    assert out.getvalue().splitlines()[1].split()[:3] == ["alcohol", "1", "0.0004"]

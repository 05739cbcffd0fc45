"""Log lines: one JSON document per event after 'INFO -', parsed as the Log Analytics query does."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from modelops_drift.logs import parse_line
from modelops_service import events
from modelops_service.events import (
    MONITORING_METRICS,
    EventLog,
    build_event,
    format_line,
    utc_timestamp,
)
from modelops_service.jsontext import RawJSON
from modelops_support.waiting import wait_for

VERSIONS = {
    "predictor": "wine_quality/3",
    "drift": "wine_quality_drift/3",
    "outlier": "wine_quality_outliers/3",
}


def test_monitoring_line_parses_like_the_query() -> None:
    p_value = {"alcohol": 0.5, "pH": 0.01}
    event = build_event(
        MONITORING_METRICS,
        "WineQualityService",
        "r1",
        VERSIONS,
        "2026-01-02T03:04:05.000006Z",
        monitoring={"drift": {"p_value": p_value, "threshold": 0.05}},
    )
    line = format_line(event)
    assert line.startswith("2026-01-02T03:04:05.000006Z WineQualityService INFO - {")
    assert "\n" not in line
    point = parse_line(line, "WineQualityService")  # the query's filter and parsing (modelops_drift)
    assert point is not None
    assert point.p_values == p_value
    assert json.loads(line.split("INFO -")[1])["request_id"] == "r1"


def test_other_lines_give_null() -> None:
    assert parse_line("2026-01-01 [INFO] [cli] Starting production HTTP BentoServer") is None
    event = build_event("output_data", "S", "r", VERSIONS, utc_timestamp(), outputs=[])
    assert parse_line(format_line(event), "S") is None


def test_timestamp_is_utc_iso() -> None:
    moment = datetime(2026, 11, 27, 1, 2, 3, 4, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-11-27T01:02:03.000004Z"


def test_event_log_writes_whole_lines() -> None:
    stream = io.StringIO()
    events = [build_event(t, "S", "r", VERSIONS, utc_timestamp()) for t in ("input_data", "output_data")]
    EventLog(stream).write(events)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line.split("INFO -")[1])["type"] for line in lines] == ["input_data", "output_data"]


def test_raw_json_fields_are_spliced_in_unchanged() -> None:
    raw = RawJSON('{"drift":{"p_value":{"a":0.5}}}')
    event = build_event(MONITORING_METRICS, "S", "r", VERSIONS, utc_timestamp(), monitoring=raw)
    line = format_line(event)
    point = parse_line(line, "S")
    assert point is not None
    assert point.p_values == {"a": 0.5}
    assert json.loads(line.split("INFO -")[1])["type"] == MONITORING_METRICS


def test_buffered_event_log_writes_in_order_once_per_period() -> None:
    class Counting(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            Counting.writes += 1
            return super().write(text)

    stream = Counting()
    log = EventLog(stream, flush_seconds=0.5)
    ids = [f"r{i}" for i in range(40)]
    for request_id in ids:
        log.write([build_event("output_data", "S", request_id, VERSIONS, utc_timestamp())])

    def written() -> list[str] | None:
        lines = stream.getvalue().splitlines()
        return lines if len(lines) == len(ids) else None

    lines = wait_for(written, 5, 0.01, "the waiting lines")
    assert [json.loads(line.split("INFO -")[1])["request_id"] for line in lines] == ids
    assert Counting.writes <= 3  # the first line at once, the rest in one or two periods' writes
    # Past LOG_FLUSH_BYTES the request that brings it there writes, in order, without waiting for the thread.
    big = "x" * (events.LOG_FLUSH_BYTES + 1)
    log.write([build_event("output_data", "S", "big", VERSIONS, utc_timestamp(), outputs=big)])
    assert stream.getvalue().splitlines()[-1].endswith(f'"outputs":"{big}"}}')

"""Structured log events, one line each on stdout: `<UTC ISO time> <service> INFO - <JSON>`.

The Log Analytics query splits a line on 'INFO -' and reads `monitoring.drift.p_value` from the JSON
after it; `parse_drift_p_values` applies exactly that parsing and is tested on captured lines."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from modelops_service.jsontext import RawJSON, to_json

INPUT_DATA = "input_data"
MONITORING_METRICS = "monitoring_metrics"
OUTPUT_DATA = "output_data"


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with microseconds and a Z suffix."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def build_event(
    event_type: str,
    service_name: str,
    request_id: str,
    model_versions: dict[str, str],
    timestamp: str,
    **payload: Any,
) -> dict[str, Any]:
    """One log document; `payload` adds the event's own fields (inputs, monitoring or outputs)."""
    return {
        "type": event_type,
        "service_name": service_name,
        "request_id": request_id,
        "model_versions": model_versions,
        "timestamp": timestamp,
        **payload,
    }


def format_line(event: dict[str, Any]) -> str:
    """The log line for an event (no trailing newline); the JSON is kept on one line."""
    plain = {key: value for key, value in event.items() if not isinstance(value, RawJSON)}
    document = to_json(plain)
    raw = "".join(f",{json.dumps(key)}:{value}" for key, value in event.items() if isinstance(value, RawJSON))
    if raw:
        document = document[:-1] + raw + "}"
    return f"{event['timestamp']} {event['service_name']} INFO - {document}"


def parse_drift_p_values(line: str) -> dict[str, float] | None:
    """What the KQL yields for a line: split on 'INFO -', parse part 1 as JSON, take monitoring.drift.p_value.

    Returns None where KQL's parse_json/property access gives null (no JSON, or no such path).
    """
    parts = line.split("INFO -")
    if len(parts) < 2:
        return None
    try:
        document = json.loads(parts[1])
    except json.JSONDecodeError:
        return None
    value: Any = document
    for key in ("monitoring", "drift", "p_value"):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, dict) else None


def matches_query_filter(line: str, service_name: str) -> bool:
    """The query's `where LogEntry has '<service>' and LogEntry has 'monitoring_metrics'` (as substrings)."""
    return service_name in line and MONITORING_METRICS in line


class EventLog:
    """Writes a request's events to a stream (stdout by default) as whole lines, flushed at once."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, events: list[dict[str, Any]]) -> None:
        text = "".join(format_line(event) + "\n" for event in events)
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(text)
            stream.flush()

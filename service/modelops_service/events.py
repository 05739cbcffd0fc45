"""Structured log events, one line each on stdout: `<UTC ISO time> <service> INFO - <JSON>`.

The Log Analytics query splits a line on 'INFO -' and reads `monitoring.drift.p_value` from the JSON
after it; modelops_drift.logs applies exactly that parsing (to local logs too) and the tests read
captured lines with it."""

from __future__ import annotations

import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from modelops_service.jsontext import to_json

# A client's request id is echoed in a response header and written into every log line of the request:
# only ids of this shape are kept (no spaces, so never the log's "INFO -" separator); others are replaced.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def acceptable_request_id(value: str) -> bool:
    """Whether a client's request id may be used as is (ASCII letters, digits, . _ : -; at most 128)."""
    return REQUEST_ID.fullmatch(value) is not None


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
    return f"{event['timestamp']} {event['service_name']} INFO - {to_json(event)}"


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

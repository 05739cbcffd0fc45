"""The issue-4 query's parsing, applied to log lines collected locally (`kubectl logs`, a file, stdin).

Each step mirrors one KQL operator, so that a local chart and the Log Analytics chart agree:
`has` filter -> `split(LogEntry, 'INFO -')[1]` -> `parse_json(...).monitoring.drift.p_value` -> `bag_unpack`.
"""

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from modelops_drift.query import DEFAULT_SERVICE_NAME, check_service_name, drift_path
from modelops_drift.series import DriftPoint, to_p_values

_SEPARATOR = "INFO -"
# RFC 3339 with up to nanoseconds (kubectl --timestamps); Python keeps microseconds.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def has_term(text: str, term: str) -> bool:
    """KQL `has`: the term occurs as a whole token, ignoring case."""
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(term)}(?![A-Za-z0-9_])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def parse_timestamp(text: str) -> datetime | None:
    """An ISO-8601 timestamp as UTC, or None when the text is not one."""
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def line_timestamp(line: str, document: dict[str, object]) -> datetime | None:
    """The line's leading timestamp (what Log Analytics records as TimeGenerated), else the event's own."""
    head = line.split(maxsplit=1)
    moment = parse_timestamp(head[0]) if head else None
    if moment is None and isinstance(document.get("timestamp"), str):
        moment = parse_timestamp(str(document["timestamp"]))
    return moment


def property_at(document: object, path: tuple[str, ...]) -> object:
    """KQL's `.a.b.c` on a dynamic value: the value at the path, or None where any step is missing."""
    value = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def parse_line(
    line: str, service_name: str = DEFAULT_SERVICE_NAME, source: str = "request"
) -> DriftPoint | None:
    """One log line to a drift point as the KQL would make it, or None when the query would drop it."""
    path = drift_path(source)
    if not (has_term(line, check_service_name(service_name)) and has_term(line, "monitoring_metrics")):
        return None
    parts = line.split(_SEPARATOR)
    if len(parts) < 2:
        return None
    try:
        document = json.loads(parts[1])
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    timestamp = line_timestamp(line, document)
    if timestamp is None:
        return None
    return DriftPoint(timestamp=timestamp, p_values=to_p_values(property_at(document, path)))


def read_points(
    lines: Iterable[str],
    service_name: str = DEFAULT_SERVICE_NAME,
    since: datetime | None = None,
    source: str = "request",
) -> list[DriftPoint]:
    """Drift points from log lines, oldest first, optionally only those after `since`."""
    parsed = (parse_line(line.rstrip("\n"), service_name, source) for line in lines)
    points = [point for point in parsed if point is not None]
    if since is not None:
        points = [point for point in points if point.timestamp > since]
    return sorted(points, key=lambda point: point.timestamp)

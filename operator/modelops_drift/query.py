"""The issue-4 KQL, built for a service name and a time window."""

import re
from datetime import timedelta

DEFAULT_SERVICE_NAME = "WineQualityService"
DEFAULT_SINCE = "30d"

# KQL timespan literals we accept for --since: a whole number and one unit (d, h, m, s).
_SINCE = re.compile(r"^(?P<count>[1-9][0-9]*)(?P<unit>[dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
# A service name goes into a KQL string literal: keep it to characters that need no escaping.
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

# The proof of concept's query, line for line; only the service name and the window are parameters.
_TEMPLATE = "\n".join(
    [
        "ContainerLog",
        "| where TimeGenerated > ago ({since})",
        "| where LogEntry has '{service}' and LogEntry has 'monitoring_metrics'",
        "| project TimeGenerated, ResponsePayload=split(LogEntry, 'INFO -')",
        "| project timestamp=TimeGenerated,"
        " drift_magnitude=parse_json(tostring(ResponsePayload[1])).monitoring.drift.p_value",
        "| evaluate bag_unpack(drift_magnitude)",
        "| render timechart",
    ]
)


def parse_since(since: str) -> timedelta:
    """Turn a KQL timespan literal such as `30d` or `12h` into a timedelta."""
    match = _SINCE.match(since)
    if match is None:
        raise ValueError(f"since must be a whole number and a unit d, h, m or s (such as 30d), not {since!r}")
    return timedelta(**{_UNITS[match["unit"]]: int(match["count"])})


def check_service_name(service_name: str) -> str:
    """Return the name if it can stand inside a KQL string literal unescaped, else raise ValueError."""
    if _SERVICE_NAME.match(service_name) is None:
        raise ValueError(f"service name must be 1-128 letters, digits, '_', '.' or '-', not {service_name!r}")
    return service_name


def build_query(service_name: str = DEFAULT_SERVICE_NAME, since: str = DEFAULT_SINCE) -> str:
    """The drift-over-time query for one service and window (`render` is kept for the portal)."""
    parse_since(since)
    return _TEMPLATE.format(service=check_service_name(service_name), since=since)

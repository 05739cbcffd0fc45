"""The issue-4 KQL, built for a service name and a time window."""

import re
from datetime import timedelta

from modelops_contract import DEFAULTS

# The service's own default name (MODELOPS_SERVICE_NAME unset), so that the default query finds the logs
# of a service deployed with defaults; the proof of concept's service is `--service-name WineQualityService`.
DEFAULT_SERVICE_NAME = DEFAULTS.service_name
DEFAULT_SINCE = "30d"

# Where the p-values sit in a monitoring_metrics event: the per-request test (the proof of concept's
# query) or the test over the service's sliding window of recent rows (present once the window is full).
DRIFT_PATHS = {
    "request": ("monitoring", "drift", "p_value"),
    "window": ("monitoring", "window", "drift", "p_value"),
}

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
        "| project timestamp=TimeGenerated, drift_magnitude=parse_json(tostring(ResponsePayload[1])).{path}",
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


def build_query(
    service_name: str = DEFAULT_SERVICE_NAME, since: str = DEFAULT_SINCE, source: str = "request"
) -> str:
    """The drift-over-time query for one service and time window (`render` is kept for the portal).

    `source` picks the per-request p-values (the default, the proof of concept's query) or the window's.
    """
    parse_since(since)
    path = ".".join(drift_path(source))
    return _TEMPLATE.format(service=check_service_name(service_name), since=since, path=path)


def drift_path(source: str) -> tuple[str, ...]:
    """The JSON path of the p-value map for a source (`request` or `window`)."""
    if source not in DRIFT_PATHS:
        raise ValueError(f"source must be one of {sorted(DRIFT_PATHS)}, not {source!r}")
    return DRIFT_PATHS[source]

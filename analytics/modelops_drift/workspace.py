"""The Azure edge: run the issue-4 KQL in a Log Analytics workspace and read its (possibly partial) tables."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.monitor.query import LogsQueryClient, LogsQueryStatus, LogsTable

from modelops_drift.logs import parse_timestamp
from modelops_drift.query import DEFAULT_SERVICE_NAME, DEFAULT_SINCE, build_query, parse_since
from modelops_drift.series import DriftPoint, to_p_values

TIMESTAMP_COLUMN = "timestamp"


@dataclass(frozen=True)
class WorkspaceResult:
    """The drift points a query returned; `partial_error` is set when Log Analytics answered PARTIAL."""

    query: str
    points: list[DriftPoint]
    partial_error: str | None = None


def to_datetime(value: Any) -> datetime | None:
    """A `datetime` column value (already parsed by the client, or left as text when it could not be)."""
    if isinstance(value, datetime):
        return value
    return parse_timestamp(value) if isinstance(value, str) else None


def points_from_tables(tables: Sequence[LogsTable]) -> list[DriftPoint]:
    """Rows after `bag_unpack` (timestamp + one column per feature) to drift points, oldest first."""
    points = []
    for table in tables:
        if TIMESTAMP_COLUMN not in table.columns:
            continue
        features = [column for column in table.columns if column != TIMESTAMP_COLUMN]
        for row in table.rows:
            timestamp = to_datetime(row[TIMESTAMP_COLUMN])
            if timestamp is not None:
                points.append(DriftPoint(timestamp, to_p_values({name: row[name] for name in features})))
    return sorted(points, key=lambda point: point.timestamp)


def query_drift(
    client: LogsQueryClient,
    workspace_id: str,
    service_name: str = DEFAULT_SERVICE_NAME,
    since: str = DEFAULT_SINCE,
    source: str = "request",
) -> WorkspaceResult:
    """Run the drift query over the window `since` and keep what came back, even when only partly."""
    kql = build_query(service_name, since, source)
    response = client.query_workspace(workspace_id, kql, timespan=parse_since(since))
    if response.status == LogsQueryStatus.PARTIAL:
        error = response.partial_error
        message = f"{error.code}: {error.message}" if error is not None else "partial result"
        return WorkspaceResult(kql, points_from_tables(response.partial_data), partial_error=message)
    return WorkspaceResult(kql, points_from_tables(response.tables))


def make_client(endpoint: str | None = None) -> LogsQueryClient:
    """A Log Analytics client with DefaultAzureCredential (environment, workload identity, Azure CLI, ...)."""
    from azure.identity import DefaultAzureCredential  # imported here: only the workspace path needs it

    options = {"endpoint": endpoint} if endpoint else {}
    return LogsQueryClient(DefaultAzureCredential(), **options)

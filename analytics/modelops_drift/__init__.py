"""Drift over time from the prediction service's logs: Azure Log Analytics (KQL) or local log lines."""

from modelops_drift.logs import parse_line, read_points
from modelops_drift.query import DEFAULT_SERVICE_NAME, build_query, parse_since
from modelops_drift.series import DriftPoint
from modelops_drift.summary import FeatureSummary, summarize
from modelops_drift.workspace import WorkspaceResult, points_from_tables, query_drift

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "DriftPoint",
    "FeatureSummary",
    "WorkspaceResult",
    "build_query",
    "parse_line",
    "parse_since",
    "points_from_tables",
    "query_drift",
    "read_points",
    "summarize",
]

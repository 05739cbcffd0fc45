"""Text and CSV renderings of drift summaries and series."""

import csv
import io
from datetime import datetime

from modelops_drift.series import DriftPoint, features_of
from modelops_drift.summary import FeatureSummary

_HEADERS = ("feature", "points", "latest p-value", "latest at", "min p-value", "min at", "drifted")


def format_time(moment: datetime) -> str:
    """UTC time to the second, as in the service's log lines."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_table(summaries: list[FeatureSummary]) -> str:
    """A fixed-width text table of the summaries, one feature a line."""
    rows = [_HEADERS] + [
        (
            s.feature,
            str(s.points),
            f"{s.latest_p_value:.4g}",
            format_time(s.latest_at),
            f"{s.min_p_value:.4g}",
            format_time(s.min_at),
            str(s.drifted_points),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_series_csv(points: list[DriftPoint]) -> str:
    """The time chart's data: a timestamp column and one p-value column per feature (empty when absent)."""
    features = features_of(points)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["timestamp", *features])
    for point in points:
        writer.writerow([format_time(point.timestamp), *(point.p_values.get(f, "") for f in features)])
    return buffer.getvalue()


def render_summary_csv(summaries: list[FeatureSummary]) -> str:
    """The summaries as CSV, one feature a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["feature", "points", "latest_p_value", "latest_at", "min_p_value", "min_at", "drifted_points"]
    )
    for s in summaries:
        writer.writerow(
            [
                s.feature,
                s.points,
                s.latest_p_value,
                format_time(s.latest_at),
                s.min_p_value,
                format_time(s.min_at),
                s.drifted_points,
            ]
        )
    return buffer.getvalue()

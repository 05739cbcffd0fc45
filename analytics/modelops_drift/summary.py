"""Per-feature summary of drift over time: latest and lowest p-value, and how often drift was flagged."""

from dataclasses import dataclass
from datetime import datetime

from modelops_drift.series import DriftPoint, features_of

# alibi-detect's TabularDrift default: a feature drifts when its p-value is below 0.05.
DEFAULT_THRESHOLD = 0.05


@dataclass(frozen=True)
class FeatureSummary:
    """What the time chart of one feature says, in numbers."""

    feature: str
    points: int
    latest_p_value: float
    latest_at: datetime
    min_p_value: float
    min_at: datetime
    drifted_points: int


def summarize(points: list[DriftPoint], threshold: float = DEFAULT_THRESHOLD) -> list[FeatureSummary]:
    """One summary per feature, most drifted (lowest latest p-value) first."""
    ordered = sorted(points, key=lambda point: point.timestamp)
    summaries = []
    for feature in features_of(ordered):
        series = [
            (point.timestamp, point.p_values[feature]) for point in ordered if feature in point.p_values
        ]
        latest_at, latest = series[-1]
        min_at, lowest = min(series, key=lambda item: item[1])
        summaries.append(
            FeatureSummary(
                feature=feature,
                points=len(series),
                latest_p_value=latest,
                latest_at=latest_at,
                min_p_value=lowest,
                min_at=min_at,
                drifted_points=sum(1 for _, p_value in series if p_value < threshold),
            )
        )
    return sorted(summaries, key=lambda summary: (summary.latest_p_value, summary.feature))

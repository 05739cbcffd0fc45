"""The unit of drift over time: one monitoring_metrics event, its time and its per-feature p-values."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class DriftPoint:
    """One row of the issue-4 query after `bag_unpack`: a time and a p-value per feature."""

    timestamp: datetime
    p_values: dict[str, float] = field(default_factory=dict)


def to_p_values(bag: object) -> dict[str, float]:
    """Keep the numeric entries of a `monitoring.drift.p_value` bag, as `bag_unpack` + a chart would."""
    if not isinstance(bag, dict):
        return {}
    return {
        str(name): float(value)
        for name, value in bag.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def features_of(points: list[DriftPoint]) -> list[str]:
    """Every feature seen in the points, in first-seen order (the columns `bag_unpack` would make)."""
    seen: dict[str, None] = {}
    for point in points:
        for name in point.p_values:
            seen.setdefault(name)
    return list(seen)

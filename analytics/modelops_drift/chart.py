"""The time chart of the proof of concept's query (`render timechart`) as a picture: p-value per feature over
time, per request and for the window, the threshold drawn and drifted points marked.

matplotlib's object API with its Agg canvas: no display, no pyplot state; PNG or SVG by the file's suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from modelops_drift.series import DriftPoint, features_of

# p-values below this are drawn on it (a log axis cannot show 0, and 1e-127 says no more than 1e-10).
FLOOR = 1e-10
FORMATS = (".png", ".svg")
PANELS = (("request", "per request (the proof of concept's query)"), ("window", "window of recent rows"))


@dataclass(frozen=True)
class PanelSummary:
    """What one panel shows, in numbers: its points and where drift first appeared."""

    source: str
    points: int
    drifted_points: int
    first_drift_at: datetime | None
    first_drift_features: tuple[str, ...]


def first_drift(points: list[DriftPoint], threshold: float) -> tuple[datetime | None, tuple[str, ...]]:
    """The first time any feature's p-value was below the threshold, and which features were (pure)."""
    for point in sorted(points, key=lambda p: p.timestamp):
        drifted = tuple(sorted(f for f, p in point.p_values.items() if p < threshold))
        if drifted:
            return point.timestamp, drifted
    return None, ()


def summarize_panel(source: str, points: list[DriftPoint], threshold: float) -> PanelSummary:
    at, features = first_drift(points, threshold)
    drifted = sum(1 for point in points if any(p < threshold for p in point.p_values.values()))
    return PanelSummary(source, len(points), drifted, at, features)


def check_chart_path(path: Path) -> Path:
    """The chart's path, if its suffix names a format the chart is written in; else ValueError."""
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"--plot {path}: the file must end in {' or '.join(FORMATS)}")
    return path


def render_chart(
    series: dict[str, list[DriftPoint]],
    path: Path,
    service_name: str,
    threshold: float,
) -> list[PanelSummary]:
    """Write the chart of the `request` and `window` series to `path`; the summaries of its panels."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    check_chart_path(path)
    features = features_of([point for source, _ in PANELS for point in series.get(source, [])])
    colours = {feature: f"C{i % 10}" for i, feature in enumerate(features)}
    styles = {feature: "-" if i < 10 else "--" for i, feature in enumerate(features)}
    figure = Figure(figsize=(12, 8), layout="constrained")
    axes = figure.subplots(len(PANELS), 1, sharex=True)
    summaries = []
    for ax, (source, title) in zip(axes, PANELS, strict=True):
        points = sorted(series.get(source, []), key=lambda p: p.timestamp)
        summary = summarize_panel(source, points, threshold)
        summaries.append(summary)
        for feature in features:
            line = [(p.timestamp, max(p.p_values[feature], FLOOR)) for p in points if feature in p.p_values]
            if not line:
                continue
            times, values = zip(*line, strict=True)
            ax.plot(times, values, styles[feature], color=colours[feature], linewidth=1.2, label=feature)
            low = [(t, v) for t, v in line if v < threshold]
            if low:
                low_times, low_values = zip(*low, strict=True)
                ax.plot(low_times, low_values, "x", color=colours[feature], markersize=6, markeredgewidth=1.5)
        ax.axhline(threshold, color="red", linewidth=1.5, linestyle=":", label=f"threshold {threshold:g}")
        if summary.first_drift_at is not None:
            ax.axvline(summary.first_drift_at, color="grey", linewidth=1, linestyle="--")
            ax.annotate(
                f"first drift: {', '.join(summary.first_drift_features[:3])}"
                + (" ..." if len(summary.first_drift_features) > 3 else "")
                + f"\n{summary.first_drift_at:%Y-%m-%d %H:%M:%S} UTC",
                xy=(summary.first_drift_at, 0.03),
                xycoords=("data", "axes fraction"),
                xytext=(4, 0),
                textcoords="offset points",
                va="bottom",
                fontsize=8,
                color="dimgrey",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 2, 2.0)
        ax.set_ylabel("p-value (log)")
        drifted = f"{summary.drifted_points} of {summary.points} points drifted (x)"
        ax.set_title(f"{title}: {drifted}" if points else f"{title}: no points", loc="left", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes[-1].set_xlabel("time (UTC)")
    if features:
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="feature")
    figure.suptitle(f"Drift p-value per feature over time: {service_name} (below {threshold:g}: drift)")
    figure.savefig(path, dpi=100)
    return summaries

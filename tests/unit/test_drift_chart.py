"""The drift time chart: which panel shows what, where drift first appears, and the files it writes."""

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib.image import imread

from modelops_drift.chart import first_drift, render_chart
from modelops_drift.cli import main
from modelops_drift.series import DriftPoint

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def points(p_values: list[dict[str, float]]) -> list[DriftPoint]:
    return [DriftPoint(T0 + timedelta(seconds=10 * i), p) for i, p in enumerate(p_values)]


def test_first_drift_is_the_first_point_below_the_threshold_whatever_the_order() -> None:
    series = points([{"a": 0.5, "b": 0.9}, {"a": 0.2, "b": 0.04}, {"a": 0.01, "b": 0.01}])
    assert first_drift(list(reversed(series)), 0.05) == (series[1].timestamp, ("b",))
    assert first_drift(series, 0.001) == (None, ())


def test_the_chart_is_written_with_a_panel_per_series(tmp_path: Path) -> None:
    request = points([{"alcohol": 0.6, "pH": 0.3}] * 5 + [{"alcohol": 1e-30, "pH": 0.4}] * 5)
    window = points([{"alcohol": 0.7}] * 6 + [{"alcohol": 0.001}] * 4)
    path = tmp_path / "drift.png"
    panels = render_chart({"request": request, "window": window}, path, "WineQualityService", 0.05)
    assert [(p.source, p.points, p.drifted_points) for p in panels] == [("request", 10, 5), ("window", 10, 4)]
    assert panels[0].first_drift_at == request[5].timestamp
    assert panels[1].first_drift_features == ("alcohol",)
    image = imread(path)
    assert image.shape[:2] == (800, 1200)  # 12 x 8 inches at 100 dpi


def test_an_svg_chart_and_an_empty_panel(tmp_path: Path) -> None:
    path = tmp_path / "drift.svg"
    panels = render_chart({"request": points([{"alcohol": 0.5}])}, path, "ModelService", 0.05)
    assert panels[1].points == 0
    svg = path.read_text()
    assert svg.startswith("<?xml")
    assert "no points" in svg


def log_line(at: datetime, request: dict[str, float], window: dict[str, float] | None) -> str:
    monitoring: dict = {"drift": {"p_value": request}}
    if window is not None:
        monitoring["window"] = {"drift": {"p_value": window}}
    document = {"type": "monitoring_metrics", "service_name": "ModelService", "monitoring": monitoring}
    return f"{at:%Y-%m-%dT%H:%M:%S.%fZ} ModelService INFO - {json.dumps(document)}"


def test_the_cli_plots_both_series_from_one_read_of_stdin(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    lines = [
        log_line(
            now - timedelta(minutes=10 - i),
            {"alcohol": 0.3 if i < 5 else 0.001},
            None if i < 2 else {"alcohol": 0.4 if i < 7 else 0.002},
        )
        for i in range(10)
    ]
    path, err = tmp_path / "drift.png", io.StringIO()
    code = main(
        ["--log-file", "-", "--plot", str(path)],
        stdin=io.StringIO("\n".join(lines) + "\n"),
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 0, err.getvalue()
    report = err.getvalue().splitlines()
    assert report[0] == f"wrote {path}"
    assert report[1].startswith("  request: 10 points, 5 drifted; first drift ")
    # Events before the window was first tested carry no window values (a row without columns, as in KQL).
    assert report[2].startswith("  window: 10 points, 3 drifted; first drift ")
    assert report[2].endswith("(alcohol)")
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("name", ["drift.jpg", "drift"])
def test_a_chart_format_it_cannot_write_is_refused_before_any_reading(name: str, tmp_path: Path) -> None:
    err = io.StringIO()
    code = main(
        ["--log-file", "/nonexistent", "--plot", str(tmp_path / name)], stdout=io.StringIO(), stderr=err
    )
    assert code == 2
    assert ".png or .svg" in err.getvalue()

"""The drift chart from logs the real service wrote (`bentoml serve`, real models, real wine rows): normal
traffic, then the same kind of rows with more alcohol. The window panel must show the shift where it
happened: alcohol above the threshold before it, below after it; the picture is written as a PNG.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from matplotlib.image import imread

from modelops_drift.cli import main
from modelops_drift.logs import read_points
from modelops_support.waiting import wait_for
from tests.fixtures.data import shifted, wine_records
from tests.fixtures.service import WINDOW_ENV, start_service

BATCHES, ROWS = 15, 20  # per phase; the window holds 200 rows and is tested every 10 from 50


@pytest.fixture
def service_log(service_models: dict[str, str], tmp_path: Path, wine_data_dir: Path) -> Iterator[Path]:
    """The log of a fresh service after normal traffic, then shifted traffic (alcohol + 3)."""
    service = start_service(service_models, tmp_path / "service", WINDOW_ENV)
    try:
        url = f"{service.url}/predict"
        for phase, seed in (("normal", 100), ("shifted", 200)):
            for batch in range(BATCHES):
                records = wine_records(wine_data_dir, ROWS, seed=seed + batch)
                if phase == "shifted":
                    records = shifted(records, "alcohol", 3.0)
                answer = httpx.post(url, json=records, timeout=60).raise_for_status()
        last = answer.json()["request_id"]
        wait_for(lambda: last in service.log_text(), 10, 0.1, "the last request's lines in the log")
        yield service.log_path
    finally:
        service.close()


def shift_index(log: Path, source: str) -> list[float | None]:
    with log.open(encoding="utf-8") as lines:
        return [p.p_values.get("alcohol") for p in read_points(lines, source=source)]


def test_the_chart_shows_the_shift_where_it_happened(service_log: Path, tmp_path: Path) -> None:
    window = shift_index(service_log, "window")
    assert len(window) == 2 * BATCHES
    before, after = window[:BATCHES], window[BATCHES:]
    tested_before = [p for p in before if p is not None]
    assert tested_before, "the window was tested before the shift"
    assert min(tested_before) > 0.05  # real rows: alcohol as in training
    assert all(p is not None and p < 0.05 for p in after[3:])  # a few batches in, the window has drifted

    path, err = tmp_path / "drift.png", io.StringIO()
    code = main(["--log-file", str(service_log), "--plot", str(path)], stdout=io.StringIO(), stderr=err)
    assert code == 0, err.getvalue()
    report = err.getvalue().splitlines()
    assert report[1].startswith(f"  request: {2 * BATCHES} points")
    assert report[2].startswith(f"  window: {2 * BATCHES} points")
    assert imread(path).shape[:2] == (800, 1200)

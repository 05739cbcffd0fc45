"""The Monitor's window test runs off the request path, with the same reports as testing inline."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from modelops_service.drift import DriftReport, TabularDriftTest
from modelops_service.monitoring import Monitor
from modelops_service.outliers import OutlierReport
from modelops_service.settings import DriftSettings

NAMES = ["a", "b"]
SETTINGS = DriftSettings(window_size=40, window_min_rows=10, window_every=5, window_min_seconds=0)


class Outliers:
    def test(self, x: np.ndarray) -> OutlierReport:
        return OutlierReport(0.0, [False] * len(x), [0.0] * len(x))


class GatedDrift:
    """A real TabularDriftTest whose window tests (batches of at least `window` rows) wait for a gate, so the
    test can hold a window test in flight; records the threads the window tests ran on."""

    def __init__(self, reference: np.ndarray, window: int) -> None:
        self.inner = TabularDriftTest(reference, NAMES)
        self.window = window
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.threads: list[str] = []
        self.sizes: list[int] = []

    def test(self, x: np.ndarray) -> DriftReport:
        if len(x) >= self.window:
            self.threads.append(threading.current_thread().name)
            self.sizes.append(len(x))
            self.entered.set()
            assert self.gate.wait(10)
        return self.inner.test(x)


def batches(seed: int, count: int, rows: int = 5, shift: float = 0.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(rows, 2)) + shift for _ in range(count)]


@pytest.fixture
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 2))


def test_window_test_runs_in_the_background_and_requests_do_not_wait(reference: np.ndarray) -> None:
    drift = GatedDrift(reference, window=10)
    reports: list[DriftReport] = []
    monitor = Monitor(drift, Outliers(), 2, SETTINGS, on_window_report=reports.append)
    first, second, *rest = batches(1, 6)
    assert monitor.observe(first).window.drift is None  # 5 rows: below min_rows, nothing started
    # 10 rows: the test starts in its thread and waits at the gate; the request answers anyway.
    state = monitor.observe(second).window
    assert (state.rows, state.drift) == (10, None)
    assert drift.entered.wait(10)
    for batch in rest:  # due again after 5 more rows, but one test at a time: nothing else starts
        assert monitor.observe(batch).window.drift is None
    assert drift.threads == ["modelops-window-drift"]
    drift.gate.set()
    # The first test covered the first 10 rows; the 20 that came meanwhile made the thread go again by
    # itself, with no further request: its report covers all 30.
    assert monitor.wait_idle()
    assert drift.sizes == [10, 30]
    assert len(reports) == 2
    state = monitor.observe(batches(2, 1)[0]).window
    assert state.tested_rows == 30
    np.testing.assert_equal(
        list(state.drift.p_value.values()),
        list(drift.inner.test(np.concatenate([first, second, *rest])).p_value.values()),
    )
    assert monitor.wait_idle()
    assert drift.sizes == [10, 30, 35]


def test_background_reports_equal_inline_reports(reference: np.ndarray) -> None:
    """Same traffic, tested inline and in the background: after each test settles, the same report."""
    inline_drift, background_drift = GatedDrift(reference, 10), GatedDrift(reference, 10)
    inline_drift.gate.set()
    background_drift.gate.set()
    inline = Monitor(inline_drift, Outliers(), 2, SETTINGS, background=False)
    background = Monitor(background_drift, Outliers(), 2, SETTINGS)
    for batch in batches(3, 8) + batches(4, 8, shift=1.5):
        inline.observe(batch)
        background.observe(batch)
        assert background.wait_idle()
    a = inline.observe(np.zeros((1, 2))).window
    b = background.observe(np.zeros((1, 2))).window
    assert a.drift is not None
    assert b.drift is not None
    assert a.drift.is_drift == b.drift.is_drift == {"a": True, "b": True}
    assert a.drift.p_value == b.drift.p_value
    assert a.tested_rows == b.tested_rows == 80


def test_a_failing_window_test_keeps_the_thread_and_the_last_report(reference: np.ndarray) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.inner = TabularDriftTest(reference, NAMES)
            self.window_calls = 0

        def test(self, x: np.ndarray) -> DriftReport:
            if len(x) >= 10:
                self.window_calls += 1
                if self.window_calls == 2:
                    raise FloatingPointError("boom")
            return self.inner.test(x)

    flaky = Flaky()
    monitor = Monitor(flaky, Outliers(), 2, SETTINGS)
    for batch in batches(5, 2):
        monitor.observe(batch)
    assert monitor.wait_idle()
    kept = monitor.observe(batches(6, 1)[0]).window  # 15 rows: the second test starts and fails
    assert monitor.wait_idle()
    assert kept.tested_rows == 10
    assert monitor.observe(batches(7, 1)[0]).window.tested_rows == 10  # the failure left the report
    assert monitor.wait_idle()
    assert monitor.observe(batches(8, 1)[0]).window.tested_rows == 20  # and the thread tests again
    assert flaky.window_calls == 3


def test_inline_the_window_test_waits_for_its_rows_and_its_minimum_interval(reference: np.ndarray) -> None:
    """Under load the rows come faster than the interval: the test runs once per interval, not per rows."""
    now = [100.0]
    tested: list[int] = []
    settings = DriftSettings(window_size=40, window_min_rows=10, window_every=5, window_min_seconds=1.0)
    drift = TabularDriftTest(reference, NAMES)

    class Counting:
        def test(self, x: np.ndarray) -> DriftReport:
            if len(x) >= settings.window_min_rows:
                tested.append(len(x))
            return drift.test(x)

    monitor = Monitor(Counting(), Outliers(), 2, settings, background=False, clock=lambda: now[0])
    for batch in batches(4, 2):  # 10 rows: the first test is due at once
        monitor.observe(batch)
    assert tested == [10]
    for batch in batches(5, 4):  # 20 more rows, 4 x window_every, within the same second: no test
        monitor.observe(batch)
    assert tested == [10]
    now[0] += 0.5
    monitor.observe(batches(6, 1)[0])
    assert tested == [10]
    now[0] += 0.5  # one second after the first test, and rows enough: the next one
    report = monitor.observe(batches(7, 1)[0]).window
    assert tested == [10, 40]
    assert report.drift is not None
    assert report.tested_rows == 40
    now[0] += 5.0  # time enough, rows not: window_every still counts
    monitor.observe(np.zeros((1, 2)))
    assert tested == [10, 40]


def test_a_burst_held_back_by_the_interval_is_tested_without_another_request(reference: np.ndarray) -> None:
    """Rows that come within the interval after a test are tested once it has passed, though no request
    follows them (the last burst before a quiet spell is what a drift alert needs)."""
    settings = DriftSettings(window_size=40, window_min_rows=10, window_every=5, window_min_seconds=0.3)
    reports: list[DriftReport] = []
    monitor = Monitor(
        TabularDriftTest(reference, NAMES), Outliers(), 2, settings, on_window_report=reports.append
    )
    first = batches(8, 2)
    for batch in first:
        monitor.observe(batch)
    assert monitor.wait_idle()
    assert [r.rows for r in reports] == [10]
    started = time.monotonic()
    burst = batches(9, 4, shift=2.0)
    for batch in burst:  # 20 rows within the interval: the requests answer with the first report
        assert monitor.observe(batch).window.tested_rows == 10
    assert monitor.wait_idle()
    assert time.monotonic() - started >= 0.25  # held back for the interval, then tested
    assert [r.rows for r in reports] == [10, 30]
    assert (
        reports[-1].p_value == TabularDriftTest(reference, NAMES).test(np.concatenate(first + burst)).p_value
    )

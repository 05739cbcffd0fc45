"""The detect hook: per-request drift, windowed drift and outliers for one batch of rows."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelops_service.drift import DriftReport, TabularDriftTest
from modelops_service.jsontext import RawJSON, to_json
from modelops_service.outliers import IsolationForestTest, OutlierReport
from modelops_service.settings import DriftSettings
from modelops_service.window import SlidingWindow

logger = logging.getLogger(__name__)


class DriftTest(Protocol):
    """Anything that turns a batch (rows in the service's feature order) into a drift report."""

    def test(self, x: np.ndarray) -> DriftReport: ...


class OutlierTest(Protocol):
    """Anything that turns a batch into per-row outlier flags and scores."""

    def test(self, x: np.ndarray) -> OutlierReport: ...


class StandardisedDriftTest:
    """TabularDriftTest on the detector's standardised reference, as the alibi detector computes it."""

    def __init__(self, reference: Any, columns: np.ndarray | None, feature_names: Sequence[str]) -> None:
        self._columns = columns  # None: the service's columns are the detector's
        self._mean = np.asarray(reference.mean, dtype=np.float64)
        self._std = np.asarray(reference.std, dtype=np.float64)
        x_ref = (np.asarray(reference.x_ref, dtype=np.float64) - self._mean) / self._std
        self._test = TabularDriftTest(x_ref, feature_names, reference.categorical_indices, reference.p_val)

    def test(self, x: np.ndarray) -> DriftReport:
        ordered = x if self._columns is None else x[:, self._columns]
        return self._test.test((ordered - self._mean) / self._std)


class DetectorDriftTest:
    """Any `modelops_detectors.DriftDetector` (slower: the detector's own predict on each call)."""

    def __init__(self, detector: Any, columns: np.ndarray) -> None:
        self._detector = detector
        self._columns = columns

    def test(self, x: np.ndarray) -> DriftReport:
        result = self._detector.predict(x[:, self._columns])
        return DriftReport(
            threshold=float(result.threshold),
            p_value=dict(result.p_value),
            distance=dict(result.distance),
            is_drift=dict(result.is_drift),
            rows=int(x.shape[0]),
        )


class DetectorOutlierTest:
    """Any `modelops_detectors.OutlierDetector`."""

    def __init__(self, detector: Any, columns: np.ndarray) -> None:
        self._detector = detector
        self._columns = columns

    def test(self, x: np.ndarray) -> OutlierReport:
        result = self._detector.predict(x[:, self._columns])
        return OutlierReport(float(result.threshold), list(result.is_outlier), list(result.instance_score))


def column_order(detector_features: Sequence[str], service_features: Sequence[str]) -> np.ndarray:
    """Indices that take the service's columns into the detector's feature order."""
    missing = [name for name in detector_features if name not in service_features]
    if missing:
        raise ValueError(f"the detector needs features the predictor does not take: {missing}")
    return np.array([list(service_features).index(name) for name in detector_features], dtype=np.intp)


def unless_all(columns: np.ndarray, service_features: Sequence[str]) -> np.ndarray | None:
    """None when the detector takes all the service's columns in their order (no reordering per request)."""
    return None if np.array_equal(columns, np.arange(len(service_features))) else columns


def build_drift_test(detector: Any, service_features: Sequence[str]) -> DriftTest:
    """The fast exact test when the detector exposes its reference, else the detector itself."""
    columns = column_order(detector.feature_names, service_features)
    reference = getattr(detector, "reference", None)
    if reference is not None and hasattr(reference, "x_ref") and hasattr(reference, "categorical_indices"):
        return StandardisedDriftTest(reference, unless_all(columns, service_features), detector.feature_names)
    return DetectorDriftTest(detector, columns)


def build_outlier_test(detector: Any, service_features: Sequence[str]) -> OutlierTest:
    """The packed isolation forest (with the detector's range guard) when the detector offers its fitted
    forest (modelops_detectors.interface.OutlierDetector), else the detector itself."""
    columns = column_order(detector.feature_names, service_features)
    forest = getattr(detector, "fitted_forest", None)
    if forest is not None and hasattr(forest, "estimators_"):
        ranges = getattr(detector, "ranges", None)
        lower, upper = (None, None) if ranges is None else (ranges.lower, ranges.upper)
        return IsolationForestTest(
            forest, detector.threshold, lower, upper, unless_all(columns, service_features)
        )
    return DetectorOutlierTest(detector, columns)


@dataclass(frozen=True)
class WindowState:
    """The sliding window after a request: how full it is and its latest drift report, if any."""

    rows: int
    size: int
    min_rows: int
    drift: DriftReport | None
    tested_rows: int  # rows the window had received when the reported test took its snapshot

    def as_dict(self, encoded: bool = False) -> dict[str, object]:
        """The `window` object; `encoded` puts the drift report's JSON (encoded once) in its place."""
        if self.drift is None:
            drift: object = None
        else:
            drift = RawJSON(self.drift.json) if encoded else self.drift.as_dict()
        return {"rows": self.rows, "size": self.size, "min_rows": self.min_rows, "drift": drift}

    @functools.cached_property
    def json(self) -> str:
        """as_dict() as JSON text, encoded on first use and kept: the Monitor hands the same state to
        every request until the window's row count or report changes (once full, until its next test)."""
        return to_json(self.as_dict(encoded=True))


@dataclass(frozen=True)
class Monitoring:
    """What the detect hook found for one request."""

    drift: DriftReport
    window: WindowState
    outliers: OutlierReport

    def as_dict(self, encoded: bool = False) -> dict[str, object]:
        """The `monitoring` object of responses and monitoring_metrics log events; `encoded` puts the
        window's drift report's JSON (encoded once: it is in every response until the next window test)
        in its place, for to_json."""
        return {
            "drift": self.drift.as_dict(),
            "window": RawJSON(self.window.json) if encoded else self.window.as_dict(),
            "outliers": self.outliers.as_dict(),
        }

    def json(self) -> str:
        """to_json(self.as_dict()), with the window's drift report's JSON encoded once."""
        return to_json(self.as_dict(encoded=True))


class Monitor:
    """Runs the detectors on each batch and keeps this worker's sliding window.

    The window test runs off the request path, in one background thread per worker. A request that
    brings the window `window_every` new rows wakes the thread and answers with the latest finished
    report; the thread waits until `window_min_seconds` have passed since its previous test started,
    copies the window's rows (microseconds, under the lock), tests them and publishes the report (and
    calls `on_window_report`, which the service uses for its gauges). If rows enough arrived meanwhile it
    goes again, so a burst followed by silence is still tested. `background=False` tests inline (the
    report then covers the request's own rows; a test the interval holds back waits for a later request).
    """

    def __init__(
        self,
        drift_test: DriftTest,
        outlier_test: OutlierTest,
        n_features: int,
        settings: DriftSettings,
        on_window_report: Callable[[DriftReport], None] | None = None,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.drift_test = drift_test
        self.outlier_test = outlier_test
        self.settings = settings
        self.window = SlidingWindow(settings.window_size, n_features)
        self.on_window_report = on_window_report
        self._window_drift: DriftReport | None = None
        self._state: WindowState | None = None  # the latest window state handed out (_window_state)
        self._tested_at = 0  # window.total when the reported test took its snapshot
        self._requested_at = 0  # window.total when the latest test (finished or not) took its snapshot
        self._requested_time = 0.0  # clock() then
        self._clock = clock
        self._running = False  # a window test is due, waiting for its interval or running
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._background = background
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _rows_due(self) -> bool:
        if len(self.window) < self.settings.window_min_rows:
            return False
        return self._requested_at == 0 or self.window.total - self._requested_at >= self.settings.window_every

    def _interval_left(self) -> float:
        if self._requested_at == 0:
            return 0.0
        return self.settings.window_min_seconds - (self._clock() - self._requested_time)

    def _take_snapshot(self) -> tuple[np.ndarray, int]:
        """The window's rows and its row count, noted as the latest test's (call with the lock held)."""
        total = self.window.total
        self._requested_at, self._requested_time = total, self._clock()
        return self.window.rows(), total

    def observe(self, x: np.ndarray) -> Monitoring:
        """Drift and outliers for this batch; add it to the window and start the window test when due."""
        drift = self.drift_test.test(x)
        outliers = self.outlier_test.test(x)
        snapshot, total, wake = None, 0, False
        with self._lock:
            self.window.add(x)
            if not self._running and self._rows_due():
                if self._background:
                    self._running = wake = True
                elif self._interval_left() <= 0:
                    self._running = True
                    snapshot, total = self._take_snapshot()
        if wake:
            self._wake_worker()
        if snapshot is not None:
            self._publish(self._test(snapshot), total)
            with self._idle:
                self._running = False
                self._idle.notify_all()
        with self._lock:
            window = self._window_state()
        return Monitoring(drift, window, outliers)

    def _window_state(self) -> WindowState:
        """The window's state now (call with the lock held): the previous request's object while its row
        count and report are the same, so its JSON is encoded once for all of them."""
        state, rows = self._state, len(self.window)
        if state is None or state.rows != rows or state.drift is not self._window_drift:
            state = self._state = WindowState(
                rows, self.window.size, self.settings.window_min_rows, self._window_drift, self._tested_at
            )
        return state

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no window test is due or runs (tests and shutdown); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def _wake_worker(self) -> None:
        # Only a request that found no test due wakes the thread, and only the thread clears that state:
        # one request at a time gets here, so the thread is started once.
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="modelops-window-drift", daemon=True)
            self._thread.start()
        self._wake.set()

    def _work(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            again = True
            while again:
                with self._lock:
                    delay = self._interval_left()
                if delay > 0:
                    time.sleep(delay)
                with self._lock:
                    snapshot, total = self._take_snapshot()
                try:
                    report: DriftReport | None = self._test(snapshot)
                except Exception:  # a failed window test must not end the thread: the next one may pass
                    logger.exception("window drift test failed; the previous report stays")
                    report = None
                if report is not None:
                    self._publish(report, total)
                with self._idle:
                    again = report is not None and self._rows_due()
                    self._running = again
                    if not again:
                        self._idle.notify_all()

    def _test(self, snapshot: np.ndarray) -> DriftReport:
        report = self.drift_test.test(snapshot)
        _ = report.json  # encoded here, once for every response that carries it
        return report

    def _publish(self, report: DriftReport, total: int) -> None:
        with self._lock:
            self._window_drift, self._tested_at = report, total
        if self.on_window_report is not None:
            self.on_window_report(report)

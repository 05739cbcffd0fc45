"""Prometheus metrics added to BentoML's own: drift p-values per feature, drift flags, outlier counts.

Created inside the worker (after BentoML set PROMETHEUS_MULTIPROC_DIR) so that they land in the
multiprocess files BentoML's /metrics collects; gauges keep the most recent value across workers.

A request only notes its rows and monitoring; a thread writes them at most once per `FLUSH_SECONDS` (at
once after a quiet spell; flushing.Flusher). prometheus_client's multiprocess values are mmap writes
under a lock, and the 27 a request's drift report, flags and counts took cost more than the drift test."""

from __future__ import annotations

import threading
from typing import Any

from modelops_service.drift import DriftReport
from modelops_service.flushing import Flusher
from modelops_service.monitoring import Monitoring

MAX_CLASS_LABELS = 64  # distinct predicted classes counted by name; the rest are counted as OTHER_CLASS
MAX_CLASS_LABEL_CHARS = 64
OTHER_CLASS = "_other"
FLUSH_SECONDS = 1.0  # the request path's gauges and counters reach /metrics at most this much later
REQUEST = "request"
WINDOW = "window"


class MonitoringMetrics:
    """The service's gauges and counters; `record` updates them from one request's monitoring."""

    def __init__(self, service_name: str, registry: Any = None, flush_seconds: float = FLUSH_SECONDS) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge

        registry = registry or REGISTRY
        self.service_name = service_name
        self.p_value = Gauge(
            "modelops_drift_p_value",
            "Latest drift p-value per feature (scope=request: last request's rows; window: recent rows)",
            ["service", "scope", "feature"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.drift = Gauge(
            "modelops_drift_detected",
            "1 when the latest drift test flagged at least one feature, else 0",
            ["service", "scope"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.feature_drift = Gauge(
            "modelops_drift_feature_detected",
            "1 when the latest drift test flagged this feature, else 0",
            ["service", "scope", "feature"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.window_rows = Gauge(
            "modelops_drift_window_rows",
            "Rows held in the drift window (per worker; summed over live workers)",
            ["service"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.outliers = Counter(
            "modelops_outliers", "Rows flagged as outliers", ["service"], registry=registry
        )
        self.rows = Counter("modelops_rows", "Rows scored by the predictor", ["service"], registry=registry)
        self.predictions = Counter(
            "modelops_predictions",
            f"Rows by predicted class (the first {MAX_CLASS_LABELS} classes by name, later ones as "
            f"{OTHER_CLASS}): the canary compares these shares with the stable pods'",
            ["service", "class"],
            registry=registry,
        )
        self._class_children: dict[str, Any] = {}
        self._classes_pending: dict[str, int] = {}
        # labels() looks a child up on every call: keep the children of this service at hand.
        self._feature_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._rows = self.rows.labels(service_name)
        self._outliers = self.outliers.labels(service_name)
        self._window_rows = self.window_rows.labels(service_name)
        self._drift_children = {scope: self.drift.labels(service_name, scope) for scope in (REQUEST, WINDOW)}
        self._lock = threading.Lock()
        self._latest: Monitoring | None = None  # the latest request's monitoring not written yet
        self._rows_pending = 0
        self._outliers_pending = 0
        self._flusher = Flusher(self.flush, flush_seconds, "modelops-metrics")

    def record(self, rows: int, monitoring: Monitoring | None, classes: list[Any] | None = None) -> None:
        """Note a request's rows, predicted classes and monitoring (None when off) for the next flush."""
        with self._lock:
            self._rows_pending += rows
            pending = self._classes_pending
            for label in classes or ():
                pending[label] = pending.get(label, 0) + 1
            if monitoring is not None:
                self._latest = monitoring
                self._outliers_pending += sum(monitoring.outliers.is_outlier)
        self._flusher.notify()

    def flush(self) -> None:
        """Write what requests noted since the last flush to the gauges and counters."""
        with self._lock:
            latest, rows, flagged = self._latest, self._rows_pending, self._outliers_pending
            self._latest, self._rows_pending, self._outliers_pending = None, 0, 0
            classes, self._classes_pending = self._classes_pending, {}
        for label, count in classes.items():
            self._class_child(label).inc(count)
        if rows:
            self._rows.inc(rows)
        if flagged:
            self._outliers.inc(flagged)
        if latest is not None:
            self._set_drift(REQUEST, latest.drift)
            self._window_rows.set(latest.window.rows)

    def _class_child(self, label: Any) -> Any:
        """The counter of a predicted class; a model's label set is bounded here, not trusted."""
        text = str(label)[:MAX_CLASS_LABEL_CHARS]
        child = self._class_children.get(text)
        if child is None:
            if len(self._class_children) >= MAX_CLASS_LABELS:
                text = OTHER_CLASS
                child = self._class_children.get(text)
            if child is None:
                child = self._class_children[text] = self.predictions.labels(self.service_name, text)
        return child

    def record_window(self, report: DriftReport) -> None:
        """Update the window gauges from a finished window test (called from the test's thread), after
        what requests noted (the window's row count with its report)."""
        self.flush()
        self._set_drift(WINDOW, report)

    def _set_drift(self, scope: str, report: DriftReport) -> None:
        for feature, p in report.p_value.items():
            children = self._feature_children.get((scope, feature))
            if children is None:
                children = self._feature_children[scope, feature] = (
                    self.p_value.labels(self.service_name, scope, feature),
                    self.feature_drift.labels(self.service_name, scope, feature),
                )
            children[0].set(p)
            children[1].set(1 if report.is_drift.get(feature) else 0)
        self._drift_children[scope].set(1 if report.any_drift else 0)

"""Prometheus metrics added to BentoML's own: drift p-values per feature, drift flags, outlier counts.

Created inside the worker (after BentoML set PROMETHEUS_MULTIPROC_DIR) so that they land in the
multiprocess files BentoML's /metrics collects; gauges keep the most recent value across workers."""

from __future__ import annotations

from typing import Any

from modelops_service.drift import DriftReport
from modelops_service.monitoring import Monitoring

REQUEST = "request"
WINDOW = "window"


class MonitoringMetrics:
    """The service's gauges and counters; `record` updates them from one request's monitoring."""

    def __init__(self, service_name: str, registry: Any = None) -> None:
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
        # labels() looks a child up on every call: keep the children of this service at hand.
        self._feature_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._rows = self.rows.labels(service_name)
        self._outliers = self.outliers.labels(service_name)
        self._window_rows = self.window_rows.labels(service_name)
        self._drift_children = {scope: self.drift.labels(service_name, scope) for scope in (REQUEST, WINDOW)}

    def record_rows(self, count: int) -> None:
        self._rows.inc(count)

    def record(self, monitoring: Monitoring) -> None:
        """Update gauges and counters from a request's monitoring result."""
        self._set_drift(REQUEST, monitoring.drift)
        self._window_rows.set(monitoring.window.rows)
        flagged = sum(monitoring.outliers.is_outlier)
        if flagged:
            self._outliers.inc(flagged)

    def record_window(self, report: DriftReport) -> None:
        """Update the window gauges from a finished window test (called from the test's thread)."""
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

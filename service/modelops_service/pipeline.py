"""decode/validate -> predict -> detect -> encode for one request, plus its log events and metrics."""

from __future__ import annotations

from dataclasses import dataclass

from modelops_service.decoding import Batch, decode_body
from modelops_service.encoding import EncodedResponse, encode_response
from modelops_service.events import (
    INPUT_DATA,
    MONITORING_METRICS,
    OUTPUT_DATA,
    EventLog,
    build_event,
    utc_timestamp,
)
from modelops_service.metrics import MonitoringMetrics
from modelops_service.model_loader import LoadedModels
from modelops_service.monitoring import Monitor, Monitoring, build_drift_test, build_outlier_test
from modelops_service.outliers import IsolationForestTest
from modelops_service.predictor import Predictions, Predictor
from modelops_service.settings import Settings
from modelops_service.trees import JointWalk


@dataclass(frozen=True)
class Processed:
    """What one request came to: the predictions, the monitoring (None when off), the /predict response."""

    predictions: Predictions
    monitoring: Monitoring | None
    response: EncodedResponse


def build_monitor(
    models: LoadedModels,
    settings: Settings,
    metrics: MonitoringMetrics | None = None,
    background: bool = True,
) -> Monitor:
    """The detect hook for these models: fast exact tests where the detectors allow it; the window test
    in the background (its reports go to the metrics' window gauges)."""
    names = models.predictor.feature_names
    return Monitor(
        build_drift_test(models.drift_detector, names),
        build_outlier_test(models.outlier_detector, names),
        len(names),
        settings.drift,
        on_window_report=metrics.record_window if metrics is not None else None,
        background=background,
    )


def join_tree_walks(predictor: Predictor, monitor: Monitor) -> None:
    """The packed predictor's and the packed outlier forest's trees walked in one pass per request
    (trees.JointWalk), when both are packed."""
    forest = monitor.outlier_test
    if predictor.packed is None or not isinstance(forest, IsolationForestTest):
        return
    joint = JointWalk(predictor.packed.trees, forest.packed.trees)
    predictor.packed.walk = lambda x: joint.leaves(x)[0]
    forest.packed.walk = lambda x: joint.leaves(x)[1]


class PredictionPipeline:
    """Everything /predict does once the models are loaded; no HTTP, no BentoML."""

    def __init__(
        self,
        models: LoadedModels,
        settings: Settings,
        event_log: EventLog | None = None,
        metrics: MonitoringMetrics | None = None,
        background_window: bool = True,
    ) -> None:
        self.models = models
        self.settings = settings
        self.event_log = event_log or EventLog()
        self.metrics = metrics
        self.monitor = (
            build_monitor(models, settings, metrics, background_window)
            if settings.monitoring_enabled
            else None
        )
        if self.monitor is not None:
            join_tree_walks(models.predictor, self.monitor)

    def run(self, body: bytes, request_id: str) -> bytes:
        """The JSON response to one raw /predict body; raises ServiceError subclasses for bad input."""
        batch = decode_body(body, self.models.features, self.settings.max_rows)
        return self.process(batch, request_id).response.body

    def process(self, batch: Batch, request_id: str) -> Processed:
        """Predict and monitor a validated batch, log its events and count it (any endpoint's input)."""
        predictions = self.models.predictor.predict(batch.matrix)
        monitoring = self.monitor.observe(batch.matrix) if self.monitor is not None else None
        response = encode_response(predictions, monitoring, self.models.versions, request_id)

        common = (self.settings.service_name, request_id, self.models.versions, utc_timestamp())
        events = []
        if self.settings.log_inputs:
            events.append(build_event(INPUT_DATA, *common, inputs=batch.records))
        if monitoring is not None:
            events.append(build_event(MONITORING_METRICS, *common, monitoring=response.monitoring))
        events.append(build_event(OUTPUT_DATA, *common, outputs=response.predictions))
        self.event_log.write(events)

        if self.metrics is not None:
            self.metrics.record(len(batch), monitoring, predictions.classes)
        return Processed(predictions, monitoring, response)

"""The encode hook: the /predict response document."""

from __future__ import annotations

from typing import Any

from modelops_service.monitoring import Monitoring
from modelops_service.predictor import Predictions


def build_response(
    predictions: Predictions,
    monitoring: Monitoring | None,
    model_versions: dict[str, str],
    request_id: str,
) -> dict[str, Any]:
    """predictions per record, the monitoring object (None when monitoring is off), versions, request id."""
    return {
        "request_id": request_id,
        "predictions": predictions.as_records(),
        "monitoring": None if monitoring is None else monitoring.as_dict(),
        "model_versions": model_versions,
    }

"""The encode hook: the /predict response, encoded once; the log events reuse its JSON parts."""

from __future__ import annotations

from dataclasses import dataclass

from modelops_service.jsontext import RawJSON, to_json
from modelops_service.monitoring import Monitoring
from modelops_service.predictor import Predictions


@dataclass(frozen=True)
class EncodedResponse:
    """The response body plus its predictions and monitoring parts as JSON text."""

    body: bytes
    predictions: RawJSON
    monitoring: RawJSON  # "null" when monitoring is off


def encode_response(
    predictions: Predictions,
    monitoring: Monitoring | None,
    model_versions: dict[str, str],
    request_id: str,
) -> EncodedResponse:
    """{request_id, predictions (per record), monitoring (null when off), model_versions} as JSON bytes."""
    predictions_json = RawJSON(to_json(predictions.as_records()))
    monitoring_text = RawJSON("null" if monitoring is None else monitoring.json())
    body = (
        f'{{"request_id":{to_json(request_id)},"predictions":{predictions_json},'
        f'"monitoring":{monitoring_text},"model_versions":{to_json(model_versions)}}}'
    )
    return EncodedResponse(body.encode(), predictions_json, monitoring_text)

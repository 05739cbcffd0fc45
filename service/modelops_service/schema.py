"""OpenAPI documentation of /predict: response models and the request body with its example."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field


def example_request() -> list[dict[str, Any]]:
    """The proof-of-concept request (two wine records), shown in Swagger UI."""
    return json.loads(resources.files("modelops_service").joinpath("example_request.json").read_text())


class PredictionOut(BaseModel):
    class_: Any = Field(alias="class", description="predicted class")
    probability: float | None = Field(
        description="probability of the predicted class (null if the model has none)"
    )


class DriftOut(BaseModel):
    threshold: float = Field(description="p-value below which a feature counts as drifted")
    is_drift: dict[str, bool] = Field(description="feature -> drifted?")
    p_value: dict[str, float] = Field(description="feature -> p-value (K-S, or chi-squared for categorical)")
    distance: dict[str, float] = Field(description="feature -> test statistic")


class WindowOut(BaseModel):
    rows: int = Field(description="rows in this worker's sliding window")
    size: int = Field(description="window capacity")
    min_rows: int = Field(description="rows needed before the window is tested")
    drift: DriftOut | None = Field(
        description="latest finished drift test of the window (run in the background; null before the first)"
    )


class OutliersOut(BaseModel):
    threshold: float
    is_outlier: list[bool] = Field(description="one flag per record, in request order")
    instance_score: list[float] = Field(description="one score per record, in request order")


class MonitoringOut(BaseModel):
    drift: DriftOut
    window: WindowOut
    outliers: OutliersOut


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[PredictionOut]
    monitoring: MonitoringOut | None = Field(description="null when MODELOPS_MONITORING_ENABLED=false")
    model_versions: dict[str, str] = Field(
        description="role (predictor, drift, outlier) -> '<name>/<version>'"
    )


class ErrorOut(BaseModel):
    error: str = Field(description="error kind, e.g. InvalidInput")
    message: str = Field(description="what is wrong, naming the record and field")
    field: str | None = Field(default=None, description="where, e.g. [1].alcohol")


def request_body_spec() -> dict[str, Any]:
    """The requestBody of /predict: a JSON list of records (feature name -> value) with the example."""
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                        "description": "one record: every feature of the model's signature, by name",
                    },
                },
                "example": example_request(),
            }
        },
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not JSON"},
    413: {"model": ErrorOut, "description": "too many records or too many bytes"},
    422: {"model": ErrorOut, "description": "the records do not match the model's inputs"},
    503: {"model": ErrorOut, "description": "the models are not loaded yet"},
}

"""The anchor of benchmarks/serving.py: a plain BentoML service for the same scikit-learn model, without
monitoring, logging or validation beyond BentoML's own (what a user would write in a few lines).

    bentoml serve plain_service:PlainService --working-dir benchmarks/plain_bentoml
    # environment: PLAIN_MODEL_URI (models:/... or a path), MLFLOW_TRACKING_URI, PLAIN_WORKERS (default 2)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the anchor in its best configuration (docs/REFERENCE)

from typing import Any

import bentoml


@bentoml.service(workers=int(os.environ.get("PLAIN_WORKERS", "2")), traffic={"timeout": 60})
class PlainService:
    def __init__(self) -> None:
        import mlflow.sklearn

        self.model = mlflow.sklearn.load_model(os.environ["PLAIN_MODEL_URI"])

    @bentoml.api
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import pandas as pd

        proba = self.model.predict_proba(pd.DataFrame.from_records(records))
        best = proba.argmax(axis=1)
        classes = self.model.classes_
        return [
            {"class": classes[i].item(), "probability": float(proba[row, i])} for row, i in enumerate(best)
        ]

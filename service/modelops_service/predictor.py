"""The predict hook: class and probability per row from an MLflow model."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelops_service import boosting


@dataclass(frozen=True)
class Predictions:
    """Predicted class per row and the probability the model gives that class (None without predict_proba)."""

    classes: list[Any]
    probabilities: list[float | None]

    def as_records(self) -> list[dict[str, Any]]:
        return [
            {"class": label, "probability": probability}
            for label, probability in zip(self.classes, self.probabilities, strict=True)
        ]


def _selects_columns(model: Any) -> bool:
    """True for scikit-learn composites that may select input columns by name."""
    return any(hasattr(model, attribute) for attribute in ("steps", "transformers", "named_steps"))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class Predictor:
    """Wraps a scikit-learn classifier (predict_proba) or any pyfunc model (predict only)."""

    def __init__(self, model: Any, feature_names: list[str], dtypes: dict[str, str] | None = None) -> None:
        self.model = model
        self.feature_names = feature_names
        self._dtypes = dtypes or {}
        self._has_proba = hasattr(model, "predict_proba") and hasattr(model, "classes_")
        # A pyfunc model takes a DataFrame, and so does anything that may pick columns by name (a Pipeline,
        # a ColumnTransformer). A plain estimator gets the float matrix: building a DataFrame per request
        # costs more than the model's own predict.
        self._wants_frame = not self._has_proba or _selects_columns(model)
        if not self._wants_frame and hasattr(model, "feature_names_in_"):
            # Same columns, same order as at fit time: the name check has nothing to say.
            warnings.filterwarnings(
                "ignore", message="X does not have valid feature names", category=UserWarning
            )
        self._classes = [_plain(c) for c in model.classes_] if self._has_proba else []
        # A gradient boosting model's own predict_proba loops over its trees in Python: packed, the same
        # probabilities (checked at load, else not used) cost an eighth (docs/service.md, "Benchmark").
        self.packed = boosting.pack(model) if self._has_proba and not self._wants_frame else None

    @property
    def classes(self) -> list[Any]:
        """The classes predict_proba's columns stand for (empty for a predict-only model)."""
        return list(self._classes)

    @property
    def has_probability(self) -> bool:
        return self._has_proba

    def frame(self, x: np.ndarray) -> pd.DataFrame:
        """The rows as a DataFrame with the signature's column names and integer columns as int64."""
        df = pd.DataFrame(x, columns=self.feature_names)
        for name, dtype in self._dtypes.items():
            df[name] = df[name].astype(dtype)
        return df

    def predict(self, x: np.ndarray) -> Predictions:
        """Classes and probabilities for a (rows, features) matrix in signature order."""
        data: Any = self.frame(x) if self._wants_frame else x
        if self._has_proba:
            proba = (
                self.packed.predict_proba(x) if self.packed else np.asarray(self.model.predict_proba(data))
            )
            best = proba.argmax(axis=1)
            return Predictions(
                classes=[self._classes[i] for i in best],
                probabilities=[float(p) for p in proba[np.arange(len(best)), best]],
            )
        output = self.model.predict(data)
        values = output.iloc[:, 0] if isinstance(output, pd.DataFrame) else np.asarray(output).ravel()
        return Predictions(classes=[_plain(v) for v in values], probabilities=[None] * len(values))

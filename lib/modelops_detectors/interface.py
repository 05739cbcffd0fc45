"""What every drift and outlier detector offers, whatever library implements it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DriftResult:
    """Per-feature drift test results for one batch of rows; `threshold` is the per-feature p-value cut."""

    p_value: dict[str, float]
    distance: dict[str, float]
    is_drift: dict[str, bool]
    threshold: float
    n_rows: int

    @property
    def batch_threshold(self) -> float:
        """Bonferroni-corrected cut for the whole batch (alibi-detect's drift_type='batch')."""
        return self.threshold / max(len(self.p_value), 1)

    @property
    def is_batch_drift(self) -> bool:
        """True when any feature's p-value is below the corrected batch threshold."""
        return any(p < self.batch_threshold for p in self.p_value.values())

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, flag in self.is_drift.items() if flag]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the service's monitoring log uses these keys)."""
        return {
            "p_value": self.p_value,
            "distance": self.distance,
            "is_drift": self.is_drift,
            "threshold": self.threshold,
            "batch_threshold": self.batch_threshold,
            "is_batch_drift": self.is_batch_drift,
            "n_rows": self.n_rows,
        }


@dataclass(frozen=True)
class OutlierResult:
    """Per-row outlier flags and scores.

    A row is an outlier when its score exceeds `threshold` or when a feature lies far outside the reference
    range (`out_of_range` names those features per row; empty lists when the detector has no range guard).
    """

    is_outlier: list[bool]
    instance_score: list[float]
    threshold: float
    out_of_range: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_outlier": self.is_outlier,
            "instance_score": self.instance_score,
            "threshold": self.threshold,
            "out_of_range": self.out_of_range,
        }


@runtime_checkable
class DriftDetector(Protocol):
    """Compares a batch of rows with the reference data, feature by feature."""

    feature_names: list[str]

    def predict(self, X: np.ndarray | pd.DataFrame) -> DriftResult: ...


@runtime_checkable
class OutlierDetector(Protocol):
    """Scores each row against the reference data.

    An isolation-forest detector whose score is minus scikit-learn's decision_function also offers
    `fitted_forest` (the fitted sklearn IsolationForest), `threshold` and `ranges`: the service then scores
    with its own packed forest, same results, a fraction of the cost per request.
    """

    feature_names: list[str]

    def predict(self, X: np.ndarray | pd.DataFrame) -> OutlierResult: ...


def as_matrix(X: np.ndarray | pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """Rows as a float matrix in `feature_names` order (a DataFrame is reordered by column name)."""
    if isinstance(X, pd.DataFrame):
        missing = [name for name in feature_names if name not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        X = X[list(feature_names)].to_numpy()
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != len(feature_names):
        raise ValueError(f"expected rows of {len(feature_names)} features, got shape {matrix.shape}")
    return matrix

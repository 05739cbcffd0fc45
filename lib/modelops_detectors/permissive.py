"""Detectors on scipy and scikit-learn only (BSD-licensed): drop-in stand-ins for the alibi-detect ones.

They compute what alibi-detect 0.13 computes (TabularDrift: two-sample K-S per continuous feature in
asymptotic mode, chi-squared contingency test per categorical feature on the union of categories; IForest:
minus the isolation forest's decision function, threshold at a percentile of the reference scores), so
results match to floating-point precision (alibi-detect rounds p-values to float32). See docs/training.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp
from sklearn.ensemble import IsolationForest

from modelops_detectors.interface import DriftResult, OutlierResult, as_matrix
from modelops_detectors.ranges import FeatureRanges
from modelops_detectors.reference import DriftReference


class ScipyDriftDetector:
    """K-S per continuous feature, chi-squared per categorical feature, on standardised features."""

    def __init__(self, reference: DriftReference) -> None:
        self.reference = reference
        self.feature_names = reference.feature_names
        self._x_ref = reference.standardise(reference.x_ref)
        self._categorical = set(reference.categorical_indices)

    def predict(self, X: np.ndarray | pd.DataFrame) -> DriftResult:
        x = self.reference.standardise(X)
        p_values, distances = [], []
        for j in range(x.shape[1]):
            if j in self._categorical:
                distance, p_value = chi_squared(self._x_ref[:, j], x[:, j])
            else:
                result = ks_2samp(self._x_ref[:, j], x[:, j], method="asymp")
                distance, p_value = float(result.statistic), float(result.pvalue)
            p_values.append(p_value)
            distances.append(distance)
        threshold = self.reference.p_val
        return DriftResult(
            p_value=dict(zip(self.feature_names, p_values, strict=True)),
            distance=dict(zip(self.feature_names, distances, strict=True)),
            is_drift={name: p < threshold for name, p in zip(self.feature_names, p_values, strict=True)},
            threshold=threshold,
            n_rows=len(x),
        )


def chi_squared(reference: np.ndarray, batch: np.ndarray) -> tuple[float, float]:
    """Chi-squared statistic and p-value of the category counts (union of both samples' categories)."""
    categories = np.union1d(np.unique(reference), np.unique(batch))
    table = np.vstack([[(sample == c).sum() for c in categories] for sample in (reference, batch)])
    statistic, p_value, _, _ = chi2_contingency(table)
    return float(statistic), float(p_value)


class SklearnOutlierDetector:
    """scikit-learn IsolationForest, threshold at a percentile of the reference scores, plus a range guard."""

    def __init__(
        self, feature_names: Sequence[str], forest: IsolationForest, threshold: float, ranges: FeatureRanges
    ):
        self.feature_names = list(feature_names)
        self.forest = forest
        self.threshold = float(threshold)
        self.ranges = ranges

    @classmethod
    def fit(
        cls,
        X: np.ndarray | pd.DataFrame,
        feature_names: Sequence[str],
        threshold_perc: float = 95.0,
        n_estimators: int = 100,
        seed: int = 0,
        range_margin: float = 0.5,
    ) -> SklearnOutlierDetector:
        x = as_matrix(X, feature_names)
        forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(x)
        threshold = float(np.percentile(-forest.decision_function(x), threshold_perc))
        return cls(feature_names, forest, threshold, FeatureRanges.from_data(x, feature_names, range_margin))

    @property
    def fitted_forest(self) -> IsolationForest:
        """The fitted forest (the service's fast path: its score is minus decision_function, as here)."""
        return self.forest

    def predict(self, X: np.ndarray | pd.DataFrame) -> OutlierResult:
        x = as_matrix(X, self.feature_names)
        scores = -self.forest.decision_function(x)
        out_of_range = self.ranges.violations(x)
        return OutlierResult(
            is_outlier=[
                bool(s > self.threshold) or bool(o) for s, o in zip(scores, out_of_range, strict=True)
            ],
            instance_score=[float(s) for s in scores],
            threshold=self.threshold,
            out_of_range=out_of_range,
        )

    def save(self, path: Path) -> Path:
        joblib.dump(outlier_state(self.feature_names, self.forest, self.threshold, self.ranges), path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> SklearnOutlierDetector:
        return cls.from_state(joblib.load(path))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SklearnOutlierDetector:
        """From the saved state either implementation writes (see `outlier_state`)."""
        names = state["feature_names"]
        ranges = FeatureRanges(
            names, np.asarray(state["ranges"]["lower"]), np.asarray(state["ranges"]["upper"])
        )
        return cls(names, state["forest"], state["threshold"], ranges)


def outlier_state(
    feature_names: Sequence[str], forest: IsolationForest, threshold: float, ranges: FeatureRanges
) -> dict[str, Any]:
    """What an outlier detector saves, whichever implementation fitted it: feature names, the fitted
    scikit-learn forest, the threshold and the ranges. Loading it needs scikit-learn only."""
    return {
        "feature_names": list(feature_names),
        "forest": forest,
        "threshold": float(threshold),
        "ranges": {"lower": ranges.lower.tolist(), "upper": ranges.upper.tolist()},
    }

"""alibi-detect implementations (Business Source License 1.1: see docs/training.md before production use)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from modelops_detectors.interface import DriftResult, OutlierResult, as_matrix
from modelops_detectors.permissive import outlier_state
from modelops_detectors.ranges import FeatureRanges
from modelops_detectors.reference import DriftReference


class AlibiDriftDetector:
    """TabularDrift on standardised features: K-S per continuous feature, chi-squared per categorical one."""

    def __init__(self, reference: DriftReference) -> None:
        from alibi_detect.cd import TabularDrift  # heavy import, only where a detector is built

        self.reference = reference
        self.feature_names = reference.feature_names
        self._drift = TabularDrift(
            reference.standardise(reference.x_ref),
            p_val=reference.p_val,
            categories_per_feature={index: None for index in reference.categorical_indices},
        )

    @classmethod
    def fit(
        cls,
        X: np.ndarray | pd.DataFrame,
        feature_names: Sequence[str],
        categorical: Sequence[str] = (),
        p_val: float = 0.05,
    ) -> AlibiDriftDetector:
        return cls(DriftReference.from_data(X, feature_names, categorical, p_val))

    def predict(self, X: np.ndarray | pd.DataFrame) -> DriftResult:
        x = self.reference.standardise(X)
        data: dict[str, Any] = self._drift.predict(
            x, drift_type="feature", return_p_val=True, return_distance=True
        )["data"]
        return build_drift_result(
            self.feature_names, data["p_val"], data["distance"], data["is_drift"], data["threshold"], len(x)
        )


def build_drift_result(
    feature_names: Sequence[str],
    p_values: Sequence[float],
    distances: Sequence[float],
    flags: Sequence[int | bool],
    threshold: float,
    n_rows: int,
) -> DriftResult:
    """Per-feature arrays -> DriftResult maps keyed by feature name."""
    return DriftResult(
        p_value={name: float(p) for name, p in zip(feature_names, p_values, strict=True)},
        distance={name: float(d) for name, d in zip(feature_names, distances, strict=True)},
        is_drift={name: bool(f) for name, f in zip(feature_names, flags, strict=True)},
        threshold=float(threshold),
        n_rows=int(n_rows),
    )


class AlibiOutlierDetector:
    """alibi-detect IForest with its threshold inferred on the reference data, plus a range guard."""

    def __init__(self, feature_names: Sequence[str], iforest: Any, ranges: FeatureRanges) -> None:
        self.feature_names = list(feature_names)
        self.iforest = iforest
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
    ) -> AlibiOutlierDetector:
        """Fit on the reference rows; the threshold is their `threshold_perc` percentile score."""
        from alibi_detect.od import IForest

        x = as_matrix(X, feature_names)
        # IForest warns that no threshold is set until infer_threshold below sets it.
        logging.getLogger("alibi_detect.od.isolationforest").setLevel(logging.ERROR)
        iforest = IForest(n_estimators=n_estimators)
        iforest.isolationforest.set_params(random_state=seed)  # alibi-detect exposes no seed of its own
        iforest.fit(x)
        iforest.infer_threshold(x, threshold_perc=threshold_perc)
        return cls(feature_names, iforest, FeatureRanges.from_data(x, feature_names, range_margin))

    @property
    def threshold(self) -> float:
        return float(self.iforest.threshold)

    @property
    def fitted_forest(self) -> Any:
        """The scikit-learn IsolationForest alibi-detect's IForest wraps (the service's fast path)."""
        return self.iforest.isolationforest

    def predict(self, X: np.ndarray | pd.DataFrame) -> OutlierResult:
        x = as_matrix(X, self.feature_names)
        data = self.iforest.predict(x, return_instance_score=True)["data"]
        out_of_range = self.ranges.violations(x)
        flags = np.asarray(data["is_outlier"]).ravel()
        return OutlierResult(
            is_outlier=[
                bool(flag) or bool(outside) for flag, outside in zip(flags, out_of_range, strict=True)
            ],
            instance_score=[float(score) for score in np.asarray(data["instance_score"]).ravel()],
            threshold=self.threshold,
            out_of_range=out_of_range,
        )

    def save(self, path: Path) -> Path:
        """Persist with joblib, as the permissive detector does (the fitted scikit-learn forest, threshold,
        ranges): loading needs no alibi-detect, so the service serves it without (alibi-detect's own
        save_detector needs TensorFlow for IForest)."""
        state = outlier_state(self.feature_names, self.iforest.isolationforest, self.threshold, self.ranges)
        joblib.dump(state, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> AlibiOutlierDetector:
        state = joblib.load(path)
        if "iforest" in state:  # saved before the shared format: the alibi-detect IForest itself
            return cls(state["feature_names"], state["iforest"], _ranges(state))
        from alibi_detect.od import IForest

        iforest = IForest(threshold=state["threshold"])
        iforest.isolationforest = state["forest"]
        return cls(state["feature_names"], iforest, _ranges(state))


def _ranges(state: dict[str, Any]) -> FeatureRanges:
    names = state["feature_names"]
    return FeatureRanges(names, np.asarray(state["ranges"]["lower"]), np.asarray(state["ranges"]["upper"]))

"""Detectors from a logged detector model's saved state, for serving.

MLflow's pyfunc loader unpickles the wrapper, which builds the detector with the implementation it was
trained with: alibi-detect (and the deep-learning stack it pulls in) for the default one. The saved state
of both implementations is plain: the drift reference (x_ref.npy, reference.json) and the outlier state
(feature names, fitted scikit-learn forest, threshold, ranges). This reads it straight from the model
directory into the permissive detectors, which compute the same tests and scores, so that serving needs
scipy and scikit-learn only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import yaml

from modelops_detectors.permissive import ScipyDriftDetector, SklearnOutlierDetector
from modelops_detectors.reference import DriftReference

DRIFT_ARTIFACT, OUTLIER_ARTIFACT = "reference", "detector"  # names log_drift_model / log_outlier_model use


def load_saved_detector(model_dir: Path) -> ScipyDriftDetector | SklearnOutlierDetector:
    """The drift or outlier detector saved in this MLflow model directory (a modelops_detectors model)."""
    meta = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
    artifacts = ((meta.get("flavors") or {}).get("python_function") or {}).get("artifacts") or {}
    if DRIFT_ARTIFACT in artifacts:
        return ScipyDriftDetector(DriftReference.load(model_dir / artifacts[DRIFT_ARTIFACT]["path"]))
    if OUTLIER_ARTIFACT in artifacts:
        return load_outlier_state(model_dir / artifacts[OUTLIER_ARTIFACT]["path"])
    raise ValueError(
        f"{model_dir} is not a modelops_detectors model: its MLmodel names no {DRIFT_ARTIFACT!r} or "
        f"{OUTLIER_ARTIFACT!r} artifact"
    )


def load_outlier_state(path: Path) -> SklearnOutlierDetector:
    """The outlier state either implementation saves; a model saved before that format pickled
    alibi-detect's IForest, which loads only where alibi-detect is installed."""
    try:
        state: Any = joblib.load(path)
    except ModuleNotFoundError as e:
        raise ValueError(
            f"{path} holds a pickled alibi-detect IForest (an outlier model saved by an earlier modelops) "
            f"and {e.name!r} is not installed here: register the outlier model again with the current "
            "training (modelops-train), which saves the fitted forest alone"
        ) from e
    if "iforest" in state:  # the earlier format, where alibi-detect is installed: its forest and threshold
        iforest = state["iforest"]
        state = {**state, "forest": iforest.isolationforest, "threshold": float(iforest.threshold)}
    return SklearnOutlierDetector.from_state(state)

"""MLflow pyfunc wrappers for the detectors, logged with code_paths so that only this package is needed."""

from __future__ import annotations

import importlib.metadata
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel

from modelops_detectors.implementations import (
    DEFAULT_IMPLEMENTATION,
    IMPLEMENTATIONS,
    implementation_of,
    load_class,
)
from modelops_detectors.interface import DriftResult, OutlierResult
from modelops_detectors.reference import DriftReference

PACKAGE_DIR = Path(__file__).resolve().parent


def drift_frame(result: DriftResult) -> pd.DataFrame:
    """One row per feature: feature, p_value, distance, is_drift, threshold."""
    return pd.DataFrame(
        {
            "feature": list(result.p_value),
            "p_value": list(result.p_value.values()),
            "distance": [result.distance[name] for name in result.p_value],
            "is_drift": [result.is_drift[name] for name in result.p_value],
            "threshold": result.threshold,
        }
    )


def outlier_frame(result: OutlierResult) -> pd.DataFrame:
    """One row per input row: is_outlier, instance_score, threshold, out_of_range (comma-separated names)."""
    return pd.DataFrame(
        {
            "is_outlier": np.asarray(result.is_outlier, dtype=bool),
            "instance_score": np.asarray(result.instance_score, dtype=np.float64),
            "threshold": result.threshold,
            "out_of_range": [",".join(names) for names in result.out_of_range],
        }
    )


class DriftModel(PythonModel):
    """Pyfunc drift detector; after loading, `.detector` is the drift detector (with `.reference`)."""

    detector: Any

    def __init__(self, implementation: str = DEFAULT_IMPLEMENTATION) -> None:
        self.implementation = implementation

    def load_context(self, context: Any) -> None:
        detector_class = load_class(IMPLEMENTATIONS[self.implementation].drift)
        self.detector = detector_class(DriftReference.load(context.artifacts["reference"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return drift_frame(self.detector.predict(model_input))


class OutlierModel(PythonModel):
    """Pyfunc outlier detector; after loading, `.detector` is the outlier detector."""

    detector: Any

    def __init__(self, implementation: str = DEFAULT_IMPLEMENTATION) -> None:
        self.implementation = implementation

    def load_context(self, context: Any) -> None:
        detector_class = load_class(IMPLEMENTATIONS[self.implementation].outlier)
        self.detector = detector_class.load(context.artifacts["detector"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return outlier_frame(self.detector.predict(model_input))


def pinned_requirements(distributions: tuple[str, ...]) -> list[str]:
    """`name==version` for each installed distribution (skips MLflow's slow requirement inference)."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in distributions]


def quiet_signature(model_input: pd.DataFrame, model_output: Any) -> ModelSignature:
    """infer_signature without its hint about integer columns (is_red is 0/1 and never missing)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        return infer_signature(model_input, model_output)


def log_drift_model(
    detector: Any, example: pd.DataFrame, name: str, registered_model_name: str | None = None
) -> ModelInfo:
    """Log a fitted drift detector as a pyfunc model in the active run (and register it when named)."""
    implementation = implementation_of(detector, "drift")
    with tempfile.TemporaryDirectory() as tmp:
        reference_dir = detector.reference.save(Path(tmp) / "reference")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=DriftModel(implementation),
            artifacts={"reference": str(reference_dir)},
            code_paths=[str(PACKAGE_DIR)],
            signature=quiet_signature(example, drift_frame(detector.predict(example))),
            input_example=example.head(2),
            pip_requirements=pinned_requirements(IMPLEMENTATIONS[implementation].requirements),
            registered_model_name=registered_model_name,
        )


def log_outlier_model(
    detector: Any, example: pd.DataFrame, name: str, registered_model_name: str | None = None
) -> ModelInfo:
    """Log a fitted outlier detector as a pyfunc model in the active run (and register it when named)."""
    implementation = implementation_of(detector, "outlier")
    with tempfile.TemporaryDirectory() as tmp:
        path = detector.save(Path(tmp) / "outlier_detector.joblib")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=OutlierModel(implementation),
            artifacts={"detector": str(path)},
            code_paths=[str(PACKAGE_DIR)],
            signature=quiet_signature(example, outlier_frame(detector.predict(example))),
            input_example=example.head(2),
            pip_requirements=pinned_requirements(IMPLEMENTATIONS[implementation].requirements),
            registered_model_name=registered_model_name,
        )

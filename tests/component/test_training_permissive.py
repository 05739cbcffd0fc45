"""The permissive detectors (scipy + scikit-learn) go through a real registry and load without alibi."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest

from modelops_detectors.permissive import SklearnOutlierDetector
from modelops_detectors.pyfunc import log_drift_model, log_outlier_model
from modelops_support.mlflow_server import LocalMlflowServer
from modelops_training.data import FEATURES, load_wine
from modelops_training.pipeline import fit_drift_detector, split_data, tracking

pytestmark = pytest.mark.component

# Load both models in a fresh interpreter where importing alibi_detect fails, and predict on
# [held-out sample, the same with alcohol + 2] and [a typical row, the same with chlorides = 50].
LOADER = """
import io, json, sys
sys.modules["alibi_detect"] = None  # any import of alibi-detect now raises ImportError
import mlflow, pandas as pd
args = json.loads(sys.argv[1])
mlflow.set_tracking_uri(args["tracking_uri"])
held_out = pd.read_json(io.StringIO(args["held_out"]), orient="split")
drift = mlflow.pyfunc.load_model(args["drift"])
outliers = mlflow.pyfunc.load_model(args["outlier"])
typical = held_out.median().to_frame().T.astype(held_out.dtypes.to_dict())
rows = pd.concat([typical, typical.assign(chlorides=50.0)], ignore_index=True)
print(json.dumps({
    "quiet": drift.predict(held_out)["is_drift"].tolist(),
    "shifted": drift.predict(held_out.assign(alcohol=held_out["alcohol"] + 2))["is_drift"].tolist(),
    "outliers": outliers.predict(rows)["is_outlier"].tolist(),
    "class": type(drift.unwrap_python_model().detector).__name__,
}))
"""


@pytest.fixture(scope="module")
def permissive_models(mlflow_server: LocalMlflowServer, wine_data_dir: Path) -> dict[str, Any]:
    data = load_wine(wine_data_dir)
    train, test = split_data(data.frame, seed=42)
    example = test[FEATURES].head(5)
    with tracking(mlflow_server.tracking_uri):
        mlflow.set_experiment("permissive-detectors")
        with mlflow.start_run(run_name="permissive"):
            drift = log_drift_model(
                fit_drift_detector(train[FEATURES], "permissive"),
                example,
                name="drift_detector",
                registered_model_name="wine_quality_drift_permissive",
            )
            outlier = log_outlier_model(
                SklearnOutlierDetector.fit(train[FEATURES], FEATURES, seed=42),
                example,
                name="outlier_detector",
                registered_model_name="wine_quality_outliers_permissive",
            )
    return {
        "tracking_uri": mlflow_server.tracking_uri,
        "drift": f"models:/wine_quality_drift_permissive/{drift.registered_model_version}",
        "outlier": f"models:/wine_quality_outliers_permissive/{outlier.registered_model_version}",
        "held_out": test[FEATURES].sample(300, random_state=7).to_json(orient="split"),
    }


def test_permissive_models_load_and_detect_without_alibi(permissive_models: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(permissive_models)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["class"] == "ScipyDriftDetector"
    assert not any(result["quiet"])
    assert dict(zip(FEATURES, result["shifted"], strict=True)) == {
        name: name == "alcohol" for name in FEATURES
    }
    assert result["outliers"] == [False, True]


def test_permissive_requirements_leave_out_alibi(permissive_models: dict[str, Any], tmp_path: Path) -> None:
    with tracking(permissive_models["tracking_uri"]):
        for role in ("drift", "outlier"):
            path = mlflow.artifacts.download_artifacts(
                f"{permissive_models[role]}/requirements.txt", dst_path=tmp_path
            )
            requirements = Path(path).read_text()
            assert "scikit-learn==" in requirements
            assert "alibi" not in requirements

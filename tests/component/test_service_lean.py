"""The service serves the registered detectors without alibi-detect: it reads their saved state.

A fresh interpreter with alibi-detect (and the deep-learning stacks) made unimportable loads the three
models from the real MLflow registry through the service's own loader and answers the proof-of-concept
request; its drift and outlier results equal those of the alibi-detect detectors loaded here. An outlier
model saved in the earlier format (alibi-detect's IForest pickled) still loads where alibi-detect is, and
gets a clear error where it is not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest

import modelops_contract as contract
from modelops_detectors.saved import load_saved_detector
from tests.fixtures.data import FEATURES

pytestmark = pytest.mark.component

BLOCKED = ("alibi_detect",)
# What alibi-detect pulls in: none of it may be imported while serving.
HEAVY = ("alibi_detect", "tensorflow", "torch", "transformers", "numba", "skimage", "cv2")
# Runs in the child: blocks the modules, loads through the service's registry and answers one request.
CHILD = """
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # import raises ImportError (torch and tensorflow stay as they are: scipy
                              # looks them up in sys.modules and they are not installed anyway)
from modelops_service.pipeline import PredictionPipeline
from modelops_service.model_loader import load_models
from modelops_service.settings import load_settings
from modelops_service.decoding import decode_body

settings = load_settings()
models = load_models(settings)
pipeline = PredictionPipeline(models, settings, background_window=False)
batch = decode_body(sys.stdin.buffer.read(), models.features, settings.max_rows)
outcome = pipeline.process(batch, "lean")
loaded = {{m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}}
detectors = [type(models.drift_detector).__name__, type(models.outlier_detector).__name__]
monitoring = json.loads(outcome.response.monitoring)
heavy = sorted(loaded & set({heavy!r}))
print(json.dumps({{"monitoring": monitoring, "heavy": heavy, "detectors": detectors}}))
"""


def run_child(
    models: dict[str, str], body: bytes, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        contract.TRACKING_URI: models["tracking_uri"],
        contract.MODEL_URI["predictor"]: models["predictor"],
        contract.MODEL_URI["drift"]: models["drift"],
        contract.MODEL_URI["outlier"]: models["outlier"],
        **(env_extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-c", CHILD.format(blocked=BLOCKED, heavy=HEAVY)],
        input=body,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )


def test_serving_needs_no_alibi_detect_and_gives_its_results(
    service_models: dict[str, str], example_records: list[dict[str, Any]]
) -> None:
    result = run_child(service_models, json.dumps(example_records).encode())
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    answer = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert answer["heavy"] == []
    assert answer["detectors"] == ["ScipyDriftDetector", "SklearnOutlierDetector"]

    mlflow.set_tracking_uri(service_models["tracking_uri"])
    drift = mlflow.pyfunc.load_model(service_models["drift"]).unwrap_python_model().detector
    outlier = mlflow.pyfunc.load_model(service_models["outlier"]).unwrap_python_model().detector
    assert type(drift).__module__ == "modelops_detectors.alibi"  # the trained default: alibi-detect
    frame = pd.DataFrame(example_records)[FEATURES]
    expected_drift, expected_outliers = drift.predict(frame), outlier.predict(frame)
    monitoring = answer["monitoring"]
    for name in FEATURES:
        assert monitoring["drift"]["p_value"][name] == pytest.approx(expected_drift.p_value[name], abs=1e-6)
    np.testing.assert_allclose(
        monitoring["outliers"]["instance_score"], expected_outliers.instance_score, atol=1e-9
    )
    assert monitoring["outliers"]["is_outlier"] == expected_outliers.is_outlier
    assert monitoring["outliers"]["threshold"] == pytest.approx(expected_outliers.threshold)


@pytest.fixture
def earlier_outlier_model(service_models: dict[str, str], tmp_path: Path) -> Path:
    """The registered outlier model, its state rewritten as modelops saved it before: the IForest pickled."""
    mlflow.set_tracking_uri(service_models["tracking_uri"])
    source = Path(mlflow.artifacts.download_artifacts(artifact_uri=service_models["outlier"]))
    model_dir = tmp_path / "outlier"
    shutil.copytree(source, model_dir)
    detector = mlflow.pyfunc.load_model(str(model_dir)).unwrap_python_model().detector
    (state_file,) = (model_dir / "artifacts").glob("*.joblib")
    ranges = {"lower": detector.ranges.lower.tolist(), "upper": detector.ranges.upper.tolist()}
    joblib.dump(
        {"feature_names": detector.feature_names, "iforest": detector.iforest, "ranges": ranges}, state_file
    )
    return model_dir


def test_an_earlier_outlier_model_loads_with_alibi_and_is_named_without(
    earlier_outlier_model: Path, service_models: dict[str, str], example_records: list[dict[str, Any]]
) -> None:
    detector = load_saved_detector(earlier_outlier_model)  # alibi-detect is installed here
    frame = pd.DataFrame(example_records)[FEATURES]
    reference = mlflow.pyfunc.load_model(str(earlier_outlier_model)).unwrap_python_model().detector
    np.testing.assert_allclose(
        detector.predict(frame).instance_score, reference.predict(frame).instance_score
    )

    models = {**service_models, "outlier": str(earlier_outlier_model)}
    result = run_child(models, json.dumps(example_records).encode())
    assert result.returncode != 0
    error = result.stderr.decode()
    assert "holds a pickled alibi-detect IForest" in error
    assert "register the outlier model again" in error

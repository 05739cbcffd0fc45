"""Train against a real `mlflow server`, then load the three registered models back through models:/ URIs."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from modelops_contract import TRAINING_RUN_TAG
from modelops_training.data import FEATURES, load_wine
from modelops_training.pipeline import split_data
from modelops_training.registration import FINGERPRINT_TAG, MODEL_NAMES

pytestmark = pytest.mark.component

SAMPLE_ROWS = 300


@pytest.fixture(scope="module")
def held_out(trained_models: dict[str, Any], wine_data_dir) -> pd.DataFrame:
    """A sample of the held-out split: same distribution as the training rows, never seen by them."""
    data = load_wine(wine_data_dir)
    _, test = split_data(data.frame, trained_models["seed"], trained_models["test_size"])
    return test[FEATURES].sample(SAMPLE_ROWS, random_state=7)


@pytest.fixture(scope="module")
def tracking(trained_models: dict[str, Any]):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(trained_models["tracking_uri"])
    yield trained_models["tracking_uri"]
    mlflow.set_tracking_uri(previous)


def test_record_names_three_versions(trained_models: dict[str, Any]) -> None:
    models = trained_models["models"]
    assert {role: entry["name"] for role, entry in models.items()} == MODEL_NAMES
    expected_uri = f"models:/{models['predictor']['name']}/{models['predictor']['version']}"
    assert trained_models["prediction_model_artifact_uri"] == expected_uri
    assert trained_models["drift_model_artifact_uri"].startswith("models:/wine_quality_drift/")
    assert trained_models["outlier_model_artifact_uri"].startswith("models:/wine_quality_outliers/")
    assert trained_models["tracking_uri"].startswith("http://127.0.0.1:")


def test_versions_share_provenance_tags(trained_models: dict[str, Any]) -> None:
    client = MlflowClient(trained_models["tracking_uri"])
    tags = [
        client.get_model_version(entry["name"], entry["version"]).tags
        for entry in trained_models["models"].values()
    ]
    assert {t[TRAINING_RUN_TAG] for t in tags} == {trained_models["training_run_id"]}
    assert {t[FINGERPRINT_TAG] for t in tags} == {trained_models["data_fingerprint"]}
    run = client.get_run(trained_models["training_run_id"])
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == trained_models["trials"]
    assert all({"roc_auc", "accuracy", "precision", "recall"} <= set(c.data.metrics) for c in children)


def test_predictor_gives_labels_and_probabilities(tracking: str, trained_models, held_out) -> None:
    uri = trained_models["prediction_model_artifact_uri"]
    labels = mlflow.pyfunc.load_model(uri).predict(held_out)
    assert set(np.unique(labels)) <= {0, 1}
    assert len(labels) == len(held_out)
    proba = mlflow.sklearn.load_model(uri).predict_proba(held_out)
    assert proba.shape == (len(held_out), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal((proba[:, 1] >= 0.5).astype(int), labels)
    assert trained_models["metrics"]["roc_auc"] > 0.85  # a handful of trials already beats this


def test_drift_detector_quiet_on_held_out_data(tracking: str, trained_models, held_out) -> None:
    model = mlflow.pyfunc.load_model(trained_models["drift_model_artifact_uri"])
    frame = model.predict(held_out)
    assert list(frame["feature"]) == FEATURES
    assert not frame["is_drift"].any(), frame
    result = model.unwrap_python_model().detector.predict(held_out)
    assert not result.is_batch_drift
    assert result.threshold == pytest.approx(0.05)


def test_drift_detector_flags_shifted_alcohol(tracking: str, trained_models, held_out) -> None:
    model = mlflow.pyfunc.load_model(trained_models["drift_model_artifact_uri"])
    detector = model.unwrap_python_model().detector
    assert detector.feature_names == FEATURES
    result = detector.predict(held_out.assign(alcohol=held_out["alcohol"] + 2))
    assert result.is_drift["alcohol"]
    assert result.p_value["alcohol"] < 1e-6
    assert result.drifted_features == ["alcohol"]
    assert result.is_batch_drift


def test_outlier_detector_flags_absurd_row_only(tracking: str, trained_models, held_out) -> None:
    model = mlflow.pyfunc.load_model(trained_models["outlier_model_artifact_uri"])
    typical = held_out.median().to_frame().T.astype(held_out.dtypes.to_dict())
    absurd = typical.assign(chlorides=50.0)
    frame = model.predict(pd.concat([typical, absurd], ignore_index=True))
    assert list(frame["is_outlier"]) == [False, True]
    assert list(frame["out_of_range"]) == ["", "chlorides"]
    assert frame["instance_score"][0] < frame["threshold"][0]
    detector = model.unwrap_python_model().detector
    assert detector.feature_names == FEATURES
    assert detector.predict(held_out).is_outlier.count(True) < SAMPLE_ROWS * 0.15
